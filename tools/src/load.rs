//! `fincore load`: open-loop load against a running server over TCP.
//!
//! K sessions log in as `load0`, `load1`, ... (the demo configuration's load users, each
//! trading and paying from its own account) and send a seeded workload on a fixed
//! schedule: command `j` of session `k` is *due* at `start + (j + k/K) / rate_per_session`
//! (the sessions interleave into one evenly spaced stream), and its round trip is
//! measured from that due time to the first execution report carrying its request id,
//! whenever it was actually sent. A server (or a load generator) that falls behind
//! therefore shows up in the latency instead of silently lowering the offered rate: no
//! coordinated omission, as in wrk2. With `--rate max` each session keeps `--window`
//! commands in flight, topped up as replies arrive, and the round trip is measured from
//! when a command is queued for sending (it is written at once unless the socket is
//! full).
//!
//! One thread drives every session ([`EventLoop`]): a `mio` poll over the sockets and a
//! `timerfd` for the send schedule. It never spins (on two cores the server's engine
//! thread is the one thread allowed to) and starts a round of sending at most once per
//! [`SEND_QUANTUM`]: when commands are due less often each leaves on time; when more
//! often, a command can leave up to the quantum after it was due, and that delay is
//! counted in its round trip. Replies are timestamped after the read that brought them.
//! The tool's own CPU use is reported, so a reader can tell when the tool, not the
//! server, is the limit. (The first version ran two threads per session, 8 threads
//! competing with the server's two on 2 vCPUs; this one took about 40 % of a core at
//! saturation instead of 70 %, and halved the median at 10 k/s; since session 16 it
//! takes about 34 % at saturation: BENCHMARKS.md. At a fixed rate it costs more per
//! command, 52 - 78 % of a core from 100 k/s up, most of it the kernel's loopback
//! sends in small batches.)

