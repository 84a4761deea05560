//! The pipeline between the gateway thread and the engine thread (DESIGN.md section 2):
//! the inbound ring (`disruptor`, one producer: the gateway), the engine thread that
//! journals then applies each command through the [`Runner`], and the bounded lock-free
//! outbound ring (a second `disruptor`, one producer: the engine thread) back to the
//! gateway, which the engine thread fills and wakes once per batch. Both directions
//! move whole batches: one cursor update per batch, not per message. (A first version
//! used a `crossbeam` `ArrayQueue` per event for the way back; its per-event atomic
//! traffic between the two cores capped the pipeline at 0.4-0.8 M commands/s, see
//! BENCHMARKS.md.)
//!
//! Each slot of the outbound ring holds a chunk of items ([`OutChunk`]): a batch's,
//! handed over at its end or as soon as a command leaves it holding [`OUT_CHUNK`] items
//! or more (a query's answer, as soon as it reaches that). The engine thread swaps the
//! vector it has filled with the one in the slot it claims (which the gateway has
//! finished reading), and reuses that one, emptied. No item is copied on the way: the
//! engine writes each once, the gateway reads it in place. A command's items are never
//! split between chunks.
//!
//! The engine thread's idle strategy is adaptive by default: spin briefly, then yield,
//! then park until the gateway publishes (it unparks the engine thread only when the
//! thread said it is about to park). [`WaitMode::BusySpin`] never parks, for a
//! dedicated core. The gateway thread never blocks on the engine: it publishes what
//! fits into the ring and keeps the rest. The engine thread waits (spinning, then
//! yielding) only when the outbound ring is full, which the gateway drains without
//! ever blocking on a socket, so the two cannot deadlock.
//!
//! Routing: every event leaves tagged with the session whose message caused it and the
//! users who own the accounts it concerns ([`Outbound::owners`]); the gateway turns
//! that into execution reports for those users' sessions and market data for
//! subscribers.

use crate::RunnerError;
use crate::metrics::{
    EngineCounts, GAUGE_REFRESH_EVERY, IDLE_REFRESH_MIN, Metrics, SAMPLE_EVERY, Stage,
    StageRecorder, Trace,
};
use crate::runner::{Origin, Runner};
use crate::wire::{SessionReason, SnapshotTaken};
use disruptor::{
    BusySpin, EventPoller, Polling, Producer, SingleConsumerBarrier, SingleProducer,
    SingleProducerBarrier,
};
use fincore_engine::{
    AccountId, CommandBody, CommandKind, DEPTH_LEVELS_MAX, Event, InstrumentId, PaymentAction,
    Query, SYSTEM_USER, UserId,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Outbound items the engine thread gathers before it hands them over: the chunk goes
/// once a command leaves it holding this many or more (a command that makes more, such
/// as a large mass cancel, goes whole in one chunk).
pub const OUT_CHUNK: usize = 1024;

/// The capacity each chunk is given: the buffer is handed over once a command leaves
/// it holding [`OUT_CHUNK`] items or more, so the room above that takes the last
/// command's items without the vector growing (and copying itself) on the engine
/// thread, unless that one command makes more than [`OUT_CHUNK`] items.
const OUT_CHUNK_CAPACITY: usize = 2 * OUT_CHUNK;

/// An emptied chunk keeps at most this capacity: one exceptional batch does not keep
/// its memory in the ring's rotation.
const OUT_CHUNK_KEPT: usize = 2 * OUT_CHUNK_CAPACITY;

/// One slot of the outbound ring: a batch of items (or part of a large batch), handed
/// over whole.
pub type OutChunk = Vec<Outbound>;

/// "No user" in [`Outbound::owners`].
pub const NO_USER: UserId = UserId(u32::MAX);

/// What the engine thread is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundBody {
    /// Journal and apply a command.
    Command(CommandBody),
    /// Answer a query (not journaled).
    Query(Query),
    /// Answer a depth query whose result opens a market-data subscription.
    Subscribe(InstrumentId),
    /// Write a snapshot.
    Snapshot,
    /// Cancel every resting order of the user's accounts (cancel-on-disconnect); one
    /// journaled `MassCancel` per account with live orders.
    CancelAll,
    /// Nothing to do but answer [`OutboundBody::Barrier`]: everything the session sent
    /// before has been answered (used to finish a logout).
    Barrier,
    /// Nothing (the ring's initial contents).
    Nop,
}

/// One entry of the inbound ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The session that sent it (0: the server itself).
    pub session: u32,
    /// The authenticated user.
    pub user: UserId,
    /// The client's request id.
    pub request_id: u64,
    /// Receive time, ns since the Unix epoch (the gateway's clock).
    pub time_ns: u64,
    /// Hash of the peer address (journal audit field).
    pub peer: u64,
    /// What to do.
    pub body: InboundBody,
    /// Latency trace of a sampled message (`--metrics`): read and publish times.
    pub trace: Trace,
}

