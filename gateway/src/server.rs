//! The server: the gateway thread's mio event loop around the [`Pipeline`].
//!
//! One loop iteration: wait for sockets (or the engine's wake-up); accept; read every
//! readable socket and decode its frames, checking login, rate limit and role, into a
//! backlog of engine requests; publish the backlog to the ring as one batch; drain the
//! outbound queue into per-session output buffers (execution reports to the owners'
//! sessions, market data to subscribers); write each touched session once; run the
//! heartbeat and login timers. The gateway never blocks: a full ring leaves requests in
//! the backlog (and stops reading sockets until it drains), a full socket leaves bytes
//! in the session's buffer (and a session whose buffer passes its bound is
//! disconnected).

use crate::auth::{Authenticator, LOGIN_FAILURE_ENTRIES_MAX, LoginThrottle};
use crate::config::{ServerConfig, SessionLimits};
use crate::exporter::Exporter;
use crate::metrics::{DisconnectCause, GatewayMetrics, Metrics, Trace};
use crate::pipeline::{
    EngineExit, Inbound, InboundBody, NO_USER, Outbound, OutboundBody, OutboundReader, Pipeline,
    PipelineConfig,
};
use crate::runner::{Runner, StartReport};

use crate::RunnerError;
use crate::session::{Conn, Login, Phase, READ_CHUNK, TokenBucket, Until};
use crate::wire::{
    self, ClientMsg, ExecReport, Frame, LoginAccepted, MdLevel, MdSnapshotEnd, MdSnapshotLevel,
    MdTrade, ServerMsg, SessionReason, SessionReject,
};
use fincore_engine::{CommandBody, Event, INSTRUMENTS_MAX, InstrumentId, Role, UserId};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Requests decoded but not yet in the ring above which the gateway stops reading
/// sockets until the engine catches up.
const BACKLOG_MAX: usize = 1 << 16;
/// Outbound items routed per loop iteration at most. The ring hands over whole chunks
/// (about a thousand items, or all of one command's if it made more, such as a mass
/// cancel of tens of thousands of orders); what a chunk has past this budget is set
/// aside in `held` and routed in the next iterations.
const DRAIN_MAX: usize = 16 * 1024;
/// Connections accepted per loop iteration at most, so that a connection storm neither
/// holds the loop from serving the sessions it has nor counts, against
/// `max_connections`, connections that already ended within the same burst (they are
/// closed at the end of the iteration).
const ACCEPT_BATCH: usize = 64;
/// How often timers (heartbeats, login deadlines, a failed accept) are checked.
const TIMER_TICK: Duration = Duration::from_millis(50);
/// How long a closing connection may take to accept its last bytes.
const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// How long a shutting-down server keeps trying to deliver its last messages.
const FINAL_FLUSH: Duration = Duration::from_secs(1);
/// Connections the kernel completes and queues before the gateway accepts them (capped
/// by the system's `somaxconn`). Past the queue's end a connecting client's SYN is
/// dropped and it retries only a second later, so the queue must absorb a burst, such
/// as every client reconnecting at once after a restart, while the gateway thread
/// shares the cores; the default of `mio` and `std`, 128, did not (`tcp_abuse.rs`).
const LISTEN_BACKLOG: i32 = 4096;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be opened or recovered.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The configuration's setup could not be derived.
    #[error("configuration: {0}")]
    Config(String),
    /// A configured user that the data directory's journal does not have, or has with
    /// another role: the gateway would log the name in with rights the engine does not
    /// give it (or as a user the engine does not know).
    #[error(
        "configuration: user {name} (id {id}) is {configured} in the configuration, but {journaled} \
         in the data directory; users are created with the data directory, and their ids and \
         roles cannot change (there is no command for it): restore the user's entry, remove \
         it, or start a new data directory"
    )]
    UserDiffers {
        /// The user's login name.
        name: String,
        /// Its id in the configuration.
        id: u32,
        /// Its role in the configuration.
        configured: &'static str,
        /// What the journal has for that id.
        journaled: &'static str,
    },
    /// The listen (`"listen"`) or metrics (`"metrics"`) address could not be bound;
    /// nothing was started and the data directory was not touched.
    #[error("cannot bind the {0} address {1}: {2}")]
    Bind(&'static str, SocketAddr, std::io::Error),
    /// A socket or thread operation failed.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
}

/// Options beyond the configuration file.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerOptions {
    /// Ring sizes and the engine thread's wait strategy.
    pub pipeline: PipelineConfig,
    /// Serve Prometheus metrics at this address (`fincore serve --metrics`); `None`:
    /// no metrics are kept at all.
    pub metrics: Option<SocketAddr>,
}

/// What the server reports when it has stopped.
#[derive(Debug)]
pub struct ServerExit {
    /// The engine thread's report (final sequence, state hash, snapshot).
    pub engine: EngineExit,
    /// Sessions served in total.
    pub sessions: u64,
    /// The server stopped because the journal failed (an append or a sync: a full or
    /// failing device); commands from then on were answered 916 and not applied.
    pub journal_failed: bool,
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: StopSignal,
    thread: Option<JoinHandle<Result<ServerExit, ServerError>>>,
    /// The metrics endpoint, if on (stopped with the server).
    exporter: Option<Exporter>,
}

/// Asks a server to stop; cheap to clone, usable from a signal-handling thread.
#[derive(Clone)]
pub struct StopSignal {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopSignal {
    /// Starts the clean shutdown.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the metrics endpoint, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.exporter.as_ref().map(Exporter::local_addr)
    }

    /// A handle that can stop the server from another thread.
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// Stops the server cleanly and waits for it.
    pub fn stop(mut self) -> Result<ServerExit, ServerError> {
        self.stop.stop();
        self.join_thread()
    }

    /// Waits until the server stops (after a [`StopSignal`] or a fatal error).
    pub fn wait(mut self) -> Result<ServerExit, ServerError> {
        self.join_thread()
    }

    fn join_thread(&mut self) -> Result<ServerExit, ServerError> {
        let thread = self.thread.take().expect("joined once");
        thread.join().unwrap_or_else(|_| {
            Err(ServerError::Runner(RunnerError::Data("the gateway thread panicked".into())))
        })
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.stop();
            let _ = self.join_thread();
        }
    }
}

/// What starting found and did.
#[derive(Debug)]
pub struct Started {
    /// Recovery details (snapshot used, records replayed, torn tail, setup applied).
    pub report: StartReport,
    /// The last journaled sequence after recovery and setup.
    pub seq: u64,
    /// The state hash at that sequence.
    pub state_hash: u64,
    /// Time spent opening and recovering the data directory.
    pub elapsed: Duration,
}

/// A TCP socket bound to `addr` (with `SO_REUSEADDR`, so that a restart need not wait
/// for the last run's connections to time out), not yet listening: connections to it
/// are refused until [`listen`].
fn bind(addr: SocketAddr) -> std::io::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let socket = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    Ok(socket)
}

