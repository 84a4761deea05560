//! `fincore load`: open-loop load against a running server over TCP.
//!
//! K sessions (threads) log in as `load0`, `load1`, ... (the demo configuration's load
//! users, each trading and paying from its own account) and send a seeded workload on a
//! fixed schedule: command `j` of a session is *due* at `start + j / rate_per_session`,
//! and its round trip is measured from that due time to the first execution report
//! carrying its request id, whenever it was actually sent. A server (or a load
//! generator) that falls behind therefore shows up in the latency instead of silently
//! lowering the offered rate: no coordinated omission, as in wrk2. With `--rate max`
//! each session keeps `--window` commands in flight and the round trip is measured from
//! the actual send.
//!
//! Each session is two threads: a sender that sleeps until the next due time (at least
//! 100 us, then sends everything due; it never spins: on two cores the server's engine
//! thread is the one thread allowed to), and a receiver blocked on the socket, which
//! timestamps every reply as it arrives. The tool asks the kernel for no timer slack, so
//! a sleep ends when it should, not up to 50 us later: when commands are due less often
//! than the quantum each leaves on time; when they are due more often, a command can
//! leave up to the quantum after it was due. That delay is counted in its round trip.
//! The tool's own CPU use is reported, so a reader can tell when the tool, not the
//! server, is the limit.

use anyhow::{Context, Result, bail};
use clap::Args;
use fincore_engine::testkit::Rng;
use fincore_engine::{
    AccountId, AssetId, Authorize, ClientOrderId, ClientPaymentId, Event, InstrumentId, NewOrder,
    OrderRef, OrderType, PaymentRef, Price, Qty, Side, StpMode, StpScope, TimeInForce, Transfer,
};
use fincore_gateway::client::{Client, ClientError, ClientReceiver, LoginOptions, Reference};
use fincore_gateway::wire::{self, ClientMsg, ServerMsg};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::bench::Mix;

