//! What an operator sees of a running server: counters, gauges and per-stage latency
//! histograms, kept by the threads that own the work and read by the metrics thread
//! (`fincore serve --metrics ADDR`, [`crate::exporter`]).
//!
//! The rule that keeps the hot path cheap: **every counter and gauge has exactly one
//! writing thread** (the engine thread for [`EngineMetrics`], the gateway thread for
//! [`GatewayMetrics`]). A write is then a relaxed load and store of an atomic, which
//! compiles to plain moves (no locked instruction); the metrics thread reads with relaxed
//! loads and may see a value a few nanoseconds old, never a torn one.
//!
//! Latency is sampled: one inbound message in [`SAMPLE_EVERY`] carries a [`Trace`] of
//! monotonic timestamps through the pipeline, and each thread records the stages it
//! owns into its own `hdrhistogram` ([`StageRecorder`]), merged into the shared one now
//! and then without ever waiting for the lock. Without `--metrics` nothing is sampled
//! or counted: the engine and gateway threads hold no [`Metrics`] at all.

use crate::wire::SessionReason;
use fincore_engine::{
    CommandKind, Engine, INSTRUMENTS_MAX, PaymentAction, PaymentKind, RejectReason,
};
use hdrhistogram::Histogram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One inbound message in this many is traced through the pipeline.
pub const SAMPLE_EVERY: u32 = 64;

/// Merge a thread's samples into the shared histograms after this many (and when the
/// thread is idle).
const MERGE_EVERY: u32 = 4_096;

/// The engine's own counts at one moment (fills, lots traded per instrument, payment
/// events): the metrics show their increase since the server started.
#[derive(Clone, Debug)]
pub struct EngineCounts {
    trades: u64,
    traded_lots: Vec<u64>,
    payment_events: [[u64; PaymentAction::COUNT]; PaymentKind::COUNT],
}

impl EngineCounts {
    /// The counts of `engine` now.
    pub fn read(engine: &Engine) -> EngineCounts {
        let mut traded_lots = Vec::new();
        for instrument in engine.instruments() {
            let id = usize::from(instrument.spec.instrument.0);
            if traded_lots.len() <= id {
                traded_lots.resize(id + 1, 0);
            }
            traded_lots[id] = instrument.traded_lots;
        }
        EngineCounts {
            trades: engine.trades(),
            traded_lots,
            payment_events: *engine.payment_events(),
        }
    }
}

/// A counter or gauge with a single writing thread (see the module docs).
#[derive(Debug, Default)]
pub struct Cell(AtomicU64);

impl Cell {
    /// Adds `n` (wrapping). Only the owning thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Subtracts `n` (wrapping). Only the owning thread may call this.
    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }

    /// Sets the value. Only the owning thread may call this.
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value (any thread).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn cells(n: usize) -> Box<[Cell]> {
    (0..n).map(|_| Cell::default()).collect()
}

/// Payment kinds, in `PaymentKind::index` order, with their labels.
pub const PAYMENT_KINDS: [&str; PaymentKind::COUNT] =
    ["transfer", "authorization", "deposit", "withdrawal"];
/// Payment actions, in `PaymentAction::index` order, with their labels.
pub const PAYMENT_ACTIONS: [&str; PaymentAction::COUNT] =
    ["created", "captured", "voided", "expired", "duplicate"];

/// Written by the engine thread only. Aligned to its own cache lines (as is
/// [`GatewayMetrics`]): cells of the two threads sharing a line made every write a
/// cross-core transfer and cost a quarter of the pipeline's throughput (BENCHMARKS.md).
#[derive(Debug)]
#[repr(align(128))]
pub struct EngineMetrics {
    /// Commands journaled and applied, by `[kind][0 accepted, 1 rejected]`.
    pub commands: Box<[[Cell; 2]]>,
    /// Queries answered.
    pub queries: Cell,
    /// Rejects by reason, in `RejectReason::ALL` order.
    pub rejects: Box<[Cell]>,
    /// Fills (trades).
    pub fills: Cell,
    /// Lots traded, by instrument id.
    pub traded_lots: Box<[Cell]>,
    /// Payment events by `[kind][action]`.
    pub payments: Box<[[Cell; PaymentAction::COUNT]]>,
    /// Journal records appended.
    pub journal_records: Cell,
    /// Journal bytes appended (records with their headers and padding).
    pub journal_bytes: Cell,
    /// The last journaled sequence.
    pub journal_seq: Cell,
    /// Snapshots written.
    pub snapshots: Cell,
    /// Snapshots that failed.
    pub snapshot_failures: Cell,
    /// Sequence of the last snapshot written by this process, or given as the answer to a
    /// request (0: none).
    pub last_snapshot_seq: Cell,
    /// Resting orders, by instrument id (refreshed every [`GAUGE_REFRESH_EVERY`]
    /// messages, and when idle at most every [`IDLE_REFRESH_MIN`]).
    pub resting_orders: Box<[Cell]>,
    /// Inbound messages taken off the ring.
    pub inbound_consumed: Cell,
    /// Outbound items published to the gateway.
    pub outbound_published: Cell,
    /// Instruments known so far (id, symbol), for labels; written when the engine
    /// thread refreshes its gauges, read at scrape time.
    pub instruments: Mutex<Vec<(u16, String)>>,
}