/// Every configured user must be the journal's user of that id, with the same role.
/// Names and secrets are the configuration's alone (a secret is rotated by editing it);
/// ids and roles are the journal's, and the gateway authorizes by the configuration's
/// role before the engine checks its own, so the two must agree.
fn check_users(config: &ServerConfig, engine: &fincore_engine::Engine) -> Result<(), ServerError> {
    let role_name = |role| match role {
        Role::Trader => "a trader",
        Role::Admin => "an admin",
        Role::Operator => "a payment operator",
    };
    for user in &config.users {
        let journaled = engine.user_role(UserId(user.id));
        if journaled == Some(user.role) {
            continue;
        }
        return Err(ServerError::UserDiffers {
            name: user.name.clone(),
            id: user.id,
            configured: role_name(user.role),
            journaled: journaled.map_or("unknown", role_name),
        });
    }
    Ok(())
}

/// Starts listening on a socket from [`bind`].
fn listen(socket: OwnedFd) -> Result<std::net::TcpListener, ServerError> {
    rustix::net::listen(&socket, LISTEN_BACKLOG)
        .map_err(|e| ServerError::Io("listen", e.into()))?;
    Ok(std::net::TcpListener::from(socket))
}

/// Opens the data directory (recovering it, or journaling the configuration's setup
/// when it is new), binds the listener and starts the gateway and engine threads.
pub fn start(
    config: &ServerConfig,
    options: ServerOptions,
) -> Result<(ServerHandle, Started), ServerError> {
    let began = Instant::now();
    let setup = config.setup_commands().map_err(|e| ServerError::Config(e.to_string()))?;
    // Both addresses are claimed (bound) before the data directory is touched, so that
    // a start that cannot listen (port in use, no permission) leaves no directory,
    // journal or setup behind; they listen only after recovery, so that nothing
    // connects to a server that cannot answer yet.
    let trading = bind(config.listen).map_err(|e| ServerError::Bind("listen", config.listen, e))?;
    let metrics_socket = options
        .metrics
        .map(|at| bind(at).map_err(|e| ServerError::Bind("metrics", at, e)))
        .transpose()?;
    let recovery = tracing::info_span!("recovery", data = %config.data_dir.display()).entered();
    let (runner, report) = Runner::open(&config.runner_config(), &setup)?;
    if let Some(torn) = &report.recovery.torn_tail {
        tracing::warn!(file = %torn.path.display(), offset = torn.offset, reason = %torn.reason, "torn journal tail cut");
    }
    if report.recovery.cleared_bytes > 0 {
        let bytes = report.recovery.cleared_bytes;
        tracing::info!(bytes, "cleared an unfinished append (no length published)");
    }
    if let Some(differs) = &report.setup_differs {
        // Debug of a command, as the `admin command` line logs it: for an operator
        // comparing it with the configuration file.
        let show = |body: Option<CommandBody>| body.map_or("nothing".into(), |b| format!("{b:?}"));
        tracing::warn!(
            setup_command = differs.index,
            configured = %show(differs.configured),
            journaled = %show(differs.journaled),
            "the configuration's setup (assets, instruments, users, accounts, deposits, \
             payment limits, deny-list) differs from the one this data directory was \
             created with; the journal's state is in force and none of the difference is \
             applied (users' names and secrets excepted: they are never journaled, so they \
             are always the configuration's): make the change with admin commands where one exists (accounts, \
             deposits, limits, deny-list, status), else start a new data directory"
        );
    }
    if let Some(path) = &report.recovery.removed_segment {
        tracing::info!(file = %path.display(), "removed a segment whose creation never finished");
    }
    drop(recovery);
    check_users(config, runner.engine())?;
    let open_orders_max = runner.engine().limits().open_orders_per_account_max;
    let started = Started {
        report,
        seq: runner.engine().last_seq(),
        state_hash: runner.engine().state_hash(),
        elapsed: began.elapsed(),
    };
    let listener = listen(trading)?;
    listener.set_nonblocking(true).map_err(|e| ServerError::Io("listen", e))?;
    let mut listener = TcpListener::from_std(listener);
    let addr = listener.local_addr().map_err(|e| ServerError::Io("local_addr", e))?;
    let metrics_listener = metrics_socket.map(listen).transpose()?;
    let poll = Poll::new().map_err(|e| ServerError::Io("poll", e))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| ServerError::Io("register", e))?;
    let waker =
        Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| ServerError::Io("waker", e))?);
    let engine_waker = Arc::clone(&waker);
    let metrics = options.metrics.map(|_| Arc::new(Metrics::new()));
    let durability = runner.journal().durability_handle();
    let pipeline =
        Pipeline::start_with_metrics(runner, options.pipeline, metrics.clone(), move || {
            let _ = engine_waker.wake();
        })
        .map_err(|e| ServerError::Io("engine thread", e))?;
    let exporter = match (metrics_listener, metrics) {
        (Some(listener), Some(metrics)) => {
            let exporter = Exporter::start(listener, metrics, durability)
                .map_err(|e| ServerError::Io("metrics endpoint", e))?;
            tracing::info!(metrics = %exporter.local_addr(), "serving metrics at /metrics");
            Some(exporter)
        }
        _ => None,
    };
    let durable_waker = Arc::clone(&waker);
    pipeline
        .watch_durability(move || {
            let _ = durable_waker.wake();
        })
        .map_err(|e| ServerError::Io("durability thread", e))?;
    let stop = StopSignal { flag: Arc::new(AtomicBool::new(false)), waker };
    let gateway = Gateway {
        poll,
        listener: Some(listener),
        pipeline,
        auth: config.authenticator(),
        throttle: LoginThrottle::new(
            config.session.login_failures_max,
            Duration::from_millis(u64::from(config.session.login_lockout_ms)),
            LOGIN_FAILURE_ENTRIES_MAX,
        ),
        limits: config.session,
        open_orders_max,
        stop: Arc::clone(&stop.flag),
        conns: Vec::new(),
        free: Vec::new(),
        sessions: FxHashMap::default(),
        by_user: FxHashMap::default(),
        last_origin: None,
        subscribers: vec![Vec::new(); INSTRUMENTS_MAX],
        md_seq: vec![0; INSTRUMENTS_MAX],
        backlog: VecDeque::new(),
        held: VecDeque::new(),
        scratch: Vec::new(),
        read_chunk: vec![0; READ_CHUNK],
        more_outbound: false,
        resume_from: 0,
        dirty: Vec::new(),
        accept_pending: false,
        accept_retry: false,
        next_session: 1,
        sessions_total: 0,
        traced: Vec::new(),
        now: Instant::now(),
        time_ns: 0,
    };
    let thread = std::thread::Builder::new()
        .name("fincore-gateway".into())
        .spawn(move || gateway.run())
        .map_err(|e| ServerError::Io("gateway thread", e))?;
    Ok((ServerHandle { addr, stop, thread: Some(thread), exporter }, started))
}