impl Inbound {
    const EMPTY: Inbound = Inbound {
        session: 0,
        user: NO_USER,
        request_id: 0,
        time_ns: 0,
        peer: 0,
        body: InboundBody::Nop,
        trace: Trace::NONE,
    };
}

/// What the engine thread sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundBody {
    /// An engine event.
    Event(Event),
    /// An event answering a [`InboundBody::Subscribe`] (depth levels, then `QueryDone`,
    /// or a `Rejected`).
    SubscribeAnswer(Event),
    /// A snapshot was written.
    Snapshot(SnapshotTaken),
    /// The message could not be carried out (journal failure, snapshot failure).
    Failed(SessionReason),
    /// The answer to [`InboundBody::Barrier`].
    Barrier,
}

/// One entry of the outbound ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// The session whose message caused it (0: none, e.g. setup or a disconnected
    /// session's cancel-on-disconnect).
    pub session: u32,
    /// That message's request id.
    pub request_id: u64,
    /// The journal sequence of the command (queries: the last applied).
    pub journal_seq: u64,
    /// Users whose sessions should see the event, [`NO_USER`] for none.
    pub owners: [UserId; 2],
    /// The event or result.
    pub body: OutboundBody,
    /// Latency trace (read time, end of apply), on the first item of a sampled
    /// command only.
    pub trace: Trace,
}

/// How the engine thread waits for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitMode {
    /// Spin, then yield, then park until woken. Safe with other busy threads on 2 cores.
    #[default]
    Adaptive,
    /// Spin forever: lowest latency, takes a whole core.
    BusySpin,
}

/// Sizes and modes of the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// Inbound ring slots (a power of two).
    pub ring_size: usize,
    /// Outbound ring slots (a power of two), each a chunk of about [`OUT_CHUNK`]
    /// items at most, unless one command made more ([`OutChunk`]).
    pub outbound_slots: usize,
    /// The engine thread's idle strategy.
    pub wait: WaitMode,
    /// Write a snapshot when the engine thread stops.
    pub snapshot_on_stop: bool,
}

impl Default for PipelineConfig {
    fn default() -> PipelineConfig {
        PipelineConfig {
            ring_size: 1 << 12,
            outbound_slots: 1 << 3,
            wait: WaitMode::Adaptive,
            snapshot_on_stop: true,
        }
    }
}

/// What the engine thread reports when it stops.
#[derive(Debug)]
pub struct EngineExit {
    /// The last journaled sequence.
    pub seq: u64,
    /// The state hash at that sequence.
    pub state_hash: u64,
    /// The snapshot written on stop, if any.
    pub snapshot: Option<PathBuf>,
    /// Why the stop snapshot could not be written, if it failed.
    pub snapshot_error: Option<String>,
    /// Commands and queries handled.
    pub handled: u64,
}

/// Where a parked engine thread can be found.
struct Parker {
    sleeping: AtomicBool,
    thread: std::sync::OnceLock<Thread>,
}

/// Spins of the adaptive wait before yielding, and yields before parking.
///
/// Brief on purpose (about 10 us of spinning, a few yields): on 2 vCPUs shared with
/// the gateway and a load client, a thread that spins or yields through every gap
/// between batches takes CPU time the others need, and the scheduler makes it pay that
/// back by waiting for a core when work arrives. At 100 k commands/s, 2 000 spins and
/// 200 yields kept the engine thread on a core 91 % of the time and gave a median round
/// trip of 306 - 376 us; 300 spins, 208 - 216 us (BENCHMARKS.md, load section).
const SPINS: u32 = 300;
const YIELDS: u32 = 8;
/// Spins of the engine thread waiting for room in a full outbound ring, before it
/// yields (the gateway is then busy draining it, not idle).
const FULL_SPINS: u32 = 2_000;
/// While idle, the engine thread looks at the clock for due authorization deadlines
/// once per this many idle rounds.
const DEADLINE_CHECK_SPINS: u32 = 1_024;
/// A parked engine thread wakes up by itself this often (a safety net; the gateway
/// unparks it when it publishes).
const PARK_TIMEOUT: Duration = Duration::from_millis(100);

type Ring = SingleProducer<Inbound, SingleConsumerBarrier>;

/// The reading end of the outbound ring.
pub struct OutboundReader {
    poller: EventPoller<OutChunk, SingleProducerBarrier>,
    metrics: Option<Arc<Metrics>>,
}

impl OutboundReader {
    /// Calls `f` on the outbound items available now, in order and in place in the ring
    /// (no copy; the engine thread cannot reuse a chunk until this is done with it),
    /// chunk by chunk until `max` items or more have been seen; returns how many. The
    /// last chunk is always finished, so this may go past `max` by up to one chunk,
    /// which is one command's items if that command made more than [`OUT_CHUNK`].
    pub fn drain_with(&mut self, max: usize, mut f: impl FnMut(&Outbound)) -> usize {
        let mut count = 0;
        while count < max {
            let Ok(mut chunks) = self.poller.take(1) else { break };
            for chunk in &mut chunks {
                chunk.iter().for_each(&mut f);
                count += chunk.len();
            }
        }
        if count > 0
            && let Some(metrics) = &self.metrics
        {
            metrics.gateway.outbound_drained.add(count as u64);
        }
        count
    }
}

