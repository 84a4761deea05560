//! The pipeline between the gateway thread and the engine thread (DESIGN.md section 2):
//! the inbound ring (`disruptor`, one producer: the gateway), the engine thread that
//! journals then applies each command through the [`Runner`], and the bounded lock-free
//! outbound queue (`crossbeam` `ArrayQueue`) back to the gateway, which the engine
//! thread wakes once per batch.
//!
//! The engine thread's idle strategy is adaptive by default: spin briefly, then yield,
//! then park until the gateway publishes (it unparks the engine thread only when the
//! thread said it is about to park). [`WaitMode::BusySpin`] never parks, for a
//! dedicated core. The gateway thread never blocks on the engine: it publishes what
//! fits into the ring and keeps the rest. The engine thread waits (spinning, then
//! yielding) only when the outbound queue is full, which the gateway drains without
//! ever blocking on a socket, so the two cannot deadlock.
//!
//! Routing: every event leaves tagged with the session whose message caused it and the
//! users who own the accounts it concerns ([`Outbound::owners`]); the gateway turns
//! that into execution reports for those users' sessions and market data for
//! subscribers.

use crate::RunnerError;
use crate::runner::{Origin, Runner};
use crate::wire::{SessionReason, SnapshotTaken};
use crossbeam_queue::ArrayQueue;
use disruptor::{
    BusySpin, EventPoller, Polling, Producer, SingleConsumerBarrier, SingleProducer,
    SingleProducerBarrier,
};
use fincore_engine::{
    AccountId, CommandBody, DEPTH_LEVELS_MAX, Event, InstrumentId, Query, UserId,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

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
}

impl Inbound {
    const EMPTY: Inbound = Inbound {
        session: 0,
        user: NO_USER,
        request_id: 0,
        time_ns: 0,
        peer: 0,
        body: InboundBody::Nop,
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
}

/// One entry of the outbound queue.
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
    /// Outbound queue capacity, in events.
    pub outbound_capacity: usize,
    /// The engine thread's idle strategy.
    pub wait: WaitMode,
    /// Write a snapshot when the engine thread stops.
    pub snapshot_on_stop: bool,
}