use anyhow::{Context, Result, bail};
use clap::Args;
use fincore_engine::testkit::Rng;
use fincore_engine::{
    AccountId, AssetId, Authorize, ClientOrderId, ClientPaymentId, Event, InstrumentId, NewOrder,
    OrderRef, OrderType, PaymentRef, Price, Qty, Side, StpMode, StpScope, TimeInForce, Transfer,
};
use fincore_gateway::client::{
    Arrival, Client, ClientError, ClientReceiver, ClientSender, LoginOptions, Reference,
};
use fincore_gateway::wire::{self, ClientMsg, ServerMsg};
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Sessions (all driven by one thread).
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
/// The event loop wakes for the send schedule at most this often. Waking costs a few
/// microseconds of kernel time in a VM, so this bounds the tool's CPU use at high rates
/// (10 000 timer wake-ups per second at most).
pub(crate) const SEND_QUANTUM: Duration = Duration::from_micros(100);
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
            Some(BufWriter::new(file))
        }
        None => None,
    };
    // Client ids unique across runs against the same server: microseconds since the
    // epoch, shifted, plus a per-session counter.
    let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let id_base = (epoch.as_micros() as u64) << 8;

    let mut sessions = Vec::new();
    for k in 0..args.sessions {
        let user = format!("{}{k}", args.user_prefix);
        let options = LoginOptions { heartbeat_ms: 60_000, cancel_on_disconnect: true };
        let mut client =
            Client::connect(args.addr.as_str(), &user, &format!("{user}-secret"), options)
                .with_context(|| format!("logging in to {} as {user}", args.addr))?;
        let reference = client.reference()?.clone();
        let plan = SessionPlan {
            account: AccountId(args.first_account + k),
            accounts: (0..args.sessions).map(|i| AccountId(args.first_account + i)).collect(),
            interval: rate.map(|r| Duration::from_secs_f64(f64::from(args.sessions) / r)),
            window: args.window,
            mix: args.mix,
            seed: args.seed.wrapping_add(u64::from(k)),
            id_base,
        };
        sessions.push(Session::new(client, &reference, plan)?);
    }
    let progress = Arc::new(Progress::default());
    let cpu_before = process_cpu();
    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || report_progress(&progress, &done, start))
    };
    let duration = Duration::from_secs_f64(args.duration);
    let driven = EventLoop::new(&mut sessions, ack_log, &progress)
        .and_then(|event_loop| event_loop.run(start, duration));
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    let send_time = driven?;
    let elapsed = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let mut total = SessionResult::new()?;
    for session in sessions {
        let mut result = session.result;
        result.sent = session.sent;
        result.not_sent = session.not_sent;
        result.unanswered = session.in_flight.len() as u64;
        result.send_time = send_time;
        total.add(result)?;
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

/// Values by increasing `u64` id, for ids issued in increasing order (with gaps) and
/// mostly taken out in about that order: a queue from the oldest id still held, so
/// every lookup, hit or miss, is one index. Used twice per session:
///
/// - **Commands in flight, by request id.** A command's first report answers it while
///   its later reports (five or so per order) find it gone. A hash map (the first
///   version) spent much of the tool's own time probing for ids already answered
///   (`perf annotate` at saturation: a third to three fifths of the event loop's
///   samples; BENCHMARKS.md).
/// - **The generator's resting orders, by client order id** ([`LiveOrders`]). Most of
///   the order exits the tool hears of are for ids it no longer holds (its own
///   cancels, immediate-or-cancel orders, makers already gone), and in a hash map
///   with constant insertions and removals those misses probed long runs of deleted
///   slots (session 16: `Generator::forget` was a tenth of the tool's time).
///
/// An id that is never taken out holds the front, and the queue then spans every id
/// issued after it: the memory is bounded by how long ids stay, not by how many.
struct IdWindow<T> {
    /// Id of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<T>>,
    /// `Some` slots.
    len: usize,
}

impl<T> IdWindow<T> {
    fn new() -> IdWindow<T> {
        IdWindow { base: 0, slots: VecDeque::new(), len: 0 }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records `id`, which must be above every id recorded before.
    fn insert(&mut self, id: u64, value: T) {
        if self.slots.is_empty() {
            self.base = id;
        }
        let end = self.base + self.slots.len() as u64;
        assert!(id >= end, "ids increase");
        for _ in end..id {
            self.slots.push_back(None);
        }
        self.slots.push_back(Some(value));
        self.len += 1;
    }

    /// The slot of `id`, if it is within the window.
    fn slot(&mut self, id: u64) -> Option<&mut Option<T>> {
        let index = usize::try_from(id.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(index)
    }

    /// The value of `id`, if it is held.
    fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.slot(id)?.as_mut()
    }

    /// Takes `id` out, if it is held.
    fn remove(&mut self, id: u64) -> Option<T> {
        let value = self.slot(id)?.take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(value)
    }
}

/// The generator's resting orders: their client ids in a list to pick from at random,
/// and each one's place in the list by id.
struct LiveOrders {
    ids: Vec<u64>,
    places: IdWindow<u32>,
}

impl LiveOrders {
    fn new() -> LiveOrders {
        LiveOrders { ids: Vec::new(), places: IdWindow::new() }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds `id`, above every id added before.
    fn add(&mut self, id: u64) {
        let place = u32::try_from(self.ids.len()).expect("live orders are bounded");
        self.places.insert(id, place);
        self.ids.push(id);
    }

    /// The id at `place` (below [`LiveOrders::len`]).
    fn at(&self, place: usize) -> u64 {
        self.ids[place]
    }

    /// Removes `id` if it is there (the last id takes its place in the list).
    fn remove(&mut self, id: u64) {
        let Some(place) = self.places.remove(id) else { return };
        self.ids.swap_remove(place as usize);
        if let Some(&moved) = self.ids.get(place as usize) {
            *self.places.get_mut(moved).expect("every listed id has a place") = place;
        }
    }
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

/// How far one readiness event's [`Session::receive`] reads its socket.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Until a read leaves the socket empty (a short read): the edge-triggered poll
    /// reports bytes that arrive after it, so the read that would only say
    /// `WouldBlock` is skipped.
    ShortRead,
    /// A short read has happened: read no more.
    Drained,
    /// Until `WouldBlock` or the end of the stream (the peer closed).
    WouldBlock,
}

/// One logged-in session of the event loop: its workload and its commands in flight.
struct Session {
    plan: SessionPlan,
    generator: Generator,
    sender: ClientSender,
    receiver: ClientReceiver,
    /// By request id.
    in_flight: IdWindow<Flight>,
    /// When its next command is due (fixed rate).
    next: Instant,
    sent: u64,
    not_sent: u64,
    result: SessionResult,
    /// The session is over: logged out at the end, or ended by the server.
    ended: bool,
}

impl Session {
    fn new(client: Client, reference: &Reference, plan: SessionPlan) -> Result<Session> {
        let generator = Generator::new(&plan, reference)?;
        let (sender, receiver) = client.split()?;
        receiver.set_nonblocking(true)?;
        Ok(Session {
            plan,
            generator,
            sender,
            receiver,
            in_flight: IdWindow::new(),
            next: Instant::now(),
            sent: 0,
            not_sent: 0,
            result: SessionResult::new()?,
            ended: false,
        })
    }

    /// Queues what is due at `now`: every command whose time has come (fixed rate), or
    /// enough to fill the window (`--rate max`, timed from `now`); then sends what the
    /// socket takes (the rest goes when it is writable again).
    fn send_due(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        match self.plan.interval {
            Some(interval) => {
                while self.next <= now {
                    if self.in_flight.len() < FIXED_RATE_IN_FLIGHT_MAX {
                        self.send_next(self.next);
                    } else {
                        self.not_sent += 1;
                    }
                    self.next += interval;
                }
            }
            None => {
                while self.in_flight.len() < self.plan.window {
                    self.send_next(now);
                }
            }
        }
        self.flush();
    }

    fn send_next(&mut self, due: Instant) {
        let (message, client_id) = self.generator.next();
        let request = self.sender.queue(&message);
        self.in_flight.insert(request, Flight { due, client_id });
        self.sent += 1;
    }

    /// Sends what the socket takes; a failed write ends the session (the server went
    /// away: what was acknowledged is kept).
    fn flush(&mut self) {
        if self.sender.flush_some().is_err() {
            self.end(true);
        }
    }

    fn end(&mut self, early: bool) {
        self.ended = true;
        self.result.disconnected = u32::from(early);
    }

    /// Everything that has arrived: timestamps each command's first reply, counts
    /// outcomes, tells the generator which of its orders left the book. Returns the
    /// commands answered.
    fn receive(
        &mut self,
        until: Until,
        ack_log: &mut Option<BufWriter<std::fs::File>>,
    ) -> Result<u64> {
        // Replies are stamped with the time of the read that brought them (what is
        // left in the buffer between two calls is never a whole message).
        let mut arrived = Instant::now();
        let mut until = until;
        let mut answered = 0;
        while !self.ended {
            let reply = match self.next_reply(&mut arrived, &mut until) {
                Ok(Some(reply)) => reply,
                Ok(None) => break,
                Err(ClientError::LoggedOut(reason)) => {
                    // Our own logout at the end; anything else ended the session early.
                    self.end(reason != wire::SessionReason::ClientLogout.code());
                    break;
                }
                Err(ClientError::Closed | ClientError::Io(_)) => {
                    self.end(true);
                    break;
                }
                Err(error) => return Err(error.into()),
            };
            let (request, outcome, journal_seq) = match reply {
                Reply::Report { request_id, journal_seq, event } => {
                    if let Some(event) = &event {
                        self.note_order_exit(event);
                    }
                    let outcome = match event {
                        Some(Event::Rejected(r)) => Outcome::Rejected(r.reason.code()),
                        _ => Outcome::Accepted,
                    };
                    (request_id, outcome, journal_seq)
                }
                Reply::Refused(reject) => (reject.ref_request_id, Outcome::Error(reject.reason), 0),
                Reply::Other => continue,
            };
            let Some(flight) = self.in_flight.remove(request) else { continue };
            let rtt = arrived.saturating_duration_since(flight.due);
            self.result.histogram.saturating_record(rtt.as_nanos() as u64);
            match outcome {
                Outcome::Accepted => self.result.accepted += 1,
                Outcome::Rejected(code) => *self.result.rejected.entry(code).or_default() += 1,
                Outcome::Error(code) => *self.result.errors.entry(code).or_default() += 1,
            }
            answered += 1;
            if let Some(log) = ack_log {
                let account = self.plan.account.0;
                writeln!(log, "{account} {} {journal_seq} {outcome}", flight.client_id)?;
            }
        }
        Ok(answered)
    }

    /// The next reply, reading as needed; `arrived` becomes the time of each read that
    /// brings bytes. `None` once the socket has nothing more for now: it said
    /// `WouldBlock`, or (`Until::ShortRead`) a read left it empty, which `until`
    /// remembers (bytes arriving later raise a new event). An execution report's
    /// event is decoded only if it is one the generator must see ([`Reply::Report`]);
    /// the rest are counted from the report's fixed front.
    fn next_reply(
        &mut self,
        arrived: &mut Instant,
        until: &mut Until,
    ) -> Result<Option<Reply>, ClientError> {
        loop {
            if let Some((header, body)) = self.receiver.next_raw()? {
                return decode_reply(header.msg_type, body).map(Some);
            }
            if *until == Until::Drained {
                return Ok(None);
            }
            match self.receiver.read_available()? {
                Arrival::Nothing => return Ok(None),
                Arrival::Drained if *until == Until::ShortRead => *until = Until::Drained,
                Arrival::Drained | Arrival::More => {}
            }
            *arrived = Instant::now();
        }
    }

    /// Fills this session took (as taker), and orders of its account that left the
    /// book (the generator stops cancelling or amending them).
    fn note_order_exit(&mut self, event: &Event) {
        let account = self.plan.account;
        let generator = &mut self.generator;
        let mut gone = |id: ClientOrderId| generator.forget(id.0);
        match event {
            Event::Fill(fill) => {
                if fill.taker_account == account {
                    self.result.fills += 1;
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
}

/// What the load tool takes from one server message.
enum Reply {
    /// An execution report: its ids, and its event unless it is one of the
    /// kinds only counted (the generator needs `Rejected`, `Fill` and `Cancelled`:
    /// orders that left the book or never rested).
    Report { request_id: u64, journal_seq: u64, event: Option<Event> },
    /// A session-level refusal of a request.
    Refused(wire::SessionReject),
    /// Anything else (heartbeats, market data, unknown types): skipped.
    Other,
}

/// Decodes what [`Reply`] needs of a message of type `msg_type`. The most frequent
/// reports (an order's `Accepted`, `Balance` updates, `Payment`s), which the generator
/// only counts, are checked by their tag and length and not decoded: decoding every
/// report in full was a quarter of this tool's CPU time at saturation (`perf`,
/// BENCHMARKS.md), time taken from the server it shares the machine with. Every other
/// report and session message is decoded (and so validated) in full; other messages
/// (heartbeats, market data) are skipped after the frame header's checks.
fn decode_reply(msg_type: u16, body: &[u8]) -> Result<Reply, ClientError> {
    let undecodable = |reason: &dyn std::fmt::Display| {
        ClientError::Protocol(format!("undecodable message type {msg_type}: {reason}"))
    };
    match msg_type {
        wire::msg::EXEC_REPORT => {
            let head = wire::ExecReportHead::peek(body)
                .ok_or_else(|| undecodable(&format_args!("{} bytes", body.len())))?;
            match wire::ExecReportHead::skippable_len(head.event_tag) {
                Some(len) if len == body.len() => {
                    let (request_id, journal_seq) = (head.request_id, head.journal_seq);
                    return Ok(Reply::Report { request_id, journal_seq, event: None });
                }
                Some(len) => {
                    let tag = head.event_tag;
                    let why = format_args!("event {tag} in {} bytes, not {len}", body.len());
                    return Err(undecodable(&why));
                }
                None => {}
            }
        }
        wire::msg::SESSION_REJECT | wire::msg::LOGOUT_NOTICE => {}
        _ => return Ok(Reply::Other),
    }
    match ServerMsg::decode(msg_type, body).map_err(|reason| undecodable(&reason))? {
        ServerMsg::ExecReport(report) => Ok(Reply::Report {
            request_id: report.request_id,
            journal_seq: report.journal_seq,
            event: Some(report.event),
        }),
        ServerMsg::SessionReject(reject) => Ok(Reply::Refused(reject)),
        ServerMsg::Logout(reason) => Err(ClientError::LoggedOut(reason)),
        _ => Ok(Reply::Other),
    }
}

/// Token of the send timer; session `k` reads with token `2k` and writes with `2k + 1`.
const TIMER: Token = Token(usize::MAX);

/// Every session on one thread: a `mio` poll over the sessions' sockets and a timer
/// (`timerfd`, which fires on time to the microsecond; a poll timeout only has
/// millisecond resolution). One thread instead of two per session leaves the cores to
/// the server: on two vCPUs every extra runnable thread shows up in the latency.
struct EventLoop<'a> {
    sessions: &'a mut [Session],
    poll: Poll,
    events: Events,
    timer: std::os::fd::OwnedFd,
    /// When the armed timer fires (`None`: not armed, or it has fired).
    armed: Option<Instant>,
    ack_log: Option<BufWriter<std::fs::File>>,
    progress: &'a Progress,
}

impl<'a> EventLoop<'a> {
    fn new(
        sessions: &'a mut [Session],
        ack_log: Option<BufWriter<std::fs::File>>,
        progress: &'a Progress,
    ) -> Result<EventLoop<'a>> {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let poll = Poll::new()?;
        let flags = TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC;
        let timer = timerfd_create(TimerfdClockId::Monotonic, flags)?;
        let registry = poll.registry();
        registry.register(&mut SourceFd(&timer.as_raw_fd()), TIMER, Interest::READABLE)?;
        for (k, session) in sessions.iter().enumerate() {
            let (read, write) = (session.receiver.as_raw_fd(), session.sender.as_raw_fd());
            registry.register(&mut SourceFd(&read), Token(2 * k), Interest::READABLE)?;
            registry.register(&mut SourceFd(&write), Token(2 * k + 1), Interest::WRITABLE)?;
        }
        let events = Events::with_capacity(64);
        Ok(EventLoop { sessions, poll, events, timer, armed: None, ack_log, progress })
    }

    /// Sends for `duration` from `start`, waits for the answers (at most
    /// `DRAIN_TIMEOUT`), logs every session out. Returns the time spent sending.
    fn run(mut self, start: Instant, duration: Duration) -> Result<Duration> {
        let end = start + duration;
        // Fixed rate: the sessions' schedules interleave, so that together they offer
        // one evenly spaced stream (session k starts k/K of an interval late).
        let count = self.sessions.len() as u32;
        for (k, session) in self.sessions.iter_mut().enumerate() {
            let offset = session.plan.interval.map_or(Duration::ZERO, |i| i * k as u32 / count);
            session.next = start + offset;
            session.send_due(start);
        }
        let fixed_rate = self.sessions.iter().any(|s| s.plan.interval.is_some());
        // Rounds of sending are scheduled at most once per quantum (see SEND_QUANTUM),
        // counted from when the last round was *scheduled*, not from when it ran: a late
        // wake-up or a reply waking the loop does not push the schedule back.
        let mut last_round = start.checked_sub(SEND_QUANTUM).unwrap_or(start);
        let mut round_at = start;
        while Instant::now() < end && self.sessions.iter().any(|s| !s.ended) {
            if fixed_rate {
                let live = self.sessions.iter().filter(|s| !s.ended);
                let next = live.map(|s| s.next).min().unwrap_or(end);
                round_at = next.max(last_round + SEND_QUANTUM).min(end);
                self.arm_timer(round_at)?;
            }
            self.turn(Some(end.saturating_duration_since(Instant::now())), true)?;
            let now = Instant::now();
            if fixed_rate && now < end && now >= round_at {
                for session in self.sessions.iter_mut().filter(|s| s.next <= now) {
                    session.send_due(now);
                }
                last_round = round_at;
            }
        }
        if fixed_rate {
            // The commands that fell due in the last part of a quantum before the end.
            let last_due = end - Duration::from_nanos(1);
            let scheduled = |s: &&mut Session| s.plan.interval.is_some() && s.next <= last_due;
            for session in self.sessions.iter_mut().filter(scheduled) {
                session.send_due(last_due);
            }
        }
        let send_time = start.elapsed();
        let give_up = Instant::now() + DRAIN_TIMEOUT;
        while self.sessions.iter().any(|s| !s.ended && !s.in_flight.is_empty()) {
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.turn(Some(left), false)?;
        }
        for session in self.sessions.iter_mut().filter(|s| !s.ended) {
            session.sender.queue(&ClientMsg::Logout);
            session.flush();
        }
        let give_up = Instant::now() + DRAIN_TIMEOUT;
        while self.sessions.iter().any(|s| !s.ended) {
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let silent = self.sessions.iter().filter(|s| !s.ended).count();
                eprintln!("warning: {silent} session(s) got no logout notice in {DRAIN_TIMEOUT:?}");
                break;
            }
            self.turn(Some(left), false)?;
        }
        if let Some(log) = &mut self.ack_log {
            log.flush()?;
        }
        Ok(send_time)
    }

    /// One wait and whatever it brought: replies read, pending output written, and with
    /// `refill`, `--rate max` windows topped up as replies free them.
    fn turn(&mut self, timeout: Option<Duration>, refill: bool) -> Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
            other => other?,
        }
        for event in self.events.iter() {
            if event.token() == TIMER {
                let mut expirations = [0u8; 8];
                let _ = rustix::io::read(&self.timer, &mut expirations);
                self.armed = None;
                continue;
            }
            let session = &mut self.sessions[event.token().0 / 2];
            if event.token().0 % 2 == 1 {
                session.flush();
                continue;
            }
            // The peer's end of file raises no later event: then read to the end.
            let until = if event.is_read_closed() || event.is_error() {
                Until::WouldBlock
            } else {
                Until::ShortRead
            };
            let answered = session.receive(until, &mut self.ack_log)?;
            self.progress.acked.fetch_add(answered, Ordering::Relaxed);
            if refill && session.plan.interval.is_none() {
                session.send_due(Instant::now());
            }
        }
        let sent = self.sessions.iter().map(|s| s.sent).sum::<u64>();
        self.progress.sent.store(sent, Ordering::Relaxed);
        Ok(())
    }

    /// The timer fires once, at `at` (or at once if that has passed); already armed
    /// for `at`, it is left as it is.
    fn arm_timer(&mut self, at: Instant) -> Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        self.armed = Some(at);
        arm_timer_once(&self.timer, at)?;
        Ok(())
    }
}

/// Arms a `timerfd` to fire once, at `at` (or at once if that has passed).
pub(crate) fn arm_timer_once(timer: &impl rustix::fd::AsFd, at: Instant) -> rustix::io::Result<()> {
    use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
    // A zero value would disarm it: at least a nanosecond.
    let wait = at.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
    let value = Timespec { tv_sec: wait.as_secs() as i64, tv_nsec: wait.subsec_nanos().into() };
    let spec = Itimerspec { it_interval: Timespec::default(), it_value: value };
    timerfd_settime(timer, TimerfdTimerFlags::empty(), &spec).map(drop)
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
    live: LiveOrders,
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
            live: LiveOrders::new(),
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
            let id = self.live.at(self.rng.below(self.live.len() as u64) as usize);
            self.live.remove(id);
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
            // Sizes a tenth of `bench engine`'s. Fills move money between the sessions for
            // as long as the run lasts; the demo funds its load accounts for that.
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
            self.live.add(id);
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
        self.live.remove(id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use fincore_engine::{AssetId, BalanceChanged, OrderCancelled, OrderId};

    /// The body of `message` as the server encodes it.
    fn body(message: &ServerMsg) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode_into(1, &mut out);
        out.split_off(wire::HEADER_LEN)
    }

    fn report(request_id: u64, event: Event) -> ServerMsg {
        ServerMsg::ExecReport(wire::ExecReport { journal_seq: 40, request_id, event })
    }

    #[test]
    fn counted_reports_are_checked_and_needed_ones_decoded() {
        let balance = Event::Balance(BalanceChanged {
            account: AccountId(2),
            asset: AssetId(0),
            available: 5,
            held: 6,
            pending: 0,
        });
        let cancelled = Event::Cancelled(OrderCancelled {
            order_id: OrderId(3),
            account: AccountId(2),
            instrument: InstrumentId(0),
            client_order_id: ClientOrderId(4),
            qty_cancelled: Qty(1),
            reason: fincore_engine::CancelReason::User,
        });
        let exec = wire::msg::EXEC_REPORT;
        // A balance update is counted, not decoded.
        let bytes = body(&report(7, balance));
        let Ok(Reply::Report { request_id: 7, journal_seq: 40, event: None }) =
            decode_reply(exec, &bytes)
        else {
            panic!("counted")
        };
        // One byte short or long is refused, as is a body without a whole front.
        for bad in [&bytes[..bytes.len() - 1], &[bytes.as_slice(), &[0]].concat(), &bytes[..19]] {
            let Err(ClientError::Protocol(why)) = decode_reply(exec, bad) else {
                panic!("{} bytes accepted", bad.len())
            };
            assert!(why.starts_with("undecodable message type 110"), "{why}");
        }
        // A cancel is decoded: the generator forgets the order.
        let bytes = body(&report(8, cancelled));
        let Ok(Reply::Report { request_id: 8, event: Some(event), .. }) =
            decode_reply(exec, &bytes)
        else {
            panic!("decoded")
        };
        assert_eq!(event, cancelled);
        // An unknown event tag is refused.
        let mut unknown = bytes.clone();
        unknown[16..20].copy_from_slice(&99u32.to_le_bytes());
        assert!(matches!(decode_reply(exec, &unknown), Err(ClientError::Protocol(_))));
    }

    #[test]
    fn session_messages_are_decoded_and_the_rest_skipped() {
        let logout = ServerMsg::Logout(wire::SessionReason::ClientLogout.code());
        let code = wire::SessionReason::ClientLogout.code();
        let Err(ClientError::LoggedOut(reason)) =
            decode_reply(wire::msg::LOGOUT_NOTICE, &body(&logout))
        else {
            panic!("a logout")
        };
        assert_eq!(reason, code);
        let reject = wire::SessionReject {
            reason: wire::SessionReason::RateLimited.code(),
            ref_type: wire::msg::NEW_ORDER,
            ref_request_id: 9,
            ref_client_id: 10,
        };
        let bytes = body(&ServerMsg::SessionReject(reject));
        let Ok(Reply::Refused(back)) = decode_reply(wire::msg::SESSION_REJECT, &bytes) else {
            panic!("a refusal")
        };
        assert_eq!(back, reject);
        assert!(decode_reply(wire::msg::SESSION_REJECT, &bytes[1..]).is_err());
        assert!(matches!(decode_reply(wire::msg::HEARTBEAT, &[]), Ok(Reply::Other)));
    }

    fn flight(client_id: u64) -> Flight {
        Flight { due: Instant::now(), client_id }
    }

    /// Answers in and out of order, ids with gaps, repeated and unknown ids: each
    /// recorded id comes out once, with its own flight, and the queue shrinks from the
    /// front as the oldest are answered.
    #[test]
    fn in_flight_window_finds_each_request_once() {
        let mut window = IdWindow::new();
        assert!(window.remove(0).is_none());
        for request in [10, 11, 12, 15, 16] {
            window.insert(request, flight(request * 100));
        }
        assert_eq!(window.len(), 5);
        assert!(window.remove(13).is_none(), "a gap is not in flight");
        assert!(window.remove(9).is_none(), "below the window");
        assert!(window.remove(17).is_none(), "above the window");
        assert_eq!(window.remove(12).map(|f| f.client_id), Some(1_200));
        assert!(window.remove(12).is_none(), "answered once");
        assert_eq!(window.slots.len(), 7, "an answer in the middle frees nothing yet");
        assert_eq!(window.remove(10).map(|f| f.client_id), Some(1_000));
        assert_eq!(window.remove(11).map(|f| f.client_id), Some(1_100));
        assert_eq!((window.base, window.slots.len()), (15, 2), "the gap went with them");
        window.insert(20, flight(2_000));
        assert_eq!(window.remove(16).map(|f| f.client_id), Some(1_600));
        assert_eq!(window.remove(15).map(|f| f.client_id), Some(1_500));
        assert_eq!((window.base, window.len()), (20, 1));
        assert_eq!(window.remove(20).map(|f| f.client_id), Some(2_000));
        assert!(window.is_empty() && window.slots.is_empty());
        window.insert(25, flight(2_500));
        assert_eq!((window.base, window.remove(25).map(|f| f.client_id)), (25, Some(2_500)));
    }

    /// Orders added, removed from the middle, the ends and twice, and ids never added:
    /// the list holds exactly the ids added and not removed, and each one's place
    /// stays right as the list is reordered by removals.
    #[test]
    fn live_orders_keep_each_id_once_and_its_place() {
        let mut live = LiveOrders::new();
        for id in [100, 101, 103, 104, 107] {
            live.add(id);
        }
        live.remove(102);
        live.remove(99);
        live.remove(108);
        assert_eq!(live.len(), 5, "ids never added change nothing");
        live.remove(101);
        live.remove(101);
        live.remove(100);
        live.add(110);
        live.remove(107);
        let mut ids: Vec<u64> = (0..live.len()).map(|place| live.at(place)).collect();
        ids.sort_unstable();
        assert_eq!(ids, [103, 104, 110]);
        for place in 0..live.len() {
            let id = live.at(place);
            assert_eq!(live.places.get_mut(id).copied(), Some(place as u32), "place of {id}");
        }
        for id in [103, 104, 110] {
            live.remove(id);
        }
        assert!(live.is_empty() && live.places.is_empty() && live.places.slots.is_empty());
    }
}