struct Gateway {
    poll: Poll,
    listener: Option<TcpListener>,
    pipeline: Pipeline,
    auth: Authenticator,
    /// Failed logins per user name and per peer address.
    throttle: LoginThrottle,
    limits: SessionLimits,
    /// The engine's live orders per account at most: what an `OpenOrders` query can
    /// return, so what it costs (`message_cost`).
    open_orders_max: u32,
    stop: Arc<AtomicBool>,
    /// Connections by slot; a slot's token is `FIRST_CONN + slot`.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Session id -> slot. (Fx hashing: the keys are the server's own session ids and
    /// configured user ids, not chosen by clients, and these are looked up several
    /// times for every event routed.)
    sessions: FxHashMap<u32, usize>,
    /// Logged-in sessions of each user, with their slots (an entry leaves before its
    /// slot is freed: `leave` comes first in `close`).
    by_user: FxHashMap<UserId, Vec<(u32, usize)>>,
    /// The last session looked up by `route` and its slot: a command's events come
    /// together, so most lookups are this one (cleared when the session closes).
    last_origin: Option<(u32, usize)>,
    /// Subscribed sessions of each instrument.
    subscribers: Vec<Vec<u32>>,
    /// Market-data updates sent so far, per instrument.
    md_seq: Vec<u64>,
    /// Requests waiting for room in the ring.
    backlog: VecDeque<Inbound>,
    /// Engine output waiting for its journal sequence to be durable (fsync mode), or
    /// for the next loop iteration (a chunk that went past the routing budget), in
    /// order: while it is not empty, everything the ring gives is queued behind it.
    held: VecDeque<Outbound>,
    /// The last drain stopped at its budget with more output queued.
    more_outbound: bool,
    /// Where the next resumption of paused reads starts (round robin).
    resume_from: usize,
    /// Reused list of target slots.
    scratch: Vec<usize>,
    /// Every socket is read into this buffer, then what arrived is appended to the
    /// connection's input (`Conn::read`).
    read_chunk: Vec<u8>,
    /// Slots with output to write.
    dirty: Vec<usize>,
    /// The last accept stopped at its batch with connections possibly still queued.
    accept_pending: bool,
    /// The last accept failed (out of file descriptors, say): retry at the next tick.
    accept_retry: bool,
    next_session: u32,
    sessions_total: u64,
    /// Traces of sampled replies routed this round, timed after the flush.
    traced: Vec<Trace>,
    now: Instant,
    time_ns: u64,
}

impl Gateway {
    /// The gateway's counters, when metrics are on.
    fn metrics(&self) -> Option<&GatewayMetrics> {
        self.pipeline.metrics().map(|m| &m.gateway)
    }

    fn count_session_reject(&self, reason: SessionReason) {
        if let Some(metrics) = self.metrics()
            && let Some(i) = SessionReason::ALL.iter().position(|r| *r == reason)
        {
            metrics.session_rejects[i].add(1);
        }
    }

    /// Records why a connection is ending (the first cause given wins).
    fn cause(&mut self, slot: usize, cause: DisconnectCause) {
        if let Some(conn) = self.conn(slot) {
            conn.close_cause.get_or_insert(cause);
        }
    }