impl Default for PipelineConfig {
    fn default() -> PipelineConfig {
        PipelineConfig {
            ring_size: 1 << 16,
            outbound_capacity: 1 << 18,
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
    /// Commands and queries handled.
    pub handled: u64,
}

/// Where a parked engine thread can be found.
struct Parker {
    sleeping: AtomicBool,
    thread: std::sync::OnceLock<Thread>,
}

/// Spins of the adaptive wait before yielding, and yields before parking.
const SPINS: u32 = 2_000;
const YIELDS: u32 = 200;
/// A parked engine thread wakes up by itself this often (a safety net; the gateway
/// unparks it when it publishes).
const PARK_TIMEOUT: Duration = Duration::from_millis(100);

type Ring = SingleProducer<Inbound, SingleConsumerBarrier>;

/// The running pipeline, held by the gateway thread.
pub struct Pipeline {
    producer: Option<Ring>,
    parker: Arc<Parker>,
    outbound: Arc<ArrayQueue<Outbound>>,
    engine: Option<JoinHandle<Result<EngineExit, RunnerError>>>,
    durability: fincore_journal::DurabilityHandle,
    fsync: bool,
    failed: Arc<AtomicBool>,
}

impl Pipeline {
    /// Starts the engine thread around `runner`. `wake` is called (on the engine
    /// thread) after each batch's events are in the outbound queue.
    pub fn start(
        runner: Runner,
        config: PipelineConfig,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Pipeline> {
        let (poller, builder) =
            disruptor::build_single_producer(config.ring_size, || Inbound::EMPTY, BusySpin)
                .new_event_poller();
        let producer = builder.build();
        let parker =
            Arc::new(Parker { sleeping: AtomicBool::new(false), thread: Default::default() });
        let outbound = Arc::new(ArrayQueue::new(config.outbound_capacity));
        let failed = Arc::new(AtomicBool::new(false));
        let durability = runner.journal().durability_handle();
        let fsync = runner.journal().durability() == fincore_journal::Durability::Fsync;
        let engine_thread = EngineThread {
            runner,
            outbound: Arc::clone(&outbound),
            parker: Arc::clone(&parker),
            failed: Arc::clone(&failed),
            wait: config.wait,
            snapshot_on_stop: config.snapshot_on_stop,
            events: Vec::with_capacity(4096),
            wake: Box::new(wake),
            handled: 0,
        };
        let engine = std::thread::Builder::new()
            .name("fincore-engine".into())
            .spawn(move || engine_thread.run(poller))?;
        parker.thread.set(engine.thread().clone()).expect("set once");
        Ok(Pipeline {
            producer: Some(producer),
            parker,
            outbound,
            engine: Some(engine),
            durability,
            fsync,
            failed,
        })
    }

    /// Publishes as many of `pending` (from the front) as the ring has room for, as one
    /// batch, and wakes the engine thread if it is parked. Returns how many went.
    pub fn publish(&mut self, pending: &mut VecDeque<Inbound>) -> usize {
        let Some(producer) = self.producer.as_mut() else { return 0 };
        let mut n = pending.len();
        while n > 0 {
            let result = producer.try_batch_publish(n, |slots| {
                for (slot, item) in slots.zip(pending.drain(..n)) {
                    *slot = item;
                }
            });
            match result {
                Ok(_) => break,
                Err(disruptor::MissingFreeSlots(missing)) => {
                    n = n.saturating_sub(usize::try_from(missing).unwrap_or(usize::MAX));
                }
            }
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

    /// The next outbound item, if any.
    pub fn pop(&self) -> Option<Outbound> {
        self.outbound.pop()
    }

    /// The highest journal sequence whose replies may be released: everything in
    /// `process` mode, the synced sequence in `fsync` mode.
    pub fn releasable_seq(&self) -> u64 {
        if self.fsync { self.durability.durable_seq() } else { u64::MAX }
    }

    /// True once the engine thread could not journal a command: the server must stop.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Closes the ring: the engine thread handles everything already published, writes
    /// the stop snapshot, closes the journal and finishes. Keep draining the outbound
    /// queue until [`Pipeline::engine_finished`], then [`Pipeline::join`].
    pub fn close(&mut self) {
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
            while self.outbound.pop().is_some() {}
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

struct EngineThread {
    runner: Runner,
    outbound: Arc<ArrayQueue<Outbound>>,
    parker: Arc<Parker>,
    failed: Arc<AtomicBool>,
    wait: WaitMode,
    snapshot_on_stop: bool,
    events: Vec<Event>,
    wake: Box<dyn Fn() + Send>,
    handled: u64,
}

impl EngineThread {
    fn run(
        mut self,
        mut poller: EventPoller<Inbound, SingleProducerBarrier>,
    ) -> Result<EngineExit, RunnerError> {
        let mut idle: u32 = 0;
        loop {
            match poller.poll() {
                Ok(mut batch) => {
                    if idle > 0 {
                        self.parker.sleeping.store(false, Ordering::SeqCst);
                        idle = 0;
                    }
                    for inbound in &mut batch {
                        self.handle(inbound);
                    }
                    drop(batch);
                    self.runner.publish();
                    (self.wake)();
                }
                Err(Polling::NoEvents) => idle = self.idle(idle),
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
        idle + 1
    }

    fn handle(&mut self, inbound: &Inbound) {
        self.handled += 1;
        let origin = Origin { user: inbound.user, session: inbound.session, peer: inbound.peer };
        match inbound.body {
            InboundBody::Command(body) => self.command(origin, inbound, body),
            InboundBody::Query(query) => {
                let mut events = std::mem::take(&mut self.events);
                events.clear();
                self.runner.engine().query(inbound.user, &query, &mut events);
                let seq = self.runner.engine().last_seq();
                for event in events.drain(..) {
                    self.push(inbound, seq, [NO_USER; 2], OutboundBody::Event(event));
                }
                self.events = events;
            }
            InboundBody::Subscribe(instrument) => {
                let mut events = std::mem::take(&mut self.events);
                events.clear();
                let query = Query::Depth { instrument, levels: DEPTH_LEVELS_MAX };
                self.runner.engine().query(inbound.user, &query, &mut events);
                let seq = self.runner.engine().last_seq();
                for event in events.drain(..) {
                    self.push(inbound, seq, [NO_USER; 2], OutboundBody::SubscribeAnswer(event));
                }
                self.events = events;
            }
            InboundBody::Snapshot => {
                let seq = self.runner.engine().last_seq();
                let body = match self.runner.snapshot() {
                    Ok((seq, _)) => OutboundBody::Snapshot(SnapshotTaken {
                        seq,
                        state_hash: self.runner.engine().state_hash(),
                    }),
                    Err(error) => {
                        tracing::error!(%error, "snapshot failed");
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
            InboundBody::Nop => {}
        }
    }

    fn command(&mut self, origin: Origin, inbound: &Inbound, body: CommandBody) {
        if self.failed.load(Ordering::Relaxed) {
            let seq = self.runner.engine().last_seq();
            let failed = OutboundBody::Failed(SessionReason::JournalFailure);
            self.push(inbound, seq, [NO_USER; 2], failed);
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        // The journal's times never go backwards, even if the gateway's clock does.
        let time_ns = inbound.time_ns.max(self.runner.engine().time_ns());
        match self.runner.submit(origin, time_ns, body, &mut events) {
            Ok(seq) => {
                for event in events.drain(..) {
                    let owners = self.owners(&event);
                    self.push(inbound, seq, owners, OutboundBody::Event(event));
                }
            }
            Err(error) => {
                tracing::error!(%error, "journal append failed; refusing further commands");
                self.failed.store(true, Ordering::Release);
                let seq = self.runner.engine().last_seq();
                let failed = OutboundBody::Failed(SessionReason::JournalFailure);
                self.push(inbound, seq, [NO_USER; 2], failed);
            }
        }
        self.events = events;
    }

    /// The users whose sessions get this event as an execution report.
    fn owners(&self, event: &Event) -> [UserId; 2] {
        let owner =
            |account: AccountId| self.runner.engine().account(account).map_or(NO_USER, |a| a.owner);
        match event {
            Event::Accepted(e) => [owner(e.account), NO_USER],
            Event::Cancelled(e) => [owner(e.account), NO_USER],
            Event::Amended(e) => [owner(e.account), NO_USER],
            Event::Balance(e) => [owner(e.account), NO_USER],
            Event::External { account, .. }
            | Event::MassCancelled { account, .. }
            | Event::AccountStatusChanged { account, .. } => [owner(*account), NO_USER],
            Event::AccountCreated { owner, .. } => [*owner, NO_USER],
            Event::Fill(e) => {
                let maker = owner(e.maker_account);
                let taker = owner(e.taker_account);
                [maker, if taker == maker { NO_USER } else { taker }]
            }
            _ => [NO_USER; 2],
        }
    }

    fn push(&self, inbound: &Inbound, journal_seq: u64, owners: [UserId; 2], body: OutboundBody) {
        let mut item = Outbound {
            session: inbound.session,
            request_id: inbound.request_id,
            journal_seq,
            owners,
            body,
        };
        let mut spins = 0u32;
        loop {
            match self.outbound.push(item) {
                Ok(()) => return,
                Err(back) => {
                    // Full: the gateway is behind. Make sure it is awake, then wait.
                    item = back;
                    if spins == 0 {
                        (self.wake)();
                    }
                    spins = spins.wrapping_add(1);
                    if spins < SPINS {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Result<EngineExit, RunnerError> {
        self.runner.publish();
        let snapshot = if self.snapshot_on_stop && !self.failed.load(Ordering::Acquire) {
            Some(self.runner.snapshot()?.1)
        } else {
            None
        };
        let seq = self.runner.engine().last_seq();
        let state_hash = self.runner.engine().state_hash();
        self.runner.close()?;
        (self.wake)();
        Ok(EngineExit { seq, state_hash, snapshot, handled: self.handled })
    }
}