/// The engine thread refreshes its gauges (and hands over its latency samples) after
/// this many messages. A refresh walks every price level of every book (about 150 000
/// instructions for a deep book), so it is rare on the command path.
pub const GAUGE_REFRESH_EVERY: u64 = 65_536;

/// ... and when it is about to park, if this long has passed since the last refresh
/// (it may park thousands of times a second between bursts).
pub const IDLE_REFRESH_MIN: std::time::Duration = std::time::Duration::from_millis(50);

/// Why a session ended, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectCause {
    /// The client logged out.
    Logout,
    /// The client closed the connection (or it broke) without logging out.
    PeerClosed,
    /// Too many refused messages.
    ErrorBudget,
    /// The client stopped reading its replies.
    SlowConsumer,
    /// Over its message rate.
    RateLimit,
    /// Nothing heard for three heartbeat intervals.
    HeartbeatTimeout,
    /// No login within the login timeout.
    LoginTimeout,
    /// A failed or throttled login.
    LoginRefused,
    /// A frame the session layer cannot continue after (too long, wrong version).
    ProtocolError,
    /// The server is stopping, full, or failed.
    Server,
}

impl DisconnectCause {
    /// Every cause, in index order.
    pub const ALL: [DisconnectCause; 10] = [
        DisconnectCause::Logout,
        DisconnectCause::PeerClosed,
        DisconnectCause::ErrorBudget,
        DisconnectCause::SlowConsumer,
        DisconnectCause::RateLimit,
        DisconnectCause::HeartbeatTimeout,
        DisconnectCause::LoginTimeout,
        DisconnectCause::LoginRefused,
        DisconnectCause::ProtocolError,
        DisconnectCause::Server,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            DisconnectCause::Logout => "logout",
            DisconnectCause::PeerClosed => "peer_closed",
            DisconnectCause::ErrorBudget => "error_budget",
            DisconnectCause::SlowConsumer => "slow_consumer",
            DisconnectCause::RateLimit => "rate_limit",
            DisconnectCause::HeartbeatTimeout => "heartbeat_timeout",
            DisconnectCause::LoginTimeout => "login_timeout",
            DisconnectCause::LoginRefused => "login_refused",
            DisconnectCause::ProtocolError => "protocol_error",
            DisconnectCause::Server => "server",
        }
    }

    /// The cause of a session ended with `reason` (None: the peer closed).
    pub fn of(reason: Option<SessionReason>) -> DisconnectCause {
        match reason {
            None => DisconnectCause::PeerClosed,
            Some(SessionReason::ClientLogout) => DisconnectCause::Logout,
            Some(SessionReason::TooManyErrors) => DisconnectCause::ErrorBudget,
            Some(SessionReason::SlowConsumer) => DisconnectCause::SlowConsumer,
            Some(SessionReason::RateLimited) => DisconnectCause::RateLimit,
            Some(SessionReason::HeartbeatTimeout) => DisconnectCause::HeartbeatTimeout,
            Some(SessionReason::LoginTimeout) => DisconnectCause::LoginTimeout,
            Some(SessionReason::LoginFailed | SessionReason::LoginThrottled) => {
                DisconnectCause::LoginRefused
            }
            Some(
                SessionReason::FrameTooLong
                | SessionReason::UnsupportedVersion
                | SessionReason::MalformedFrame
                | SessionReason::UnknownMessageType
                | SessionReason::NotLoggedIn
                | SessionReason::AlreadyLoggedIn
                | SessionReason::InvalidHeartbeat
                | SessionReason::NotAdmin,
            ) => DisconnectCause::ProtocolError,
            Some(
                SessionReason::TooManyConnections
                | SessionReason::ServerShutdown
                | SessionReason::JournalFailure
                | SessionReason::SnapshotFailed,
            ) => DisconnectCause::Server,
        }
    }
}