    fn run(mut self) -> Result<ServerExit, ServerError> {
        let mut events = Events::with_capacity(1024);
        let mut next_timers = Instant::now() + TIMER_TICK;
        loop {
            // Held replies are released when the durability watcher wakes the poll.
            let timeout = if self.more_outbound || self.accept_pending {
                Some(Duration::ZERO)
            } else if !self.backlog.is_empty() {
                Some(Duration::from_millis(1))
            } else if self.accept_retry || self.conns.iter().any(Option::is_some) {
                Some(next_timers.saturating_duration_since(Instant::now()))
            } else {
                None
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(ServerError::Io("poll", e));
            }
            self.tick_clock();
            if std::mem::take(&mut self.accept_pending) {
                self.accept();
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(token) => {
                        let slot = token - FIRST_CONN;
                        if event.is_read_closed() || event.is_error() {
                            self.read(slot, Until::WouldBlock);
                        } else if event.is_readable() {
                            self.read(slot, Until::ShortRead);
                        }
                        if event.is_writable() {
                            self.mark_dirty(slot);
                        }
                    }
                }
            }
            self.resume_paused_reads();
            self.publish_backlog();
            self.drain_outbound();
            if self.now >= next_timers {
                self.run_timers();
                next_timers = self.now + TIMER_TICK;
            }
            self.flush_dirty();
            for trace in self.traced.drain(..) {
                self.pipeline.written(trace);
            }
            if self.stop.load(Ordering::Acquire) || self.pipeline.failed() {
                return self.shutdown();
            }
        }
    }

    fn tick_clock(&mut self) {
        self.now = Instant::now();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.time_ns = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
    }

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    /// Accepts up to [`ACCEPT_BATCH`] queued connections. The listener's readiness is
    /// edge-triggered: connections left queued get no new event, so the loop comes back
    /// for them itself (`accept_pending`, `accept_retry`).
    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            let Some(listener) = self.listener.as_ref() else { return };
            let (mut stream, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // Reset before it was accepted: take the next one.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors or memory: the queue is kept; try again
                    // at the next timer tick (at once would spin until it clears).
                    tracing::warn!(error = %e, "accept failed");
                    self.accept_retry = true;
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let mut open = self.conns.len() - self.free.len();
            if open >= self.limits.max_connections {
                // Connections that ended earlier in this burst still count until their
                // sockets are closed: close the finished ones before refusing this one.
                self.flush_dirty();
                open = self.conns.len() - self.free.len();
            }
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let token = Token(FIRST_CONN + slot);
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!(error = %e, %peer, "could not register a connection");
                self.free.push(slot);
                continue;
            }
            // Ids are unique among live sessions even after the counter wraps.
            let mut session_id = self.next_session;
            while self.sessions.contains_key(&session_id) {
                session_id = session_id.wrapping_add(1).max(1);
            }
            self.next_session = session_id.wrapping_add(1).max(1);
            self.sessions_total += 1;
            let bucket = TokenBucket::new(self.limits.rate_per_sec, self.limits.burst, self.now);
            let login_timeout = Duration::from_millis(u64::from(self.limits.login_timeout_ms));
            let conn = Conn::new(stream, peer, session_id, self.now, login_timeout, bucket);
            self.conns[slot] = Some(conn);
            self.sessions.insert(session_id, slot);
            if let Some(metrics) = self.metrics() {
                metrics.connections_accepted.add(1);
                metrics.connections_open.add(1);
            }
            if open >= self.limits.max_connections {
                tracing::warn!(%peer, "connection refused: at the connection limit");
                if let Some(metrics) = self.metrics() {
                    metrics.connections_refused.add(1);
                }
                self.end_session(slot, SessionReason::TooManyConnections);
                continue;
            }
            tracing::debug!(%peer, session_id, "connected");
            // Bytes may have arrived with the connection.
            self.read(slot, Until::WouldBlock);
        }
        // More may be queued: accept them after serving the others once.
        self.accept_pending = true;
    }

    /// Reads a connection and handles its complete frames.
    fn read(&mut self, slot: usize, until: Until) {
        let backlog_full = self.backlog.len() >= BACKLOG_MAX;
        // Not `self.conn`: the read buffer is borrowed at the same time.
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        if matches!(conn.phase, Phase::Closing { .. }) {
            conn.discard_input();
            let _ = conn.read(&mut self.read_chunk, Until::WouldBlock);
            conn.discard_input();
            if conn.eof {
                // What is queued (the notice) still goes out; the flush closes it.
                self.mark_dirty(slot);
            }
            return;
        }
        if backlog_full {
            conn.read_paused = true;
            return;
        }
        let drained = conn.read(&mut self.read_chunk, until);
        conn.read_paused = !drained;
        self.handle_frames(slot);
        let Some(conn) = self.conn(slot) else { return };
        if conn.eof && !conn.read_paused {
            self.peer_closed(slot);
        }
    }

    /// The client will send nothing more (it closed its side, or the socket failed). A
    /// logged-in session still gets the replies to what it sent, as after a `Logout`;
    /// then the connection closes (at once if the socket cannot be written).
    fn peer_closed(&mut self, slot: usize) {
        let (time_ns, self_now) = (self.time_ns, self.now);
        let Some(conn) = self.conn(slot) else { return };
        match (conn.phase, conn.login()) {
            (Phase::Closing { .. }, _) => self.mark_dirty(slot),
            (_, Some(login)) if conn.logout_deadline.is_none() => {
                conn.close_cause.get_or_insert(DisconnectCause::PeerClosed);
                conn.logout_deadline = Some(self_now + CLOSE_LINGER);
                let inbound = conn.inbound(login.user, 0, time_ns, InboundBody::Barrier);
                self.backlog.push_back(inbound);
            }
            (_, Some(_)) => {}
            (_, None) => self.begin_close(slot),
        }
    }

    fn resume_paused_reads(&mut self) {
        let count = self.conns.len();
        for step in 0..count {
            if self.backlog.len() >= BACKLOG_MAX / 2 {
                // Start after the last one served next time (round robin).
                self.resume_from = (self.resume_from + step) % count;
                return;
            }
            let slot = (self.resume_from + step) % count;
            if self.conn(slot).is_some_and(|c| c.read_paused) {
                self.read(slot, Until::WouldBlock);
            }
        }
    }

    fn handle_frames(&mut self, slot: usize) {
        loop {
            if self.backlog.len() >= BACKLOG_MAX {
                if let Some(conn) = self.conn(slot) {
                    conn.read_paused = true;
                }
                return;
            }
            let now = self.now;
            let Some(conn) = self.conn(slot) else { return };
            if matches!(conn.phase, Phase::Closing { .. }) || conn.logout_deadline.is_some() {
                conn.discard_input();
                return;
            }
            let (header, decoded, used) = match wire::next_frame(conn.input()) {
                Frame::Incomplete => return,
                Frame::Fatal(_, reason) => {
                    conn.discard_input();
                    self.end_session(slot, reason);
                    return;
                }
                Frame::Complete(header, body) => {
                    let decoded = if header.flags != 0 {
                        Err(SessionReason::MalformedFrame)
                    } else {
                        ClientMsg::decode(header.msg_type, body)
                    };
                    (header, decoded, wire::HEADER_LEN + body.len())
                }
            };
            conn.consume(used);
            conn.last_recv = now;
            match decoded {
                Ok(message) => self.on_message(slot, header.seq, message),
                Err(reason) => self.refuse(slot, reason, header.msg_type, header.seq, 0),
            }
        }
    }

    /// Sends a session reject and charges the error budget.
    fn refuse(
        &mut self,
        slot: usize,
        reason: SessionReason,
        msg_type: u16,
        request: u64,
        client_id: u64,
    ) {
        let budget = self.limits.error_budget;
        let reject = ServerMsg::SessionReject(SessionReject {
            reason: reason.code(),
            ref_type: msg_type,
            ref_request_id: request,
            ref_client_id: client_id,
        });
        self.count_session_reject(reason);
        self.send(slot, &reject);
        let Some(conn) = self.conn(slot) else { return };
        tracing::debug!(
            peer = %conn.peer,
            session_id = conn.session_id,
            reason = reason.code(),
            msg_type,
            request,
            "session message refused"
        );
        if reason != SessionReason::RateLimited {
            conn.errors = conn.errors.saturating_add(1);
        }
        if conn.errors > budget {
            self.end_session(slot, SessionReason::TooManyErrors);
        }
    }

    fn on_message(&mut self, slot: usize, request: u64, message: ClientMsg) {
        let (now, time_ns) = (self.now, self.time_ns);
        let cost = message_cost(&message, self.open_orders_max).min(self.limits.burst);
        let Some(conn) = self.conn(slot) else { return };
        let login = match (conn.phase, message) {
            (_, ClientMsg::Heartbeat) => return,
            (Phase::AwaitingLogin { .. }, ClientMsg::Login(login)) => {
                return self.login(slot, &login);
            }
            (Phase::AwaitingLogin { .. }, ClientMsg::Logout) => {
                return self.end_session(slot, SessionReason::ClientLogout);
            }
            (Phase::AwaitingLogin { .. }, _) => {
                let client_id = message.client_id();
                return self.refuse(
                    slot,
                    SessionReason::NotLoggedIn,
                    message.msg_type(),
                    request,
                    client_id,
                );
            }
            (Phase::Closing { .. }, _) => return,
            (Phase::Active(login), _) => login,
        };
        let client_id = message.client_id();
        let msg_type = message.msg_type();
        match message {
            ClientMsg::Login(_) => {
                return self.refuse(
                    slot,
                    SessionReason::AlreadyLoggedIn,
                    msg_type,
                    request,
                    client_id,
                );
            }
            ClientMsg::Logout => {
                // Answer everything sent before the logout first: a barrier through
                // the engine comes back after all of it.
                conn.logout_deadline = Some(now + CLOSE_LINGER);
                conn.discard_input();
                let inbound = conn.inbound(login.user, request, time_ns, InboundBody::Barrier);
                self.backlog.push_back(inbound);
                return;
            }
            _ if conn.logout_deadline.is_some() => return,
            _ => {}
        }
        if !conn.bucket.take(cost, now) {
            return self.refuse(slot, SessionReason::RateLimited, msg_type, request, client_id);
        }
        if !message.permitted(login.role) {
            return self.refuse(slot, SessionReason::NotAdmin, msg_type, request, client_id);
        }
        let body = match message {
            ClientMsg::NewOrder(order) => InboundBody::Command(CommandBody::NewOrder(order)),
            ClientMsg::Cancel(c) => {
                InboundBody::Command(CommandBody::Cancel { account: c.account, order: c.order })
            }
            ClientMsg::Amend(amend) => InboundBody::Command(CommandBody::Amend(amend)),
            ClientMsg::MassCancel(m) => InboundBody::Command(CommandBody::MassCancel {
                account: m.account,
                instrument: m.instrument,
            }),
            ClientMsg::CreateAccount(c) => InboundBody::Command(CommandBody::CreateAccount {
                account: c.account,
                owner: c.owner,
            }),
            ClientMsg::Deposit(p) => InboundBody::Command(CommandBody::Deposit {
                account: p.account,
                asset: p.asset,
                amount: p.amount,
                client_payment_id: p.client_payment_id,
            }),
            ClientMsg::Withdraw(p) => InboundBody::Command(CommandBody::Withdraw {
                account: p.account,
                asset: p.asset,
                amount: p.amount,
                client_payment_id: p.client_payment_id,
            }),
            ClientMsg::Transfer(t) => InboundBody::Command(CommandBody::Transfer(t)),
            ClientMsg::Authorize(a) => InboundBody::Command(CommandBody::Authorize(a)),
            ClientMsg::Capture(c) => InboundBody::Command(CommandBody::Capture {
                account: c.account,
                payment: c.payment,
                amount: c.amount,
            }),
            ClientMsg::Void(v) => {
                InboundBody::Command(CommandBody::Void { account: v.account, payment: v.payment })
            }
            ClientMsg::SetPaymentLimits(p) => InboundBody::Command(CommandBody::SetPaymentLimits {
                asset: p.asset,
                transfer_max: p.transfer_max,
                velocity_24h: p.velocity_24h,
            }),
            ClientMsg::SetAccountLimits(l) => InboundBody::Command(CommandBody::SetAccountLimits {
                account: l.account,
                asset: l.asset,
                credit_limit: l.credit_limit,
                velocity_24h: l.velocity_24h,
            }),
            ClientMsg::SetAccountBlocked(b) => {
                let (account, blocked) = (b.account, b.blocked);
                InboundBody::Command(CommandBody::SetAccountBlocked { account, blocked })
            }
            ClientMsg::SetAccountStatus(s) => InboundBody::Command(CommandBody::SetAccountStatus {
                account: s.account,
                status: s.status,
            }),
            ClientMsg::SetInstrumentStatus(s) => {
                InboundBody::Command(CommandBody::SetInstrumentStatus {
                    instrument: s.instrument,
                    status: s.status,
                    cancel_resting: s.cancel_resting,
                })
            }
            ClientMsg::TakeSnapshot => InboundBody::Snapshot,
            ClientMsg::Query(query) => {
                conn.query_costs.push_back(cost);
                InboundBody::Query(query)
            }
            ClientMsg::Subscribe(instrument) => {
                conn.pending_subscriptions.push_back((instrument, true));
                InboundBody::Subscribe(instrument)
            }
            ClientMsg::Unsubscribe(instrument) => {
                conn.subscriptions.retain(|&i| i != instrument);
                for pending in conn.pending_subscriptions.iter_mut() {
                    if pending.0 == instrument {
                        pending.1 = false;
                    }
                }
                let session = conn.session_id;
                if let Some(list) = self.subscribers.get_mut(usize::from(instrument.0)) {
                    list.retain(|&s| s != session);
                }
                self.send(slot, &ServerMsg::MdUnsubscribed(instrument));
                return;
            }
            ClientMsg::Login(_) | ClientMsg::Logout | ClientMsg::Heartbeat => return,
        };
        let inbound = conn.inbound(login.user, request, time_ns, body);
        let trace = self.pipeline.trace_next();
        self.backlog.push_back(Inbound { trace, ..inbound });
    }

    fn login(&mut self, slot: usize, login: &wire::Login) {
        let limits = &self.limits;
        let (min, max) = (limits.heartbeat_min_ms, limits.heartbeat_max_ms);
        let (now, name) = (self.now, login.username());
        let Some(peer) = self.conn(slot).map(|c| c.peer.ip()) else { return };
        // A locked name or address is refused before its secret is checked, so that no
        // guess can succeed during a lockout.
        if let Some(locked) = self.throttle.locked(name, peer, now) {
            tracing::debug!(%peer, ?locked, "login refused unchecked: locked out");
            if let Some(metrics) = self.metrics() {
                metrics.logins_throttled.add(1);
            }
            self.cause(slot, DisconnectCause::LoginRefused);
            self.send(slot, &ServerMsg::LoginRejected(SessionReason::LoginThrottled.code()));
            return self.begin_close(slot);
        }
        let identity = std::str::from_utf8(name)
            .ok()
            .and_then(|name| self.auth.authenticate(name, login.secret()));
        match identity {
            None => {
                let locks = self.throttle.failed(name, peer, now);
                if locks.address || locks.user {
                    tracing::warn!(%peer, ?locks, "failed logins: locked out");
                }
            }
            Some(_) => self.throttle.succeeded(name, now),
        }
        let reason = match identity {
            None => SessionReason::LoginFailed,
            Some(_) if !(min..=max).contains(&login.heartbeat_ms) => {
                SessionReason::InvalidHeartbeat
            }
            Some((user, role)) => {
                let heartbeat_ms = login.heartbeat_ms;
                let Some(conn) = self.conn(slot) else { return };
                let session = Login {
                    user,
                    role,
                    heartbeat: Duration::from_millis(u64::from(heartbeat_ms)),
                    cancel_on_disconnect: login.cancel_on_disconnect,
                };
                conn.phase = Phase::Active(session);
                let accepted = LoginAccepted {
                    session_id: conn.session_id,
                    user,
                    admin: session.admin(),
                    heartbeat_ms,
                    next_seq: conn.next_seq + 1,
                };
                let session_id = conn.session_id;
                tracing::info!(peer = %conn.peer, session_id, user = user.0, "logged in");
                if let Some(metrics) = self.metrics() {
                    metrics.logins_ok.add(1);
                    metrics.sessions_open.add(1);
                }
                self.by_user.entry(user).or_default().push((session_id, slot));
                self.send(slot, &ServerMsg::LoginAccepted(accepted));
                return;
            }
        };
        if let Some(conn) = self.conn(slot) {
            tracing::info!(peer = %conn.peer, %reason, "login refused");
        }
        if let Some(metrics) = self.metrics().filter(|_| reason == SessionReason::LoginFailed) {
            metrics.logins_failed.add(1);
        }
        self.cause(slot, DisconnectCause::LoginRefused);
        self.send(slot, &ServerMsg::LoginRejected(reason.code()));
        self.begin_close(slot);
    }

    /// Sends a logout notice with `reason` and closes once it is written.
    fn end_session(&mut self, slot: usize, reason: SessionReason) {
        self.cause(slot, DisconnectCause::of(Some(reason)));
        self.send(slot, &ServerMsg::Logout(reason.code()));
        self.begin_close(slot);
    }

    /// Stops reading a connection and leaves the session; the socket closes when its
    /// output is written (or at once, if it cannot be).
    fn begin_close(&mut self, slot: usize) {
        self.leave(slot);
        let deadline = self.now + CLOSE_LINGER;
        let Some(conn) = self.conn(slot) else { return };
        conn.phase = Phase::Closing { deadline };
        conn.discard_input();
        self.mark_dirty(slot);
    }

    /// Takes a session out of routing; queues cancel-on-disconnect.
    fn leave(&mut self, slot: usize) {
        let time_ns = self.time_ns;
        let Some(conn) = self.conn(slot) else { return };
        if conn.left {
            return;
        }
        conn.left = true;
        conn.pending_subscriptions.clear();
        let session = conn.session_id;
        let login = conn.login();
        if let Some(login) = login {
            let cause = conn.close_cause.unwrap_or(DisconnectCause::PeerClosed).label();
            tracing::info!(peer = %conn.peer, session_id = session, user = login.user.0, cause, "session ended");
        }
        let subscriptions = std::mem::take(&mut conn.subscriptions);
        let cancel_all = login
            .filter(|l| l.cancel_on_disconnect)
            .map(|l| conn.inbound(l.user, 0, time_ns, InboundBody::CancelAll));
        for instrument in subscriptions {
            if let Some(list) = self.subscribers.get_mut(usize::from(instrument.0)) {
                list.retain(|&s| s != session);
            }
        }
        let Some(login) = login else { return };
        if let Some(metrics) = self.metrics() {
            metrics.sessions_open.sub(1);
        }
        if let Some(list) = self.by_user.get_mut(&login.user) {
            list.retain(|&(s, _)| s != session);
        }
        self.backlog.extend(cancel_all);
    }

    /// Closes a socket now.
    fn close(&mut self, slot: usize) {
        self.leave(slot);
        let Some(mut conn) = self.conns[slot].take() else { return };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.sessions.remove(&conn.session_id);
        if self.last_origin.is_some_and(|(session, _)| session == conn.session_id) {
            self.last_origin = None;
        }
        self.free.push(slot);
        let cause = conn.close_cause.unwrap_or(DisconnectCause::PeerClosed);
        tracing::debug!(peer = %conn.peer, session_id = conn.session_id, cause = cause.label(), "connection closed");
        if let Some(metrics) = self.metrics() {
            metrics.connections_open.sub(1);
            metrics.disconnects[cause as usize].add(1);
            if metrics.connections_open.get() == 0 {
                // The timer that refreshes it does not run without connections.
                metrics.outbound_buffered_bytes.set(0);
            }
        }
    }

    fn send(&mut self, slot: usize, message: &ServerMsg) {
        let bound = self.limits.outbound_buffer_max;
        let now = self.now;
        let Some(conn) = self.conn(slot) else { return };
        // Over the bound, write what the socket takes before judging: a client that
        // pipelines a large batch but reads is not a slow consumer.
        if conn.send(message, bound, now) || (conn.flush().is_ok() && conn.queued_output() <= bound)
        {
            self.mark_dirty(slot);
            return;
        }
        tracing::warn!(peer = %conn.peer, session_id = conn.session_id, "slow consumer disconnected");
        conn.close_cause.get_or_insert(DisconnectCause::SlowConsumer);
        // The buffer is full: the logout notice could not be read anyway.
        self.leave(slot);
        self.close(slot);
    }

    fn mark_dirty(&mut self, slot: usize) {
        if !self.dirty.contains(&slot) {
            self.dirty.push(slot);
        }
    }

    fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            let Some(conn) = self.conn(slot) else { continue };
            let result = conn.flush();
            let done = conn.queued_output() == 0;
            let closing = matches!(conn.phase, Phase::Closing { .. });
            if result.is_err() || (closing && done) {
                self.close(slot);
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn publish_backlog(&mut self) {
        if !self.backlog.is_empty() {
            self.pipeline.publish(&mut self.backlog);
        }
    }

    fn drain_outbound(&mut self) {
        let releasable = self.pipeline.releasable_seq();
        let mut budget = DRAIN_MAX;
        while let Some(item) = self.held.front() {
            if item.journal_seq > releasable {
                break;
            }
            if budget == 0 {
                self.more_outbound = true;
                return;
            }
            let item = self.held.pop_front().expect("front exists");
            self.route(&item);
            budget -= 1;
        }
        // Routed in place in the ring (an item is 168 bytes; copying each out was a
        // fifth of this thread's time at saturation), with the reader lent out so that
        // routing can change the gateway's state. At most DRAIN_MAX items per loop
        // iteration: then sockets are written, read and timed again, so a flood of
        // output (a client asking for a lot) cannot starve the other sessions; the
        // poll does not wait while more is queued.
        let mut reader = self.pipeline.lend_reader();
        // Given back even if routing panics: the pipeline's shutdown (when the gateway
        // is dropped) drains the ring through it until the engine thread has finished.
        let routed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.route_outbound(&mut reader, releasable, budget);
        }));
        self.pipeline.restore_reader(reader);
        if let Err(panic) = routed {
            std::panic::resume_unwind(panic);
        }
    }

    /// Routes up to `budget` items from the ring; holds those past `releasable`, and
    /// those of the last chunk taken that go past the budget.
    fn route_outbound(&mut self, reader: &mut OutboundReader, releasable: u64, budget: usize) {
        let mut routed = 0;
        let taken = reader.drain_with(budget, |item| {
            if routed >= budget || !self.held.is_empty() || item.journal_seq > releasable {
                self.held.push_back(*item);
            } else {
                self.route(item);
                routed += 1;
            }
        });
        // The budget was spent: more may be waiting (in the ring or set aside), and the
        // poll must not sleep.
        self.more_outbound = taken >= budget;
    }

    /// Delivers one engine output.
    fn route(&mut self, item: &Outbound) {
        if item.trace.sampled() {
            // Timed once its bytes are written (after this round's flush).
            self.traced.push(item.trace);
        }
        // A session that has left (closing) gets nothing more, not even the answers to
        // what it sent before.
        let slot = match self.last_origin {
            Some((session, slot)) if session == item.session => {
                debug_assert_eq!(self.sessions.get(&session), Some(&slot), "cache is current");
                Some(slot)
            }
            _ => {
                let found = self.sessions.get(&item.session).copied();
                if let Some(slot) = found {
                    self.last_origin = Some((item.session, slot));
                }
                found
            }
        };
        let origin = slot.filter(|&slot| self.conns[slot].as_ref().is_some_and(|c| !c.left));
        match item.body {
            OutboundBody::Event(event) => self.route_event(item, origin, event),
            OutboundBody::SubscribeAnswer(event) => {
                if let Some(slot) = origin {
                    self.subscribe_answer(slot, item, event);
                }
            }
            OutboundBody::Snapshot(taken) => {
                if let Some(slot) = origin {
                    self.send(slot, &ServerMsg::SnapshotTaken(taken));
                }
            }
            OutboundBody::Barrier => {
                if let Some(slot) = origin {
                    self.end_session(slot, SessionReason::ClientLogout);
                }
            }
            OutboundBody::Failed(reason) => {
                if let Some(slot) = origin {
                    let reject = SessionReject {
                        reason: reason.code(),
                        ref_type: 0,
                        ref_request_id: item.request_id,
                        ref_client_id: 0,
                    };
                    self.count_session_reject(reason);
                    self.send(slot, &ServerMsg::SessionReject(reject));
                }
            }
        }
    }

    fn route_event(&mut self, item: &Outbound, origin: Option<usize>, event: Event) {
        if let Some(slot) = origin {
            match event {
                Event::QueryDone { items } => self.settle_query(slot, items),
                Event::Rejected(r) if r.kind == fincore_engine::CommandKind::Query => {
                    self.settle_query(slot, 0);
                }
                _ => {}
            }
        }
        match event {
            Event::Trade(trade) => {
                let seq = self.next_md_seq(trade.instrument);
                let message = ServerMsg::MdTrade(MdTrade {
                    instrument: trade.instrument,
                    md_seq: seq,
                    trade_id: trade.trade_id,
                    price: trade.price,
                    qty: trade.qty,
                    taker_side: trade.taker_side,
                });
                self.publish_md(trade.instrument, &message);
                return;
            }
            Event::Level(level) => {
                let seq = self.next_md_seq(level.instrument);
                let message = ServerMsg::MdLevel(MdLevel {
                    instrument: level.instrument,
                    md_seq: seq,
                    side: level.side,
                    price: level.price,
                    qty: level.qty,
                    orders: level.orders,
                });
                self.publish_md(level.instrument, &message);
                return;
            }
            Event::InstrumentStatusChanged { .. } => {
                // A halt or resume concerns everyone trading: every logged-in session
                // is told (the admin who caused it with its request id).
                for slot in 0..self.conns.len() {
                    let Some(conn) = self.conn(slot) else { continue };
                    if conn.login().is_none() {
                        continue;
                    }
                    let own = Some(slot) == origin;
                    let request_id = if own { item.request_id } else { 0 };
                    let report = ExecReport { journal_seq: item.journal_seq, request_id, event };
                    self.send(slot, &ServerMsg::ExecReport(report));
                }
                return;
            }
            _ => {}
        }
        // The session that sent the command sees the events about its own user's
        // accounts and the ones about no account (rejects, query answers, admin
        // results); an admin sees everything its commands cause. Other users' balances
        // and orders (the fee account, the other side of a fill) are not shown.
        if let Some(slot) = origin
            && let Some(login) = self.conn(slot).and_then(|c| c.login())
            && (login.sees_own_effects()
                || item.owners == [NO_USER; 2]
                || item.owners.contains(&login.user))
        {
            let shown = visible_part(event, login.user, login.admin(), item.owners);
            let report = ExecReport {
                journal_seq: item.journal_seq,
                request_id: item.request_id,
                event: shown,
            };
            self.send(slot, &ServerMsg::ExecReport(report));
        }
        let mut targets = std::mem::take(&mut self.scratch);
        for owner in item.owners {
            if owner == NO_USER {
                continue;
            }
            targets.clear();
            if let Some(sessions) = self.by_user.get(&owner) {
                let others = sessions.iter().filter(|&&(s, _)| s != item.session);
                targets.extend(others.map(|&(session, slot)| {
                    debug_assert_eq!(self.sessions.get(&session), Some(&slot), "slot is live");
                    slot
                }));
            }
            let shown = visible_part(event, owner, false, item.owners);
            let report = ExecReport { journal_seq: item.journal_seq, request_id: 0, event: shown };
            for &slot in &targets {
                self.send(slot, &ServerMsg::ExecReport(report));
            }
        }
        self.scratch = targets;
    }

    /// A query of this session is answered, with `items` items: it costs what that
    /// answer is worth (`answer_cost`); the rest of what it paid is given back.
    fn settle_query(&mut self, slot: usize, items: u32) {
        let Some(conn) = self.conn(slot) else { return };
        // Every query gets exactly one last answer (`QueryDone` or `Rejected`), in order.
        let paid = conn.query_costs.pop_front();
        debug_assert!(paid.is_some(), "a query answer without a query");
        conn.bucket.refund(paid.unwrap_or(0).saturating_sub(answer_cost(items)));
    }

    fn next_md_seq(&mut self, instrument: InstrumentId) -> u64 {
        let seq = &mut self.md_seq[usize::from(instrument.0) % INSTRUMENTS_MAX];
        *seq += 1;
        *seq
    }

    fn publish_md(&mut self, instrument: InstrumentId, message: &ServerMsg) {
        let Some(list) = self.subscribers.get(usize::from(instrument.0)) else { return };
        if list.is_empty() {
            return;
        }
        let mut targets = std::mem::take(&mut self.scratch);
        targets.clear();
        targets.extend(list.iter().filter_map(|s| self.sessions.get(s).copied()));
        for &slot in &targets {
            self.send(slot, message);
        }
        self.scratch = targets;
    }

    fn subscribe_answer(&mut self, slot: usize, item: &Outbound, event: Event) {
        let Some(conn) = self.conn(slot) else { return };
        let Some(&(instrument, wanted)) = conn.pending_subscriptions.front() else { return };
        let last = matches!(event, Event::QueryDone { .. } | Event::Rejected(_));
        if last {
            conn.pending_subscriptions.pop_front();
        }
        if !wanted {
            return;
        }
        match event {
            Event::DepthLevel(level) => {
                let message = ServerMsg::MdSnapshotLevel(MdSnapshotLevel {
                    instrument: level.instrument,
                    side: level.side,
                    price: level.price,
                    qty: level.qty,
                    orders: level.orders,
                });
                self.send(slot, &message);
            }
            Event::QueryDone { items } => {
                if !conn.subscriptions.contains(&instrument) {
                    conn.subscriptions.push(instrument);
                }
                let session = conn.session_id;
                // The engine answered, so the instrument exists and is below
                // INSTRUMENTS_MAX; `get` keeps a bug from becoming a panic anyway.
                let index = usize::from(instrument.0);
                let Some(list) = self.subscribers.get_mut(index) else { return };
                if !list.contains(&session) {
                    list.push(session);
                }
                let md_seq = self.md_seq.get(index).copied().unwrap_or(0);
                let end = MdSnapshotEnd { instrument, md_seq, levels: items };
                self.send(slot, &ServerMsg::MdSnapshotEnd(end));
            }
            other => {
                let report = ExecReport {
                    journal_seq: item.journal_seq,
                    request_id: item.request_id,
                    event: other,
                };
                self.send(slot, &ServerMsg::ExecReport(report));
            }
        }
    }

    fn run_timers(&mut self) {
        if std::mem::take(&mut self.accept_retry) {
            self.accept();
        }
        if let Some(metrics) = self.metrics() {
            let buffered: usize = self.conns.iter().flatten().map(Conn::queued_output).sum();
            metrics.outbound_buffered_bytes.set(buffered as u64);
            self.pipeline.merge_samples();
        }
        for slot in 0..self.conns.len() {
            let now = self.now;
            let Some(conn) = self.conn(slot) else { continue };
            match conn.phase {
                Phase::AwaitingLogin { deadline } if now >= deadline => {
                    self.end_session(slot, SessionReason::LoginTimeout);
                }
                Phase::Closing { deadline } if now >= deadline => self.close(slot),
                Phase::Active(_) if conn.logout_deadline.is_some_and(|d| now >= d) => {
                    // The replies before the logout did not all come in time.
                    self.end_session(slot, SessionReason::ClientLogout);
                }
                Phase::Active(_) if conn.logout_deadline.is_some() => {}
                Phase::Active(login) => {
                    if now.saturating_duration_since(conn.last_recv) > login.heartbeat * 3 {
                        self.end_session(slot, SessionReason::HeartbeatTimeout);
                    } else if now.saturating_duration_since(conn.last_send) >= login.heartbeat {
                        self.send(slot, &ServerMsg::Heartbeat);
                    }
                }
                _ => {}
            }
        }
    }

    /// Stop accepting, finish what is in flight, stop the engine (snapshot, journal
    /// closed), deliver the last reports, say goodbye.
    fn shutdown(mut self) -> Result<ServerExit, ServerError> {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        tracing::info!(in_flight = self.backlog.len(), "shutting down");
        // Shutting down disconnects every session: honour cancel-on-disconnect.
        let time_ns = self.time_ns;
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conn(slot) else { continue };
            let Some(login) = conn.login().filter(|l| l.cancel_on_disconnect) else { continue };
            let inbound = conn.inbound(login.user, 0, time_ns, InboundBody::CancelAll);
            self.backlog.push_back(inbound);
        }
        while !self.backlog.is_empty() && !self.pipeline.failed() {
            self.publish_backlog();
            self.drain_outbound();
            self.flush_dirty();
            std::thread::yield_now();
        }
        self.pipeline.close();
        while !self.pipeline.engine_finished() {
            self.drain_outbound();
            self.flush_dirty();
            std::thread::sleep(Duration::from_micros(200));
        }
        let engine = self.pipeline.join();
        self.drain_outbound();
        while self.more_outbound {
            self.drain_outbound();
        }
        // Everything is synced now; nothing is held back any more.
        for item in std::mem::take(&mut self.held) {
            self.route(&item);
        }
        for slot in 0..self.conns.len() {
            if self.conn(slot).is_some_and(|c| !matches!(c.phase, Phase::Closing { .. })) {
                self.send(slot, &ServerMsg::Logout(SessionReason::ServerShutdown.code()));
            }
        }
        let deadline = Instant::now() + FINAL_FLUSH;
        while Instant::now() < deadline {
            let mut pending = false;
            for conn in self.conns.iter_mut().flatten() {
                if conn.flush().is_ok() && conn.queued_output() > 0 {
                    pending = true;
                }
            }
            if !pending {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let journal_failed = self.pipeline.failed();
        Ok(ServerExit { engine: engine?, sessions: self.sessions_total, journal_failed })
    }
}