/// The running pipeline, held by the gateway thread.
pub struct Pipeline {
    producer: Option<Ring>,
    parker: Arc<Parker>,
    /// The outbound ring's reader; `None` while lent out ([`Pipeline::lend_reader`]).
    outbound: Option<OutboundReader>,
    engine: Option<JoinHandle<Result<EngineExit, RunnerError>>>,
    durability: fincore_journal::DurabilityHandle,
    fsync: bool,
    failed: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    /// `--metrics`: shared counters, and the gateway thread's own stage samples.
    metrics: Option<Arc<Metrics>>,
    recorder: StageRecorder,
    /// Messages until the next sampled one.
    sample_countdown: u32,
}

impl Pipeline {
    /// Starts the engine thread around `runner`. `wake` is called (on the engine
    /// thread) after each batch's events are in the outbound queue.
    pub fn start(
        runner: Runner,
        config: PipelineConfig,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Pipeline> {
        Pipeline::start_with_metrics(runner, config, None, wake)
    }

    /// [`Pipeline::start`], with the engine and gateway threads keeping `metrics`.
    pub fn start_with_metrics(
        runner: Runner,
        config: PipelineConfig,
        metrics: Option<Arc<Metrics>>,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Pipeline> {
        let (poller, builder) =
            disruptor::build_single_producer(config.ring_size, || Inbound::EMPTY, BusySpin)
                .new_event_poller();
        let producer = builder.build();
        let parker =
            Arc::new(Parker { sleeping: AtomicBool::new(false), thread: Default::default() });
        let (outbound, out_builder) = disruptor::build_single_producer(
            config.outbound_slots,
            || OutChunk::with_capacity(OUT_CHUNK_CAPACITY),
            BusySpin,
        )
        .new_event_poller();
        let out_producer = out_builder.build();
        let failed = Arc::new(AtomicBool::new(false));
        let durability = runner.journal().durability_handle();
        let fsync = runner.journal().durability() == fincore_journal::Durability::Fsync;
        let first_seq = runner.journal().next_seq();
        let counts_at_start = EngineCounts::read(runner.engine());
        let owners = AccountOwners::of(runner.engine());
        let engine_thread = EngineThread {
            runner,
            outbound: out_producer,
            out_buffer: Vec::with_capacity(OUT_CHUNK_CAPACITY),
            parker: Arc::clone(&parker),
            failed: Arc::clone(&failed),
            wait: config.wait,
            snapshot_on_stop: config.snapshot_on_stop,
            events: Vec::with_capacity(4096),
            owners,
            wake: Box::new(wake),
            handled: 0,
            metrics: metrics.clone(),
            recorder: StageRecorder::default(),
            last_refresh: std::time::Instant::now(),
            first_seq,
            counts_at_start,
        };
        let engine = std::thread::Builder::new()
            .name("fincore-engine".into())
            .spawn(move || engine_thread.run(poller))?;
        parker.thread.set(engine.thread().clone()).expect("set once");
        let reader = OutboundReader { poller: outbound, metrics: metrics.clone() };
        Ok(Pipeline {
            producer: Some(producer),
            parker,
            outbound: Some(reader),
            engine: Some(engine),
            durability,
            fsync,
            failed,
            closed: Arc::new(AtomicBool::new(false)),
            metrics,
            recorder: StageRecorder::default(),
            sample_countdown: 1,
        })
    }

    /// The metrics this pipeline keeps (`--metrics`), for the gateway's own counters.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// The trace for the next message read from a socket: one message in
    /// [`SAMPLE_EVERY`] is timed through the pipeline (none without metrics).
    #[inline]
    pub fn trace_next(&mut self) -> Trace {
        let Some(metrics) = &self.metrics else { return Trace::NONE };
        self.sample_countdown -= 1;
        if self.sample_countdown > 0 {
            return Trace::NONE;
        }
        self.sample_countdown = SAMPLE_EVERY;
        Trace { read_ns: metrics.now_ns(), stamp_ns: 0 }
    }

    /// Records the last two stages of a traced reply, just written to its socket.
    pub fn written(&mut self, trace: Trace) {
        if let Some(metrics) = &self.metrics {
            let now = metrics.now_ns();
            self.recorder.record(metrics, Stage::ApplyToWrite, trace.stamp_ns, now);
            self.recorder.record(metrics, Stage::Total, trace.read_ns, now);
        }
    }

    /// Moves the gateway thread's samples to the shared histograms (call when idle).
    pub fn merge_samples(&mut self) {
        if let Some(metrics) = &self.metrics {
            self.recorder.merge(metrics);
        }
    }

    /// Publishes as many of `pending` (from the front) as the ring has room for, as one
    /// batch, and wakes the engine thread if it is parked. Returns how many went.
    pub fn publish(&mut self, pending: &mut VecDeque<Inbound>) -> usize {
        let Some(producer) = self.producer.as_mut() else { return 0 };
        let mut n = pending.len();
        let (metrics, recorder) = (self.metrics.as_deref(), &mut self.recorder);
        while n > 0 {
            let result = producer.try_batch_publish(n, |slots| {
                for (slot, item) in slots.zip(pending.drain(..n)) {
                    *slot = item;
                    if let Some(metrics) = metrics.filter(|_| item.trace.sampled()) {
                        let now = metrics.now_ns();
                        recorder.record(metrics, Stage::ReadToPublish, item.trace.read_ns, now);
                        slot.trace.stamp_ns = now;
                    }
                }
            });
            match result {
                Ok(_) => break,
                Err(disruptor::MissingFreeSlots(missing)) => {
                    n = n.saturating_sub(usize::try_from(missing).unwrap_or(usize::MAX));
                }
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.gateway.inbound_published.add(n as u64);
        }
        if n > 0 {
            // Pairs with the engine thread's announcement before its last poll.
            fence(Ordering::SeqCst);
            if self.parker.sleeping.load(Ordering::SeqCst) {
                self.parker.thread.get().expect("set at start").unpark();
            }
        }
        n
    }

    /// Calls `f` on the outbound items available now, in place in the ring (no copy),
    /// until `max` or more have been seen ([`OutboundReader::drain_with`]); returns how
    /// many. Panics if the reader is lent ([`Pipeline::lend_reader`]).
    pub fn drain_with(&mut self, max: usize, f: impl FnMut(&Outbound)) -> usize {
        self.reader().drain_with(max, f)
    }

    /// Lends the outbound ring's reader, so that its owner can handle items in place
    /// while changing its own state (the gateway routes them); give it back with
    /// [`Pipeline::restore_reader`] before draining through the pipeline again.
    pub fn lend_reader(&mut self) -> OutboundReader {
        self.outbound.take().expect("the outbound reader is lent once at a time")
    }

    /// Takes back the reader lent by [`Pipeline::lend_reader`].
    pub fn restore_reader(&mut self, reader: OutboundReader) {
        debug_assert!(self.outbound.is_none(), "one reader");
        self.outbound = Some(reader);
    }

    fn reader(&mut self) -> &mut OutboundReader {
        self.outbound.as_mut().expect("the outbound reader is back")
    }

    /// The highest journal sequence whose replies may be released: everything in
    /// `process` mode, the synced sequence in `fsync` mode.
    pub fn releasable_seq(&self) -> u64 {
        if self.fsync { self.durability.durable_seq() } else { u64::MAX }
    }

    /// In `fsync` mode, starts a thread that calls `wake` each time the durable
    /// sequence advances, so that replies held for durability leave as soon as they
    /// may (the gateway sleeps in its poll meanwhile). It stops when the pipeline is
    /// closed. Nothing to do in `process` mode.
    pub fn watch_durability(&self, wake: impl Fn() + Send + 'static) -> std::io::Result<()> {
        if !self.fsync {
            return Ok(());
        }
        let handle = self.durability.clone();
        let closed = Arc::clone(&self.closed);
        std::thread::Builder::new().name("fincore-durable".into()).spawn(move || {
            let mut seen = handle.durable_seq();
            while !closed.load(Ordering::Acquire) {
                if handle.wait_durable(seen + 1, PARK_TIMEOUT) {
                    seen = handle.durable_seq();
                    wake();
                }
            }
        })?;
        Ok(())
    }

    /// True once the pipeline cannot go on and the server must stop: the engine thread
    /// could not journal a command, the journal could not sync (`fsync` mode: replies
    /// would wait forever), or the engine thread ended before it was asked to.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
            || self.durability.failed()
            || (self.producer.is_some() && self.engine_finished())
    }

    /// Closes the ring: the engine thread handles everything already published, writes
    /// the stop snapshot, closes the journal and finishes. Keep draining the outbound
    /// queue until [`Pipeline::engine_finished`], then [`Pipeline::join`].
    pub fn close(&mut self) {
        self.closed.store(true, Ordering::Release);
        drop(self.producer.take());
        if let Some(thread) = self.parker.thread.get() {
            thread.unpark();
        }
    }

    /// Whether the engine thread has finished (it stops only after [`Pipeline::close`]).
    pub fn engine_finished(&self) -> bool {
        self.engine.as_ref().is_none_or(|e| e.is_finished())
    }

    /// The engine thread's report, once it has finished.
    pub fn join(&mut self) -> Result<EngineExit, RunnerError> {
        let Some(engine) = self.engine.take() else {
            return Err(RunnerError::Data("the pipeline was already joined".into()));
        };
        match engine.join() {
            Ok(result) => result,
            Err(_) => Err(RunnerError::Data("the engine thread panicked".into())),
        }
    }

    /// Closes the ring, discards what comes out until the engine thread finishes, and
    /// returns its report (for owners that do not route the last events anywhere).
    pub fn shutdown(&mut self) -> Result<EngineExit, RunnerError> {
        self.close();
        while !self.engine_finished() {
            self.drain_with(usize::MAX, |_| {});
            std::thread::sleep(Duration::from_micros(200));
        }
        self.join()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.engine.is_some() {
            let _ = self.shutdown();
        }
    }
}

/// Commands that change the venue or move money from outside: logged at info level.
fn is_admin(kind: CommandKind) -> bool {
    use CommandKind::*;
    matches!(
        kind,
        CreateUser
            | CreateAsset
            | CreateInstrument
            | CreateAccount
            | Deposit
            | Withdraw
            | SetAccountStatus
            | SetInstrumentStatus
            | SetPaymentLimits
            | SetAccountLimits
            | SetAccountBlocked
    )
}

/// Where a command's events go: straight into the outbound buffer, each with its
/// owners, found as the event is emitted. `emit` is inlined into the engine's emission
/// sites, where the event's kind is usually known, so the owners match mostly folds
/// away. (Until session 21 the owners were filled in by a second pass over the
/// command's items after the apply, matching on each item's kind. This way the engine
/// thread runs 6 % fewer instructions per command and half the mispredicted branches
/// under callgrind, `tools/instructions.sh`; no throughput gain could be shown on the
/// test VM, BENCHMARKS.md "Session 21".)
struct OutSink<'a> {
    out: &'a mut Vec<Outbound>,
    template: Outbound,
    owners: &'a mut AccountOwners,
}

impl fincore_engine::EventSink for OutSink<'_> {
    #[inline(always)]
    fn emit(&mut self, event: Event) {
        if let Event::AccountCreated { account, owner } = event {
            self.owners.insert(account, owner);
        }
        let owners = event_owners(&event, |account| self.owners.get(account));
        self.out.push(Outbound { owners, body: OutboundBody::Event(event), ..self.template });
    }
}