/// Written by the gateway thread only (cache-line aligned, see [`EngineMetrics`]).
#[derive(Debug)]
#[repr(align(128))]
pub struct GatewayMetrics {
    /// Successful logins.
    pub logins_ok: Cell,
    /// Logins refused for a wrong name or secret.
    pub logins_failed: Cell,
    /// Logins refused without a check because of earlier failures (throttling).
    pub logins_throttled: Cell,
    /// Connections accepted.
    pub connections_accepted: Cell,
    /// Connections refused at the connection limit.
    pub connections_refused: Cell,
    /// Sessions (connections) ended, by [`DisconnectCause`] index.
    pub disconnects: Box<[Cell]>,
    /// `SessionReject`s sent, by [`SessionReason::ALL`] index (rate limited, not
    /// admin, malformed, ...).
    pub session_rejects: Box<[Cell]>,
    /// Connections open now.
    pub connections_open: Cell,
    /// Logged-in sessions open now.
    pub sessions_open: Cell,
    /// Inbound messages published to the ring.
    pub inbound_published: Cell,
    /// Outbound items taken off the outbound ring.
    pub outbound_drained: Cell,
    /// Bytes waiting in sessions' output buffers (refreshed on each timer round).
    pub outbound_buffered_bytes: Cell,
}

/// The pipeline's stages, as traced for one sampled message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// From reading the message off the socket to publishing it on the inbound ring
    /// (decode, authorization, rate limit, batching); gateway thread.
    ReadToPublish,
    /// From the publish to the engine thread taking it off the ring; engine thread.
    RingWait,
    /// Encoding and appending the journal record; engine thread.
    JournalAppend,
    /// Applying the command to the engine (matching, settlement, risk); engine thread.
    EngineApply,
    /// From the end of the apply to the reply's bytes being written to the socket
    /// (outbound ring, routing, encoding; in `fsync` mode also the wait for
    /// durability); gateway thread.
    ApplyToWrite,
    /// From reading the message to writing its reply.
    Total,
}

impl Stage {
    /// Every stage, in index order.
    pub const ALL: [Stage; 6] = [
        Stage::ReadToPublish,
        Stage::RingWait,
        Stage::JournalAppend,
        Stage::EngineApply,
        Stage::ApplyToWrite,
        Stage::Total,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Stage::ReadToPublish => "read_to_publish",
            Stage::RingWait => "ring_wait",
            Stage::JournalAppend => "journal_append",
            Stage::EngineApply => "engine_apply",
            Stage::ApplyToWrite => "apply_to_write",
            Stage::Total => "total",
        }
    }
}

/// Timestamps a sampled message carries through the pipeline, in nanoseconds since
/// the metrics' epoch ([`Metrics::now_ns`]) plus one (zero: not sampled).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// When its bytes were read from the socket.
    pub read_ns: u64,
    /// Inbound: when it was published on the ring. Outbound: when its command's apply
    /// ended.
    pub stamp_ns: u64,
}

impl Trace {
    /// Not sampled.
    pub const NONE: Trace = Trace { read_ns: 0, stamp_ns: 0 };

    /// True if this message is traced.
    #[inline]
    pub fn sampled(&self) -> bool {
        self.read_ns != 0
    }
}

/// Everything the metrics thread reads. Shared (`Arc`) by the engine thread, the
/// gateway thread and the exporter.
#[derive(Debug)]
pub struct Metrics {
    /// Written by the engine thread.
    pub engine: EngineMetrics,
    /// Written by the gateway thread.
    pub gateway: GatewayMetrics,
    /// Per-stage latency in nanoseconds, cumulative since start, in [`Stage`] order.
    stages: [Mutex<Histogram<u64>>; 6],
    /// Zero point of every [`Trace`].
    epoch: Instant,
    /// Where reject codes sit in `RejectReason::ALL` (by code).
    reject_index: Box<[u8]>,
}