#[derive(Args)]
pub struct LoadArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7100")]
    addr: String,
    /// Offered rate in commands/s over all sessions, or `max` (each session keeps
    /// `--window` commands in flight).
    #[arg(long, default_value = "10000")]
    rate: String,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Sessions, one thread pair each.
    #[arg(long, default_value_t = 4)]
    sessions: u32,
    /// Workload: the trading mix of `bench engine`, payments between the sessions'
    /// accounts, or half each.
    #[arg(long, value_enum, default_value = "trading")]
    mix: Mix,
    /// Session k logs in as `<user-prefix><k>` with the secret `<user>-secret`.
    #[arg(long, default_value = "load")]
    user_prefix: String,
    /// Session k trades and pays from account `first-account + k` (demo: 10..17).
    #[arg(long, default_value_t = 10)]
    first_account: u32,
    /// Commands in flight per session at most, with `--rate max`.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Append one line per acknowledged command: `<account> <client id> <journal seq>
    /// <outcome>` (outcome `accepted`, `rejected:<code>` or `error:<code>`).
    #[arg(long)]
    ack_log: Option<PathBuf>,
    /// Write the round-trip distribution (.hgrm text format, microseconds).
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Draw round trip by percentile as an SVG chart to this file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// In flight per session at most with a fixed rate: beyond it the server is hopelessly
/// behind and the session stops sending (counted as `not_sent`).
const FIXED_RATE_IN_FLIGHT_MAX: usize = 1 << 20;
/// Live orders per session at most: beyond it the generator cancels instead of placing
/// (keeps the book, and the demo accounts' holds, bounded whatever the duration).
const LIVE_ORDERS_MAX: usize = 500;
/// The sender sleeps at least this long between two rounds of sending. Waking costs a
/// few microseconds of kernel time in a VM, so this bounds the tool's CPU use at high
/// rates (10 000 wake-ups per second per session at most).
const SEND_QUANTUM: Duration = Duration::from_micros(100);
/// How long to wait for the last replies after sending stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(args: &LoadArgs) -> Result<()> {
    let rate: Option<f64> = match args.rate.as_str() {
        "max" => None,
        text => {
            let rate: f64 = text.parse().with_context(|| format!("--rate {text}"))?;
            if !rate.is_finite() || rate <= 0.0 {
                bail!("--rate must be positive or `max`");
            }
            Some(rate)
        }
    };
    let duration_ok = args.duration.is_finite() && args.duration > 0.0;
    if args.sessions == 0 || args.window == 0 || !duration_ok {
        bail!("--sessions, --window and --duration must be positive");
    }
    if !matches!(args.mix, Mix::Trading) && args.sessions < 2 {
        bail!("payments need at least two sessions (they pay each other)");
    }
    let ack_log = match &args.ack_log {
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
            let file = file.with_context(|| format!("opening {}", path.display()))?;
            Some(Arc::new(Mutex::new(BufWriter::new(file))))
        }
        None => None,
    };
    // Client ids unique across runs against the same server: microseconds since the
    // epoch, shifted, plus a per-session counter.
    let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let id_base = (epoch.as_micros() as u64) << 8;

    let mut connected = Vec::new();
    for k in 0..args.sessions {
        let user = format!("{}{k}", args.user_prefix);
        let options = LoginOptions { heartbeat_ms: 60_000, cancel_on_disconnect: true };
        let mut client =
            Client::connect(args.addr.as_str(), &user, &format!("{user}-secret"), options)
                .with_context(|| format!("logging in to {} as {user}", args.addr))?;
        let reference = client.reference()?.clone();
        connected.push((client, reference));
    }
    // Sleeps end when asked, not up to the default 50 us of timer slack later: the
    // senders' lateness counts in every round trip. Threads inherit the setting, so
    // this comes before they are started.
    let precise = std::num::NonZeroU64::new(1);
    if let Err(error) = rustix::thread::set_current_timer_slack(precise) {
        eprintln!("warning: timer slack not reduced ({error}); sends may be up to 50 us late");
    }
    let progress = Arc::new(Progress::default());
    let barrier = Arc::new(Barrier::new(args.sessions as usize + 1));
    let cpu_before = process_cpu();
    let mut threads = Vec::new();
    for (k, (client, reference)) in connected.into_iter().enumerate() {
        let session = SessionPlan {
            account: AccountId(args.first_account + k as u32),
            accounts: (0..args.sessions).map(|i| AccountId(args.first_account + i)).collect(),
            interval: rate.map(|r| Duration::from_secs_f64(f64::from(args.sessions) / r)),
            duration: Duration::from_secs_f64(args.duration),
            window: args.window,
            mix: args.mix,
            seed: args.seed.wrapping_add(k as u64),
            id_base,
        };
        let (progress, barrier, ack_log) = (progress.clone(), barrier.clone(), ack_log.clone());
        threads.push(std::thread::spawn(move || {
            run_session(client, &reference, session, &progress, &barrier, ack_log)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || report_progress(&progress, &done, start))
    };
    let mut total = SessionResult::new()?;
    let mut failures = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(Ok(result)) => total.add(result)?,
            Ok(Err(error)) => failures.push(format!("{error:#}")),
            Err(_) => failures.push("a session thread panicked".to_string()),
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    let elapsed = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    if let Some(log) = &ack_log {
        log.lock().map_err(|_| anyhow::anyhow!("ack log lock"))?.flush()?;
    }
    if !failures.is_empty() {
        bail!("{} session(s) failed: {}", failures.len(), failures.join("; "));
    }
    report(args, rate, &total, elapsed, cpu)?;
    if total.disconnected > 0 {
        bail!("the server ended {} session(s) before the run was over", total.disconnected);
    }
    Ok(())
}

/// What one session is to do.
struct SessionPlan {
    account: AccountId,
    /// Every session's account (payments go to the others).
    accounts: Vec<AccountId>,
    /// Time between two commands of this session; `None` for `--rate max`.
    interval: Option<Duration>,
    duration: Duration,
    window: usize,
    mix: Mix,
    seed: u64,
    id_base: u64,
}

/// Counters the progress line reads.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    acked: AtomicU64,
}

/// A command sent and not yet answered.
#[derive(Clone, Copy)]
struct Flight {
    due: Instant,
    client_id: u64,
}