/// The engine thread's copy of who owns each account, so that an event's owners are
/// found while the engine is applying (and mutably borrowed). Filled from the engine at
/// start and kept up to date from `AccountCreated`, the only event that gives an
/// account its owner (owners never change). In builds with debug assertions every
/// command's owners are checked against the engine's own accounts.
#[derive(Debug, Default)]
struct AccountOwners(Vec<UserId>);

impl AccountOwners {
    fn of(engine: &fincore_engine::Engine) -> AccountOwners {
        let mut owners = AccountOwners::default();
        for (account, state) in engine.accounts() {
            owners.insert(account, state.owner);
        }
        owners
    }

    fn insert(&mut self, account: AccountId, owner: UserId) {
        let index = account.0 as usize;
        if index >= self.0.len() {
            self.0.resize(index + 1, NO_USER);
        }
        self.0[index] = owner;
    }

    #[inline]
    fn get(&self, account: AccountId) -> UserId {
        self.0.get(account.0 as usize).copied().unwrap_or(NO_USER)
    }
}

/// The users whose sessions should see `event` ([`NO_USER`] for none), with `owner`
/// giving an account's owner.
#[inline(always)]
fn event_owners(event: &Event, owner: impl Fn(AccountId) -> UserId) -> [UserId; 2] {
    match event {
        Event::Accepted(e) => [owner(e.account), NO_USER],
        Event::Cancelled(e) => [owner(e.account), NO_USER],
        Event::Amended(e) => [owner(e.account), NO_USER],
        Event::Balance(e) => [owner(e.account), NO_USER],
        Event::MassCancelled { account, .. }
        | Event::AccountStatusChanged { account, .. }
        | Event::AccountLimitsSet { account, .. }
        | Event::AccountBlocked { account, .. } => [owner(*account), NO_USER],
        // A retry changes nothing: only its sender hears of it (owners none: the
        // origin gets events about no one).
        Event::Payment { action: PaymentAction::Duplicate, .. } => [NO_USER; 2],
        Event::Payment { info, .. } => {
            let (debit, credit) = (owner(info.debit), owner(info.credit));
            [debit, if credit == debit { NO_USER } else { credit }]
        }
        Event::AccountCreated { owner, .. } => [*owner, NO_USER],
        Event::Fill(e) => {
            let maker = owner(e.maker_account);
            let taker = owner(e.taker_account);
            [maker, if taker == maker { NO_USER } else { taker }]
        }
        _ => [NO_USER; 2],
    }
}