/// The histograms' range: 1 ns to 100 s at 2 significant digits (1 % resolution,
/// about 30 KB per histogram: merging and resetting one is cheap and the six of a
/// thread stay small in cache).
fn stage_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 2).expect("valid bounds")
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// All zero; the trace clock starts now.
    pub fn new() -> Metrics {
        let max_code = RejectReason::ALL.iter().map(|r| r.code()).max().unwrap_or(0);
        let mut reject_index = vec![u8::MAX; usize::from(max_code) + 1].into_boxed_slice();
        for (index, reason) in RejectReason::ALL.iter().enumerate() {
            reject_index[usize::from(reason.code())] = u8::try_from(index).expect("few reasons");
        }
        let kinds = CommandKind::ALL.len();
        Metrics {
            engine: EngineMetrics {
                commands: (0..kinds).map(|_| Default::default()).collect(),
                queries: Cell::default(),
                rejects: cells(RejectReason::ALL.len()),
                fills: Cell::default(),
                traded_lots: cells(INSTRUMENTS_MAX),
                payments: (0..PAYMENT_KINDS.len()).map(|_| Default::default()).collect(),
                journal_records: Cell::default(),
                journal_bytes: Cell::default(),
                journal_seq: Cell::default(),
                snapshots: Cell::default(),
                snapshot_failures: Cell::default(),
                last_snapshot_seq: Cell::default(),
                resting_orders: cells(INSTRUMENTS_MAX),
                inbound_consumed: Cell::default(),
                outbound_published: Cell::default(),
                instruments: Mutex::new(Vec::new()),
            },
            gateway: GatewayMetrics {
                logins_ok: Cell::default(),
                logins_failed: Cell::default(),
                logins_throttled: Cell::default(),
                connections_accepted: Cell::default(),
                connections_refused: Cell::default(),
                disconnects: cells(DisconnectCause::ALL.len()),
                session_rejects: cells(SessionReason::ALL.len()),
                connections_open: Cell::default(),
                sessions_open: Cell::default(),
                inbound_published: Cell::default(),
                outbound_drained: Cell::default(),
                outbound_buffered_bytes: Cell::default(),
            },
            stages: std::array::from_fn(|_| Mutex::new(stage_histogram())),
            epoch: Instant::now(),
            reject_index,
        }
    }

    /// Now, on the trace clock (never zero).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Counts one applied command (engine thread): its kind, and whether it was
    /// rejected and why. Fills, traded lots and payment events are not counted here,
    /// per event: the engine counts them itself and [`Metrics::publish_engine_counts`]
    /// copies its totals once per batch.
    #[inline]
    pub fn count_command(&self, kind: CommandKind, rejected: Option<RejectReason>) {
        let engine = &self.engine;
        if let Some(reason) = rejected
            && let Some(&i) = self.reject_index.get(usize::from(reason.code()))
        {
            engine.rejects[usize::from(i)].add(1);
        }
        engine.commands[kind as usize][usize::from(rejected.is_some())].add(1);
    }

    /// Publishes what `engine` has counted since `base` (read when the server started):
    /// fills, lots traded per instrument, payment events. Engine thread, once per batch.
    pub fn publish_engine_counts(&self, engine: &Engine, base: &EngineCounts) {
        let cells = &self.engine;
        let fills = engine.trades() - base.trades;
        if fills != cells.fills.get() {
            cells.fills.set(fills);
            for instrument in engine.instruments() {
                let id = usize::from(instrument.spec.instrument.0);
                let before = base.traded_lots.get(id).copied().unwrap_or(0);
                if let Some(cell) = cells.traded_lots.get(id) {
                    cell.set(instrument.traded_lots - before);
                }
            }
        }
        let rows = engine.payment_events().iter().zip(&base.payment_events);
        for ((now, before), cells) in rows.zip(cells.payments.iter()) {
            for ((now, before), cell) in now.iter().zip(before).zip(cells) {
                cell.set(now - before);
            }
        }
    }

    /// The cumulative histogram of a stage, copied.
    pub fn stage(&self, stage: Stage) -> Histogram<u64> {
        self.stages[stage as usize].lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A thread's own stage histograms, merged into the shared ones every
/// `MERGE_EVERY` samples and on [`StageRecorder::merge`] (when the thread is idle),
/// with `try_lock`: the hot path never waits for the exporter.
pub struct StageRecorder {
    local: [Histogram<u64>; 6],
    unmerged: u32,
}

impl Default for StageRecorder {
    fn default() -> StageRecorder {
        StageRecorder { local: std::array::from_fn(|_| stage_histogram()), unmerged: 0 }
    }
}

impl StageRecorder {
    /// Records `to - from` (clamped at zero) for `stage`.
    #[inline]
    pub fn record(&mut self, metrics: &Metrics, stage: Stage, from: u64, to: u64) {
        self.local[stage as usize].saturating_record(to.saturating_sub(from).max(1));
        self.unmerged += 1;
        if self.unmerged >= MERGE_EVERY {
            self.merge(metrics);
        }
    }

    /// Moves the samples into the shared histograms (those whose lock is free now).
    pub fn merge(&mut self, metrics: &Metrics) {
        if self.unmerged == 0 {
            return;
        }
        let mut left = 0;
        for (local, shared) in self.local.iter_mut().zip(&metrics.stages) {
            if local.is_empty() {
                continue;
            }
            match shared.try_lock() {
                Ok(mut shared) => {
                    // Same bounds on both sides: adding cannot fail.
                    let _ = shared.add(&*local);
                    local.reset();
                }
                Err(_) => left += 1,
            }
        }
        self.unmerged = if left == 0 { 0 } else { self.unmerged };
    }
}