/// What a session measured.
struct SessionResult {
    histogram: Histogram<u64>,
    sent: u64,
    not_sent: u64,
    accepted: u64,
    fills: u64,
    rejected: BTreeMap<u16, u64>,
    errors: BTreeMap<u32, u64>,
    unanswered: u64,
    send_time: Duration,
    /// Sessions the server closed (or lost) before the end of the run.
    disconnected: u32,
}

impl SessionResult {
    fn new() -> Result<SessionResult> {
        Ok(SessionResult {
            histogram: crate::report::latency_histogram()?,
            sent: 0,
            not_sent: 0,
            accepted: 0,
            fills: 0,
            rejected: BTreeMap::new(),
            errors: BTreeMap::new(),
            unanswered: 0,
            send_time: Duration::ZERO,
            disconnected: 0,
        })
    }

    fn add(&mut self, other: SessionResult) -> Result<()> {
        self.histogram.add(&other.histogram)?;
        self.sent += other.sent;
        self.not_sent += other.not_sent;
        self.accepted += other.accepted;
        self.fills += other.fills;
        for (code, n) in other.rejected {
            *self.rejected.entry(code).or_default() += n;
        }
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.unanswered += other.unanswered;
        self.send_time = self.send_time.max(other.send_time);
        self.disconnected += other.disconnected;
        Ok(())
    }

    fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    fn errors_total(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.unanswered
    }

    fn acked(&self) -> u64 {
        self.accepted + self.rejected_total() + self.errors.values().sum::<u64>()
    }
}

type AckLog = Arc<Mutex<BufWriter<std::fs::File>>>;