/// What `viewer` may see of an event: a trader sees its own side of a fill only (the
/// other side's account, order, client id, fee and remaining quantity are zeroed);
/// an admin, or the owner of both sides, sees all of it.
fn visible_part(event: Event, viewer: UserId, admin: bool, owners: [UserId; 2]) -> Event {
    let Event::Fill(mut fill) = event else { return event };
    // `owners` of a fill: [maker's owner, taker's owner or NO_USER when the same].
    let (maker, taker) = (owners[0], if owners[1] == NO_USER { owners[0] } else { owners[1] });
    if admin || (viewer == maker && viewer == taker) {
        return event;
    }
    if viewer != taker {
        fill.taker_order = fincore_engine::OrderId(0);
        fill.taker_account = fincore_engine::AccountId(0);
        fill.taker_client_id = fincore_engine::ClientOrderId(0);
        fill.taker_fee = 0;
        fill.taker_remaining = fincore_engine::Qty(0);
    }
    if viewer != maker {
        fill.maker_order = fincore_engine::OrderId(0);
        fill.maker_account = fincore_engine::AccountId(0);
        fill.maker_client_id = fincore_engine::ClientOrderId(0);
        fill.maker_fee = 0;
        fill.maker_remaining = fincore_engine::Qty(0);
    }
    Event::Fill(fill)
}