struct EngineThread {
    runner: Runner,
    outbound: SingleProducer<OutChunk, SingleConsumerBarrier>,
    /// This batch's outbound items, handed over together.
    out_buffer: OutChunk,
    parker: Arc<Parker>,
    failed: Arc<AtomicBool>,
    wait: WaitMode,
    snapshot_on_stop: bool,
    events: Vec<Event>,
    /// Who owns each account (for the outbound items' owners).
    owners: AccountOwners,
    wake: Box<dyn Fn() + Send>,
    handled: u64,
    /// `--metrics`: counters this thread keeps, and its own stage samples.
    metrics: Option<Arc<Metrics>>,
    recorder: StageRecorder,
    /// When the gauges were last refreshed.
    last_refresh: std::time::Instant,
    /// The first sequence this process journals (the metrics count records from it).
    first_seq: u64,
    /// The engine's own counts when this process started (the metrics count from them).
    counts_at_start: EngineCounts,
}

impl EngineThread {
    fn run(
        mut self,
        mut poller: EventPoller<Inbound, SingleProducerBarrier>,
    ) -> Result<EngineExit, RunnerError> {
        let mut idle: u32 = 0;
        let mut rounds: u32 = 0;
        loop {
            match poller.poll() {
                Ok(mut batch) => {
                    if idle > 0 {
                        self.parker.sleeping.store(false, Ordering::SeqCst);
                        idle = 0;
                    }
                    let mut taken = 0;
                    for inbound in &mut batch {
                        self.handle(inbound);
                        taken += 1;
                    }
                    drop(batch);
                    if let Some(metrics) = &self.metrics {
                        metrics.engine.inbound_consumed.add(taken);
                    }
                    self.end_batch();
                }
                Err(Polling::NoEvents) => {
                    // Idle: authorizations may be due with nothing arriving to expire
                    // them. Checked every DEADLINE_CHECK_SPINS idle rounds, and on every
                    // wake-up of a parked thread (at least every PARK_TIMEOUT).
                    rounds = rounds.wrapping_add(1);
                    let parking = idle >= SPINS + YIELDS && self.wait != WaitMode::BusySpin;
                    let looking = parking || rounds.is_multiple_of(DEADLINE_CHECK_SPINS);
                    if looking
                        && self.metrics.is_some()
                        && self.last_refresh.elapsed() >= IDLE_REFRESH_MIN
                    {
                        self.refresh_metrics();
                    }
                    if looking && self.tick_if_due() {
                        self.parker.sleeping.store(false, Ordering::SeqCst);
                        idle = 0;
                        continue;
                    }
                    idle = self.idle(idle);
                }
                Err(Polling::Shutdown) => break,
            }
        }
        self.parker.sleeping.store(false, Ordering::SeqCst);
        self.finish()
    }