fn run_session(
    client: Client,
    reference: &Reference,
    plan: SessionPlan,
    progress: &Progress,
    barrier: &Barrier,
    ack_log: Option<AckLog>,
) -> Result<SessionResult> {
    let mut generator = Generator::new(&plan, reference)?;
    let (mut sender, receiver) = client.split()?;
    let in_flight: Arc<Mutex<HashMap<u64, Flight>>> = Arc::new(Mutex::new(HashMap::new()));
    let (gone_orders, gone) = mpsc::channel();
    let reader = {
        let in_flight = in_flight.clone();
        let account = plan.account;
        let progress_acked = Arc::new(AtomicU64::new(0));
        let shared_acked = progress_acked.clone();
        let handle = std::thread::spawn(move || {
            receive(receiver, account, &in_flight, &gone_orders, ack_log, &shared_acked)
        });
        (handle, progress_acked)
    };
    barrier.wait();
    let start = Instant::now();
    let end = start + plan.duration;
    let (mut sent, mut not_sent, mut next) = (0u64, 0u64, start);
    let mut disconnected = false;
    let (mut reported_sent, mut reported_acked) = (0, 0);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        while let Ok(client_order_id) = gone.try_recv() {
            generator.forget(client_order_id);
        }
        let lock_poisoned = || anyhow::anyhow!("in-flight table lock");
        let mut flights = in_flight.lock().map_err(|_| lock_poisoned())?;
        match plan.interval {
            Some(interval) => {
                while next <= now {
                    if flights.len() < FIXED_RATE_IN_FLIGHT_MAX {
                        let (message, client_id) = generator.next();
                        let request = sender.queue(&message);
                        flights.insert(request, Flight { due: next, client_id });
                        sent += 1;
                    } else {
                        not_sent += 1;
                    }
                    next += interval;
                }
            }
            None => {
                while flights.len() < plan.window {
                    let (message, client_id) = generator.next();
                    let request = sender.queue(&message);
                    flights.insert(request, Flight { due: now, client_id });
                    sent += 1;
                }
            }
        }
        drop(flights);
        if sender.flush().is_err() {
            // The server went away: stop sending; what was acknowledged is kept.
            disconnected = true;
            break;
        }
        progress.sent.fetch_add(sent - reported_sent, Ordering::Relaxed);
        reported_sent = sent;
        let acked = reader.1.load(Ordering::Relaxed);
        progress.acked.fetch_add(acked - reported_acked, Ordering::Relaxed);
        reported_acked = acked;
        // Wake for the next due command, but not more often than SEND_QUANTUM: each
        // wake-up costs microseconds of kernel time in a VM, and a session at 25 k/s
        // would otherwise wake 25 000 times a second. Commands sent late by up to the
        // quantum carry that delay in their round trip (measured from the due time).
        let pause = match plan.interval {
            Some(_) => next.saturating_duration_since(Instant::now()).max(SEND_QUANTUM),
            // Replies free the window; look again after a quantum.
            None => SEND_QUANTUM,
        };
        std::thread::sleep(pause.min(end.saturating_duration_since(Instant::now())));
    }
    let send_time = start.elapsed();
    // Wait for the answers, then log out (the receiver ends on the logout notice).
    let give_up = Instant::now() + if disconnected { Duration::ZERO } else { DRAIN_TIMEOUT };
    while Instant::now() < give_up && !reader.0.is_finished() {
        let empty = in_flight.lock().map_err(|_| anyhow::anyhow!("lock"))?.is_empty();
        if empty {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    sender.queue(&ClientMsg::Logout);
    if sender.flush().is_err() {
        disconnected = true;
    }
    let received = reader.0.join().map_err(|_| anyhow::anyhow!("the receiver panicked"))?;
    let acked = reader.1.load(Ordering::Relaxed);
    progress.acked.fetch_add(acked - reported_acked, Ordering::Relaxed);
    let mut result = received?;
    result.sent = sent;
    result.not_sent = not_sent;
    result.unanswered = in_flight.lock().map_err(|_| anyhow::anyhow!("lock"))?.len() as u64;
    result.send_time = send_time;
    result.disconnected = u32::from(disconnected || result.disconnected > 0);
    Ok(result)
}

/// The receiving thread: timestamps each command's first reply, counts outcomes,
/// tells the generator which of its orders left the book.
fn receive(
    mut receiver: ClientReceiver,
    account: AccountId,
    in_flight: &Mutex<HashMap<u64, Flight>>,
    gone_orders: &mpsc::Sender<u64>,
    ack_log: Option<AckLog>,
    acked: &AtomicU64,
) -> Result<SessionResult> {
    let mut result = SessionResult::new()?;
    let mut lines = String::new();
    loop {
        let received = match receiver.recv() {
            Ok(received) => received,
            Err(ClientError::LoggedOut(reason)) => {
                // Our own logout at the end; anything else ended the session early.
                if reason != wire::SessionReason::ClientLogout.code() {
                    result.disconnected = 1;
                }
                break;
            }
            Err(ClientError::Closed | ClientError::Io(_)) => {
                result.disconnected = 1;
                break;
            }
            Err(error) => return Err(error.into()),
        };
        let arrived = Instant::now();
        let (request, outcome, journal_seq) = match received.msg {
            ServerMsg::ExecReport(report) => {
                note_order_exit(&report.event, account, gone_orders, &mut result);
                let outcome = match report.event {
                    Event::Rejected(rejected) => Outcome::Rejected(rejected.reason.code()),
                    _ => Outcome::Accepted,
                };
                (report.request_id, outcome, report.journal_seq)
            }
            ServerMsg::SessionReject(reject) => {
                (reject.ref_request_id, Outcome::Error(reject.reason), 0)
            }
            _ => continue,
        };
        if request == 0 {
            continue;
        }
        let flight = in_flight.lock().map_err(|_| anyhow::anyhow!("lock"))?.remove(&request);
        let Some(flight) = flight else { continue };
        let rtt = arrived.saturating_duration_since(flight.due);
        result.histogram.saturating_record(rtt.as_nanos() as u64);
        match outcome {
            Outcome::Accepted => result.accepted += 1,
            Outcome::Rejected(code) => *result.rejected.entry(code).or_default() += 1,
            Outcome::Error(code) => *result.errors.entry(code).or_default() += 1,
        }
        acked.fetch_add(1, Ordering::Relaxed);
        if let Some(log) = &ack_log {
            use std::fmt::Write as _;
            let _ = writeln!(lines, "{} {} {journal_seq} {outcome}", account.0, flight.client_id);
            if lines.len() > 64 * 1024 {
                let mut log = log.lock().map_err(|_| anyhow::anyhow!("ack log lock"))?;
                log.write_all(lines.as_bytes())?;
                lines.clear();
            }
        }
    }
    if let Some(log) = &ack_log {
        log.lock().map_err(|_| anyhow::anyhow!("ack log lock"))?.write_all(lines.as_bytes())?;
    }
    Ok(result)
}

/// Fills this session took (as taker), and orders of its account that left the book.
fn note_order_exit(
    event: &Event,
    account: AccountId,
    gone_orders: &mpsc::Sender<u64>,
    result: &mut SessionResult,
) {
    let gone = |id: ClientOrderId| {
        let _ = gone_orders.send(id.0);
    };
    match event {
        Event::Fill(fill) => {
            if fill.taker_account == account {
                result.fills += 1;
                if fill.taker_remaining.0 == 0 {
                    gone(fill.taker_client_id);
                }
            }
            if fill.maker_account == account && fill.maker_remaining.0 == 0 {
                gone(fill.maker_client_id);
            }
        }
        Event::Cancelled(cancelled) if cancelled.account == account => {
            gone(cancelled.client_order_id)
        }
        Event::Rejected(rejected) if rejected.account == account => {
            gone(ClientOrderId(rejected.client_id))
        }
        _ => {}
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Accepted,
    Rejected(u16),
    Error(u32),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Accepted => f.write_str("accepted"),
            Outcome::Rejected(code) => write!(f, "rejected:{code}"),
            Outcome::Error(code) => write!(f, "error:{code}"),
        }
    }
}