/// Answer items one rate-limit token pays for.
const ITEMS_PER_TOKEN: u32 = 50;

/// What an answer of `items` items costs: one token, plus one per 50 items.
fn answer_cost(items: u32) -> u32 {
    1 + items / ITEMS_PER_TOKEN
}

/// Rate-limit tokens a message costs up front: one, or for a message that can make the
/// server send a lot, the cost of the largest answer it can have (a depth query for
/// 1 000 levels a side 41, a subscription 41, a `Payments` page of 1 000 21,
/// `OpenOrders` 1 + the engine's live orders per account / 50), so that a burst of large
/// queries cannot flood the engine and the gateway with output that every other session
/// then waits behind. A query's answer gives back what its actual size did not cost
/// (`settle_query`). The caller caps it at the bucket's size, so that a full bucket
/// always pays for one.
fn message_cost(message: &ClientMsg, open_orders_max: u32) -> u32 {
    use fincore_engine::{ASSETS_MAX, DEPTH_LEVELS_MAX, INSTRUMENTS_MAX, PAYMENTS_PAGE_MAX};
    let items = match message {
        ClientMsg::Query(fincore_engine::Query::Depth { levels, .. }) => {
            2 * u32::from((*levels).min(DEPTH_LEVELS_MAX))
        }
        ClientMsg::Subscribe(_) => 2 * u32::from(DEPTH_LEVELS_MAX),
        ClientMsg::Query(fincore_engine::Query::Payments { limit, .. }) => {
            u32::from((*limit).min(PAYMENTS_PAGE_MAX))
        }
        ClientMsg::Query(fincore_engine::Query::OpenOrders { .. }) => open_orders_max,
        // One item per asset and per instrument.
        ClientMsg::Query(fincore_engine::Query::Reference) => (ASSETS_MAX + INSTRUMENTS_MAX) as u32,
        _ => 0,
    };
    answer_cost(items)
}