    /// One idle round; returns the new idle count.
    fn idle(&self, idle: u32) -> u32 {
        if self.wait == WaitMode::BusySpin || idle < SPINS {
            std::hint::spin_loop();
        } else if idle < SPINS + YIELDS {
            std::thread::yield_now();
        } else if !self.parker.sleeping.swap(true, Ordering::SeqCst) {
            // Announced: poll once more before parking, so a publish that raced with
            // the announcement is seen (the gateway unparks only announced threads).
            return idle;
        } else {
            std::thread::park_timeout(PARK_TIMEOUT);
            return idle;
        }
        idle.saturating_add(1)
    }

    /// Journals and applies a `Tick` if the wall clock has reached the engine's next
    /// authorization deadline: the expiry then happens at a journaled sequence number,
    /// so replay repeats it exactly. Returns true if it did.
    fn tick_if_due(&mut self) -> bool {
        let Some(deadline) = self.runner.engine().next_deadline() else { return false };
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let now = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
        if now < deadline {
            return false;
        }
        // From the server itself (session 0, the system user): routed to the owners of
        // the expired payments only.
        let inbound = Inbound {
            user: SYSTEM_USER,
            time_ns: now,
            body: InboundBody::Command(CommandBody::Tick),
            ..Inbound::EMPTY
        };
        self.handle(&inbound);
        self.end_batch();
        true
    }

    /// The end of a batch: makes it eligible for durability, publishes its output,
    /// wakes the gateway, and (with metrics) brings the journal's figures up to date,
    /// once per batch rather than per command.
    fn end_batch(&mut self) {
        // Counted before the batch's replies are released, so that a client that has
        // its reply finds it counted.
        if let Some(metrics) = &self.metrics {
            let journal = self.runner.journal();
            let engine = &metrics.engine;
            engine.journal_records.set(journal.next_seq() - self.first_seq);
            engine.journal_bytes.set(journal.appended_bytes());
            engine.journal_seq.set(journal.last_seq());
            metrics.publish_engine_counts(self.runner.engine(), &self.counts_at_start);
        }
        self.runner.publish();
        self.flush_out();
        (self.wake)();
    }

    /// Refreshes the gauges only this thread can read (resting orders, instrument
    /// names) and hands over its stage samples. Every [`GAUGE_REFRESH_EVERY`] messages,
    /// and before parking if [`IDLE_REFRESH_MIN`] has passed.
    fn refresh_metrics(&mut self) {
        let Some(metrics) = &self.metrics else { return };
        self.last_refresh = std::time::Instant::now();
        self.recorder.merge(metrics);
        let engine = self.runner.engine();
        let mut count = 0;
        for instrument in engine.instruments() {
            let book = &instrument.book;
            let resting: u64 = [&book.bids, &book.asks]
                .iter()
                .flat_map(|ladder| ladder.iter_best_first())
                .map(|level| u64::from(level.orders))
                .sum();
            if let Some(cell) =
                metrics.engine.resting_orders.get(usize::from(instrument.spec.instrument.0))
            {
                cell.set(resting);
            }
            count += 1;
        }
        // Instruments are only ever added (never renamed or removed): the label list
        // changes only when their number does.
        if let Ok(mut known) = metrics.engine.instruments.lock()
            && known.len() != count
        {
            *known = engine
                .instruments()
                .map(|i| (i.spec.instrument.0, i.spec.symbol.as_str().to_string()))
                .collect();
        }
    }