/// One session's seeded command stream.
struct Generator {
    rng: Rng,
    mix: Mix,
    account: AccountId,
    others: Vec<AccountId>,
    books: Vec<BookPlan>,
    live: Vec<u64>,
    live_index: HashMap<u64, usize>,
    usd: AssetId,
    /// Own authorizations not captured yet: (client payment id, amount).
    authorized: VecDeque<(u64, i64)>,
    next_id: u64,
}

/// An instrument the session trades, and its random-walking mid in ticks.
struct BookPlan {
    instrument: InstrumentId,
    reference: i64,
    mid: i64,
}

impl Generator {
    fn new(plan: &SessionPlan, reference: &Reference) -> Result<Generator> {
        let books: Vec<BookPlan> = reference
            .instruments
            .iter()
            .map(|(spec, _)| BookPlan {
                instrument: spec.instrument,
                reference: spec.reference_price.0,
                mid: spec.reference_price.0,
            })
            .collect();
        if books.is_empty() && matches!(plan.mix, Mix::Trading | Mix::Mixed) {
            bail!("the server lists no instrument to trade");
        }
        let usd = match plan.mix {
            Mix::Trading => AssetId(0),
            _ => reference.asset("USD").context("payments are made in USD")?.0,
        };
        Ok(Generator {
            rng: Rng::new(plan.seed),
            mix: plan.mix,
            account: plan.account,
            others: plan.accounts.iter().copied().filter(|a| *a != plan.account).collect(),
            books,
            live: Vec::new(),
            live_index: HashMap::new(),
            usd,
            authorized: VecDeque::new(),
            next_id: plan.id_base,
        })
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The next command and the client id it carries.
    fn next(&mut self) -> (ClientMsg, u64) {
        let trade = match self.mix {
            Mix::Trading => true,
            Mix::Transfers | Mix::Payments => false,
            Mix::Mixed => self.rng.percent(50),
        };
        if trade { self.next_trade() } else { self.next_payment() }
    }

    /// The trading mix of `bench engine` (about 55 % passive limits, 35 % cancels,
    /// 8 % crossing limits, 2 % market orders), with smaller sizes.
    fn next_trade(&mut self) -> (ClientMsg, u64) {
        let roll = self.rng.below(100);
        let cancel = (55..90).contains(&roll) || self.live.len() >= LIVE_ORDERS_MAX;
        if cancel && !self.live.is_empty() {
            let id = self.live[self.rng.below(self.live.len() as u64) as usize];
            self.forget(id);
            let order = OrderRef::Client(ClientOrderId(id));
            return (ClientMsg::Cancel(wire::Cancel { account: self.account, order }), id);
        }
        let pick = self.rng.below(self.books.len() as u64) as usize;
        let book = &mut self.books[pick];
        let step = self.rng.range(-1, 1) * i64::from(self.rng.percent(10));
        let band = book.reference * 3 / 100;
        book.mid = (book.mid + step).clamp(book.reference - band, book.reference + band);
        let (instrument, mid) = (book.instrument, book.mid);
        let side = if self.rng.percent(50) { Side::Buy } else { Side::Sell };
        let toward = |ticks: i64| if side == Side::Buy { mid + ticks } else { mid - ticks };
        let (order_type, time_in_force, price, qty) = match roll {
            // Sizes a tenth of `bench engine`'s: the demo's load accounts hold 1 M USD and
            // 100 BTC, and fills move money between them for as long as the run lasts.
            90..=97 => (
                OrderType::Limit,
                TimeInForce::Gtc,
                toward(self.rng.range(1, 5)),
                self.rng.range(1, 24),
            ),
            98..=99 => (OrderType::Market, TimeInForce::Ioc, 0, self.rng.range(1, 24)),
            _ => (
                OrderType::Limit,
                TimeInForce::Gtc,
                toward(-self.rng.range(1, 20)),
                self.rng.range(1, 10),
            ),
        };
        let id = self.fresh_id();
        if time_in_force == TimeInForce::Gtc {
            self.live_index.insert(id, self.live.len());
            self.live.push(id);
        }
        let order = NewOrder {
            account: self.account,
            instrument,
            client_order_id: ClientOrderId(id),
            side,
            order_type,
            time_in_force,
            price: Price(price),
            qty: Qty(qty),
            stp_mode: StpMode::CancelNewest,
            stp_scope: StpScope::Account,
            post_only: false,
        };
        (ClientMsg::NewOrder(order), id)
    }

    /// Payments in USD to the other sessions' accounts: half transfers (all of them
    /// with `--mix transfers`), the rest authorizations and captures of them.
    fn next_payment(&mut self) -> (ClientMsg, u64) {
        let transfer_percent = if matches!(self.mix, Mix::Transfers) { 100 } else { 50 };
        let roll = self.rng.below(100);
        let capture_from = transfer_percent + (100 - transfer_percent) / 2;
        if roll >= capture_from
            && let Some((id, amount)) = self.authorized.pop_front()
        {
            let amount = if self.rng.percent(25) { amount / 2 + 1 } else { 0 };
            let payment = PaymentRef::Client(ClientPaymentId(id));
            return (
                ClientMsg::Capture(wire::Capture { account: self.account, payment, amount }),
                id,
            );
        }
        let credit = self.others[self.rng.below(self.others.len() as u64) as usize];
        // Up to a cent: far inside the demo's per-payment and 24-hour limits.
        let amount = self.rng.range(1, 10_000);
        let id = self.fresh_id();
        let client_payment_id = ClientPaymentId(id);
        let (debit, asset) = (self.account, self.usd);
        if roll < transfer_percent {
            let transfer = Transfer { debit, credit, asset, amount, client_payment_id };
            return (ClientMsg::Transfer(transfer), id);
        }
        self.authorized.push_back((id, amount));
        let authorize =
            Authorize { debit, credit, asset, amount, client_payment_id, timeout_s: 60 };
        (ClientMsg::Authorize(authorize), id)
    }

    /// An order of this session left the book (or never rested).
    fn forget(&mut self, id: u64) {
        let Some(index) = self.live_index.remove(&id) else { return };
        self.live.swap_remove(index);
        if let Some(&moved) = self.live.get(index) {
            self.live_index.insert(moved, index);
        }
    }
}

/// A progress line on stderr every second.
fn report_progress(progress: &Progress, done: &AtomicBool, start: Instant) {
    let mut last = (0u64, Instant::now());
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.1.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let acked = progress.acked.load(Ordering::Relaxed);
        let rate = (acked - last.0) as f64 / last.1.elapsed().as_secs_f64();
        eprintln!(
            "  {:>5.1} s  sent {:>10}  acked {:>10}  {:>10.0} acks/s",
            start.elapsed().as_secs_f64(),
            progress.sent.load(Ordering::Relaxed),
            acked,
            rate
        );
        last = (acked, Instant::now());
    }
}