    fn handle(&mut self, inbound: &Inbound) {
        self.handled += 1;
        if self.metrics.is_some() && self.handled.is_multiple_of(GAUGE_REFRESH_EVERY) {
            self.refresh_metrics();
        }
        let origin = Origin { user: inbound.user, session: inbound.session, peer: inbound.peer };
        match inbound.body {
            InboundBody::Command(body) => self.command(origin, inbound, body),
            InboundBody::Query(query) => self.answer(inbound, &query, OutboundBody::Event),
            InboundBody::Subscribe(instrument) => {
                let query = Query::Depth { instrument, levels: DEPTH_LEVELS_MAX };
                self.answer(inbound, &query, OutboundBody::SubscribeAnswer);
            }
            InboundBody::Snapshot => {
                let seq = self.runner.engine().last_seq();
                let body = match self.runner.snapshot() {
                    Ok(done) => {
                        let file = done.path.display();
                        if done.written {
                            tracing::info!(seq = done.seq, %file, "snapshot written");
                        } else {
                            tracing::debug!(seq = done.seq, %file, "snapshot already at this seq");
                        }
                        if let Some(metrics) = &self.metrics {
                            if done.written {
                                metrics.engine.snapshots.add(1);
                            }
                            metrics.engine.last_snapshot_seq.set(done.seq);
                        }
                        OutboundBody::Snapshot(SnapshotTaken {
                            seq: done.seq,
                            state_hash: done.state_hash,
                        })
                    }
                    Err(error) => {
                        tracing::error!(%error, "snapshot failed");
                        if let Some(metrics) = &self.metrics {
                            metrics.engine.snapshot_failures.add(1);
                        }
                        OutboundBody::Failed(SessionReason::SnapshotFailed)
                    }
                };
                self.push(inbound, seq, [NO_USER; 2], body);
            }
            InboundBody::CancelAll => {
                let engine = self.runner.engine();
                let accounts: Vec<AccountId> = engine
                    .accounts()
                    .filter(|(_, a)| a.owner == inbound.user && a.open_orders > 0)
                    .map(|(id, _)| id)
                    .collect();
                for account in accounts {
                    let body = CommandBody::MassCancel { account, instrument: None };
                    self.command(origin, inbound, body);
                }
            }
            InboundBody::Barrier => {
                let seq = self.runner.engine().last_seq();
                self.push(inbound, seq, [NO_USER; 2], OutboundBody::Barrier);
            }
            InboundBody::Nop => {}
        }
    }

    /// Answers a query from the live engine (nothing journaled); `wrap` says what the
    /// answer is for.
    fn answer(&mut self, inbound: &Inbound, query: &Query, wrap: fn(Event) -> OutboundBody) {
        if let Some(metrics) = &self.metrics {
            metrics.engine.queries.add(1);
        }
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.runner.engine().query(inbound.user, query, &mut events);
        let seq = self.runner.engine().last_seq();
        for event in events.drain(..) {
            self.push(inbound, seq, [NO_USER; 2], wrap(event));
        }
        self.events = events;
    }

    fn command(&mut self, origin: Origin, inbound: &Inbound, body: CommandBody) {
        if self.failed.load(Ordering::Relaxed) {
            let seq = self.runner.engine().last_seq();
            let failed = OutboundBody::Failed(SessionReason::JournalFailure);
            self.push(inbound, seq, [NO_USER; 2], failed);
            return;
        }
        // The journal's times never go backwards, even if the gateway's clock does.
        let time_ns = inbound.time_ns.max(self.runner.engine().time_ns());
        // Events go straight into the outbound buffer, each with its owners
        // (`OutSink`); the buffer is later handed to the gateway whole.
        let start = self.out_buffer.len();
        let template = Outbound {
            session: inbound.session,
            request_id: inbound.request_id,
            journal_seq: self.runner.journal().next_seq(),
            owners: [NO_USER; 2],
            body: OutboundBody::Failed(SessionReason::ServerShutdown),
            trace: Trace::NONE,
        };
        let mut sink = OutSink { out: &mut self.out_buffer, template, owners: &mut self.owners };
        let submitted = match self.metrics.as_deref().filter(|_| inbound.trace.sampled()) {
            None => self.runner.submit(origin, time_ns, body, &mut sink),
            Some(metrics) => {
                // A sampled command: its ring wait, journal append and apply are timed.
                let taken = metrics.now_ns();
                let mut journaled = 0;
                let submitted =
                    self.runner.submit_observed(origin, time_ns, body, &mut sink, || {
                        journaled = metrics.now_ns();
                    });
                let applied = metrics.now_ns();
                let recorder = &mut self.recorder;
                recorder.record(metrics, Stage::RingWait, inbound.trace.stamp_ns, taken);
                recorder.record(metrics, Stage::JournalAppend, taken, journaled);
                recorder.record(metrics, Stage::EngineApply, journaled, applied);
                if let Some(first) = self.out_buffer.get_mut(start) {
                    first.trace = Trace { read_ns: inbound.trace.read_ns, stamp_ns: applied };
                }
                submitted
            }
        };
        match submitted {
            Ok(seq) => {
                // A rejected command's last event is its `Rejected` (expiries due at
                // its time come first).
                let rejected = match self.out_buffer[start..].last().map(|o| &o.body) {
                    Some(OutboundBody::Event(Event::Rejected(rejected))) => Some(*rejected),
                    _ => None,
                };
                if let Some(rejected) = rejected {
                    tracing::debug!(
                        seq,
                        session = inbound.session,
                        user = inbound.user.0,
                        request_id = inbound.request_id,
                        kind = rejected.kind.name(),
                        reason = %rejected.reason,
                        "rejected"
                    );
                }
                if is_admin(body.kind()) {
                    tracing::info!(
                        seq,
                        session = inbound.session,
                        user = inbound.user.0,
                        command = ?body,
                        rejected = rejected.is_some(),
                        "admin command"
                    );
                }
                #[cfg(debug_assertions)]
                for item in &self.out_buffer[start..] {
                    if let OutboundBody::Event(event) = &item.body {
                        let engine = self.runner.engine();
                        let owner = |a| engine.account(a).map_or(NO_USER, |a| a.owner);
                        assert_eq!(item.owners, event_owners(event, owner), "owners of {event:?}");
                    }
                }
                if let Some(metrics) = &self.metrics {
                    metrics.count_command(body.kind(), rejected.map(|r| r.reason));
                }
                if self.out_buffer.len() >= OUT_CHUNK {
                    self.flush_out();
                }
            }
            Err(error) => {
                tracing::error!(%error, "journal append failed; refusing further commands");
                self.failed.store(true, Ordering::Release);
                let seq = self.runner.engine().last_seq();
                let failed = OutboundBody::Failed(SessionReason::JournalFailure);
                self.out_buffer.truncate(start);
                self.push(inbound, seq, [NO_USER; 2], failed);
            }
        }
    }

    fn push(
        &mut self,
        inbound: &Inbound,
        journal_seq: u64,
        owners: [UserId; 2],
        body: OutboundBody,
    ) {
        self.out_buffer.push(Outbound {
            session: inbound.session,
            request_id: inbound.request_id,
            journal_seq,
            owners,
            body,
            trace: Trace::NONE,
        });
        if self.out_buffer.len() >= OUT_CHUNK {
            self.flush_out();
        }
    }

    /// Hands the buffered outbound items to the gateway as one chunk, waiting for a
    /// free slot if the gateway is behind (it never blocks, so one comes). The buffer
    /// is swapped with the chunk the gateway last read from that slot, which becomes
    /// the next buffer.
    fn flush_out(&mut self) {
        let n = self.out_buffer.len();
        if n == 0 {
            return;
        }
        let mut waits = 0u32;
        let buffer = &mut self.out_buffer;
        while self.outbound.try_publish(|slot| std::mem::swap(slot, buffer)).is_err() {
            if waits == 0 {
                (self.wake)();
            }
            waits = waits.saturating_add(1);
            if waits < FULL_SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.out_buffer.clear();
        if self.out_buffer.capacity() > OUT_CHUNK_KEPT {
            self.out_buffer.shrink_to(OUT_CHUNK_CAPACITY);
        } else {
            self.out_buffer.reserve(OUT_CHUNK_CAPACITY);
        }
        if let Some(metrics) = &self.metrics {
            metrics.engine.outbound_published.add(n as u64);
        }
    }

    fn finish(mut self) -> Result<EngineExit, RunnerError> {
        self.runner.publish();
        self.flush_out();
        // A failed snapshot is reported but does not stop the journal's final sync:
        // the journal alone is enough to recover.
        let (mut snapshot, mut snapshot_error) = (None, None);
        if self.snapshot_on_stop && !self.failed.load(Ordering::Acquire) {
            match self.runner.snapshot() {
                Ok(done) => {
                    let (seq, file) = (done.seq, done.path.display());
                    if done.written {
                        tracing::info!(seq, %file, "stop snapshot written");
                    } else {
                        tracing::info!(seq, %file, "stop snapshot: already at this seq");
                    }
                    snapshot = Some(done.path);
                }
                Err(error) => {
                    tracing::error!(%error, "the stop snapshot could not be written");
                    snapshot_error = Some(error.to_string());
                }
            }
        }
        let seq = self.runner.engine().last_seq();
        let state_hash = self.runner.engine().state_hash();
        let closed = self.runner.close();
        (self.wake)();
        closed?;
        Ok(EngineExit { seq, state_hash, snapshot, snapshot_error, handled: self.handled })
    }
}