/// CPU time used by this process so far (all threads).
fn process_cpu() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

fn report(
    args: &LoadArgs,
    rate: Option<f64>,
    total: &SessionResult,
    elapsed: Duration,
    cpu: Duration,
) -> Result<()> {
    let h = &total.histogram;
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    let send_secs = total.send_time.as_secs_f64().max(f64::MIN_POSITIVE);
    let offered = rate.unwrap_or(total.sent as f64 / send_secs);
    // Commands the engine answered (accepted or rejected); refusals by the session
    // layer (rate limit, ...) are answers too but not work done, so they are not counted.
    let answered = total.accepted + total.rejected_total();
    let achieved = answered as f64 / elapsed.as_secs_f64();
    let cpu_percent = 100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64();
    let rate_text = rate.map_or("max".to_string(), |r| format!("{r:.0}/s"));
    println!(
        "load: mix={} sessions={} rate={rate_text} duration={}s addr={}",
        args.mix.name(),
        args.sessions,
        args.duration,
        args.addr
    );
    println!(
        "  sent {} (not sent: {}), acknowledged {}: accepted {}, rejected {}, errors {}, unanswered {}",
        total.sent,
        total.not_sent,
        total.acked(),
        total.accepted,
        total.rejected_total(),
        total.errors.values().sum::<u64>(),
        total.unanswered
    );
    println!("  fills        {} (as taker)", total.fills);
    println!("  offered      {offered:>12.0} commands/s");
    println!("  achieved     {achieved:>12.0} commands/s answered by the engine");
    println!(
        "  round trip us p50={:.1} p90={:.1} p99={:.1} p99.9={:.1} p99.99={:.1} max={:.1} (from each command's due time)",
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        us(0.9999),
        h.max() as f64 / 1_000.0
    );
    for (code, n) in &total.rejected {
        println!("  rejected     {n:>10}  {}", wire::reason_name(u32::from(*code)));
    }
    for (code, n) in &total.errors {
        println!("  error        {n:>10}  {}", wire::reason_name(*code));
    }
    println!("  load tool    {cpu_percent:.0} % of one core");
    if let Some(path) = &args.hgrm {
        crate::report::write_hgrm(h, path, "ns")?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "fincore load --mix {} --rate {} --sessions {}: round trip",
            args.mix.name(),
            args.rate,
            args.sessions
        );
        crate::report::write_svg(h, path, &title, "ns")?;
    }
    if args.json {
        let rejected: BTreeMap<String, u64> =
            total.rejected.iter().map(|(code, n)| (code.to_string(), *n)).collect();
        let errors: BTreeMap<String, u64> =
            total.errors.iter().map(|(code, n)| (code.to_string(), *n)).collect();
        let object = serde_json::json!({
            "mix": args.mix.name(),
            "sessions": args.sessions,
            "duration_s": args.duration,
            "rate": args.rate,
            "offered_rate": offered.round(),
            "achieved_rate": achieved.round(),
            "sent": total.sent,
            "not_sent": total.not_sent,
            "acked": total.acked(),
            "accepted": total.accepted,
            "rejected": total.rejected_total(),
            "errors": total.errors_total(),
            "unanswered": total.unanswered,
            "fills": total.fills,
            "rejected_by_code": rejected,
            "errors_by_code": errors,
            "p50_us": us(0.5),
            "p90_us": us(0.9),
            "p99_us": us(0.99),
            "p999_us": us(0.999),
            "p9999_us": us(0.9999),
            "max_us": h.max() as f64 / 1_000.0,
            "load_cpu_percent": cpu_percent.round(),
            "disconnected_sessions": total.disconnected,
        });
        println!("{object}");
    }
    Ok(())
}
