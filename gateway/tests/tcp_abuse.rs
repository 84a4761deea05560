//! Abuse over real TCP connections (server in-process on 127.0.0.1, ephemeral port,
//! temporary data directory): a thousand sessions held open and logged in; a storm of
//! connections cut at every stage; clients sending one byte at a time (and slow-loris
//! clients that never finish a frame); frames of the largest size, valid and not, sent
//! over and over; clients that never read; queries for the largest answers, pipelined;
//! connections queued while the process is out of file descriptors, or ended before
//! the server accepted them; and login brute force, throttled per user name and per
//! address (`LoginRejected` 918).
//!
//! Throughout each abuse a well-behaved session sends a fence every few milliseconds
//! and its worst round trip must stay under [`RTT_BOUND`]; it also samples the process's
//! resident memory (the server runs in this process), whose anonymous part must not grow
//! over the idle server's by more than a bound per test ([`Memory`] says why that part). The tests run one at a time ([`serial`]) so that
//! they do not distort each other's figures. Each prints one line starting `abuse:` with
//! what it did, the worst round trip and the peak memory; see them with
//! `cargo test -p fincore-gateway --profile ci --test tcp_abuse -- --nocapture`.
//!
//! Several are regression tests of server fixes: the listen backlog (a burst of
//! connects overflowed mio's 128 and waited a second for a SYN retransmit), reading
//! without zeroing a 64 KiB chunk per connection and read (100 KiB of memory per idle
//! session), accepting in batches and retrying a failed accept (connections queued
//! while out of descriptors were never accepted), closing ended connections before
//! refusing one at the connection limit, and charging large queries what their answers
//! can hold.

mod common;

use common::{BTC_USD, Incoming, Raw, WAIT, limit, raw_frame};
use fincore_engine::{Event, Query, Side, TimeInForce, UserId};
use fincore_gateway::client::Received;
use fincore_gateway::config::{DEMO_SECRETS, ServerConfig};
use fincore_gateway::server::{ServerExit, ServerHandle};
use fincore_gateway::wire::{self, BODY_LEN_MAX, ClientMsg, Frame, ServerMsg, SessionReason, msg};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The worst round trip the well-behaved session may see during an abuse. Typical
/// figures are a few milliseconds; the bound is generous because the machine running the
/// tests may be small and busy.
const RTT_BOUND: Duration = Duration::from_secs(3);
/// How often the well-behaved session sends its fence.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// Sessions held open at once.
const HELD: usize = 1_000;
/// Connect / disconnect cycles of the storm, and the threads running them.
const STORM_CYCLES: usize = 2_000;
const STORM_THREADS: usize = 4;
/// Largest heartbeat interval: held sessions need not heartbeat during the test.
const HEARTBEAT_MAX_MS: u32 = 60_000;
/// A connect that takes this long waited for its SYN to be sent again (after 1 s): the
/// server's listen queue was full. A connect to loopback otherwise takes microseconds.
const CONNECT_SLOW: Duration = Duration::from_millis(900);

/// The tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------
// Measuring: the process's memory and open files, the well-behaved session.
// ---------------------------------------------------------------------------------

/// A `kB` field of `/proc/self/status` (`VmRSS`, `RssAnon`, `VmHWM`), in KiB.
fn status_kib(status: &str, field: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(field)).expect("field present");
    let value = line[field.len()..].trim_start_matches(':').trim().trim_end_matches("kB");
    value.trim().parse().expect("a number of kB")
}

/// This process's resident memory, in KiB: all of it, and its anonymous part (heap and
/// stacks: what connections and their buffers take). Most of the rest is the journal's
/// mapped segment (256 MiB, touched ahead of use), which the kernel pages in and out at
/// will, so bounds are checked on the anonymous part.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    rss_kib: u64,
    anon_kib: u64,
}

impl Memory {
    /// Now; zero if `/proc/self/status` cannot be opened (no file descriptor is free
    /// while a test holds the limit down).
    fn now() -> Memory {
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return Memory::default();
        };
        Memory { rss_kib: status_kib(&status, "VmRSS"), anon_kib: status_kib(&status, "RssAnon") }
    }

    fn max(self, other: Memory) -> Memory {
        Memory {
            rss_kib: self.rss_kib.max(other.rss_kib),
            anon_kib: self.anon_kib.max(other.anon_kib),
        }
    }
}

/// The process's peak resident memory since it started, in KiB.
fn high_water_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status").map_or(0, |s| status_kib(&s, "VmHWM"))
}

fn mib(kib: u64) -> u64 {
    kib / 1024
}

/// File descriptors this process has open.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Raises the soft open-files limit to at least `needed` (within the hard limit).
fn raise_open_files(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed {
        return;
    }
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    assert!(maximum >= needed, "the hard open-files limit {maximum} is below {needed}");
    let raised = rustix::process::Rlimit { current: Some(needed), maximum: limit.maximum };
    setrlimit(Resource::Nofile, raised).expect("raise the open-files limit");
}

/// What the well-behaved session saw.
struct ProbeStats {
    rounds: u64,
    rtt_max: Duration,
    memory_peak: Memory,
}

/// A well-behaved session sending a fence every [`PROBE_INTERVAL`] from its own thread.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<ProbeStats>,
}

impl Probe {
    fn start(addr: SocketAddr) -> Probe {
        let (mut raw, _, _) = Raw::login(addr, "payops", 1_000, false);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut stats =
                ProbeStats { rounds: 0, rtt_max: Duration::ZERO, memory_peak: Memory::default() };
            while !stopping.load(Ordering::Acquire) {
                let sent = Instant::now();
                let id = raw.send(&fence());
                wait_fence(&mut raw, id);
                stats.rtt_max = stats.rtt_max.max(sent.elapsed());
                stats.rounds += 1;
                stats.memory_peak = stats.memory_peak.max(Memory::now());
                thread::sleep(PROBE_INTERVAL);
            }
            stats
        });
        Probe { stop, thread }
    }

    fn finish(self) -> ProbeStats {
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("the well-behaved session got every answer in time")
    }
}

/// A zero-level depth query: answered by `QueryDone` after everything sent before it.
fn fence() -> ClientMsg {
    ClientMsg::Query(Query::Depth { instrument: BTC_USD, levels: 0 })
}

/// Waits for the answer to fence `id`, skipping heartbeats.
fn wait_fence(raw: &mut Raw, id: u64) {
    loop {
        match raw.expect().msg {
            ServerMsg::ExecReport(report) if report.request_id == id => {
                assert_eq!(report.event, Event::QueryDone { items: 0 });
                return;
            }
            ServerMsg::Heartbeat => {}
            other => panic!("fence {id}: unexpected {other:?}"),
        }
    }
}

/// One abuse: a server, the well-behaved session, and the memory of the idle server.
struct Abuse {
    _dir: tempfile::TempDir,
    server: ServerHandle,
    addr: SocketAddr,
    probe: Probe,
    idle: Memory,
}

impl Abuse {
    fn start(edit: impl FnOnce(&mut ServerConfig)) -> Abuse {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::config(dir.path());
        edit(&mut config);
        let server = common::start(&config);
        let addr = server.local_addr();
        let probe = Probe::start(addr);
        // The engine's tables and the rings are allocated at start; what the abuse adds
        // is measured from here.
        let idle = Memory::now();
        Abuse { _dir: dir, server, addr, probe, idle }
    }

    /// Stops the well-behaved session, checks that a new session still works, stops the
    /// server, prints the figures and checks the round trip and memory bounds.
    fn finish(self, what: &str, growth_max_mib: u64) -> ServerExit {
        let stats = self.probe.finish();
        let peak = stats.memory_peak.max(Memory::now());
        let (mut raw, _, _) = Raw::login(self.addr, "bob", 1_000, false);
        let id = raw.send(&fence());
        wait_fence(&mut raw, id);
        drop(raw);
        let exit = self.server.stop().expect("the server stops cleanly");
        let growth_kib = peak.anon_kib.saturating_sub(self.idle.anon_kib);
        eprintln!(
            "abuse: {what}; max rtt {:.1} ms over {} probes; peak rss {} MiB, anonymous {} \
             MiB (idle server {} MiB: +{} MiB); process high-water mark {} MiB",
            stats.rtt_max.as_secs_f64() * 1e3,
            stats.rounds,
            mib(peak.rss_kib),
            mib(peak.anon_kib),
            mib(self.idle.anon_kib),
            mib(growth_kib),
            mib(high_water_kib()),
        );
        assert!(stats.rounds > 0, "{what}: the well-behaved session was answered");
        assert!(stats.rtt_max < RTT_BOUND, "{what}: worst round trip {:?}", stats.rtt_max);
        assert!(mib(growth_kib) < growth_max_mib, "{what}: memory grew {} MiB", mib(growth_kib));
        exit
    }
}

// ---------------------------------------------------------------------------------
// Connections.
// ---------------------------------------------------------------------------------

/// A login frame (request id 1).
fn login_frame(user: &str, secret: &str, heartbeat_ms: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let login = wire::Login::new(user, secret, heartbeat_ms, false);
    ClientMsg::Login(login).encode_into(1, &mut out);
    out
}

fn frame(message: &ClientMsg, request_id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode_into(request_id, &mut out);
    out
}

/// A TCP connection to `addr` from the loopback address `from` (any 127.x.y.z works on
/// Linux: the whole block is local), so the server sees another peer address.
fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    bind(&fd, &SocketAddr::from((from, 0))).unwrap_or_else(|e| panic!("bind {from}: {e}"));
    connect(&fd, &addr).expect("connect");
    TcpStream::from(fd)
}

/// Closes `stream` with a reset instead of a normal close (SO_LINGER 0).
fn reset(stream: TcpStream) {
    rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO)).expect("linger");
    drop(stream);
}

/// Every message the server sends on `stream` until it closes the connection.
fn messages_until_closed(stream: &mut TcpStream) -> Vec<ServerMsg> {
    let deadline = Instant::now() + WAIT;
    let mut bytes = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server did not close the connection in {WAIT:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut messages = Vec::new();
    let mut rest = &bytes[..];
    while let Frame::Complete(header, body) = wire::next_frame(rest) {
        messages.push(ServerMsg::decode(header.msg_type, body).expect("a server message"));
        rest = &rest[wire::HEADER_LEN + body.len()..];
    }
    assert!(rest.is_empty(), "a frame cut short: {} bytes", rest.len());
    messages
}

/// One login attempt from `from`: the server's answer. A refusal is the only frame
/// before the server closes the connection; an accepted session is logged out.
fn attempt(addr: SocketAddr, from: Ipv4Addr, user: &str, secret: &str) -> ServerMsg {
    let mut stream = connect_from(from, addr);
    stream.write_all(&login_frame(user, secret, 1_000)).expect("send the login");
    let mut logout = Vec::new();
    ClientMsg::Logout.encode_into(2, &mut logout);
    let answers = messages_until_closed_after(&mut stream, &logout);
    let rest = if matches!(answers[0], ServerMsg::LoginAccepted(_)) {
        vec![ServerMsg::Logout(SessionReason::ClientLogout.code())]
    } else {
        Vec::new()
    };
    assert_eq!(answers[1..], rest, "{user} from {from}");
    answers[0]
}

/// Like [`messages_until_closed`], but first sends `then` if the login is accepted (the
/// server keeps an accepted session open).
fn messages_until_closed_after(stream: &mut TcpStream, then: &[u8]) -> Vec<ServerMsg> {
    // The login's answer is the first frame: 16 bytes of header and at most 21 of body.
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut header = [0u8; wire::HEADER_LEN];
    stream.read_exact(&mut header).expect("the login's answer");
    let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("the login's answer");
    let msg_type = u16::from_le_bytes(header[4..6].try_into().unwrap());
    let first = ServerMsg::decode(msg_type, &body).expect("a server message");
    if matches!(first, ServerMsg::LoginAccepted(_)) {
        stream.write_all(then).expect("send");
    }
    let mut all = vec![first];
    all.extend(messages_until_closed(stream));
    all
}

// ---------------------------------------------------------------------------------
// The abuses.
// ---------------------------------------------------------------------------------

#[test]
fn a_thousand_sessions_are_held_open_and_each_answers() {
    let _serial = serial();
    raise_open_files(2 * HELD as u64 + 512);
    let abuse = Abuse::start(|c| c.session.max_connections = HELD + 16);
    let addr = abuse.addr;
    let users: Vec<(&str, &str)> = DEMO_SECRETS.to_vec();
    let demo = ServerConfig::demo();

    // All connect, then all log in at once, then all answers are read.
    let began = Instant::now();
    let mut connect_max = Duration::ZERO;
    let mut held: Vec<Raw> = (0..HELD)
        .map(|_| {
            let connecting = Instant::now();
            let raw = Raw::connect(addr);
            connect_max = connect_max.max(connecting.elapsed());
            raw
        })
        .collect();
    assert!(connect_max < CONNECT_SLOW, "a SYN was dropped: slowest connect {connect_max:?}");
    for (i, raw) in held.iter_mut().enumerate() {
        let (user, secret) = users[i % users.len()];
        raw.write(&login_frame(user, secret, HEARTBEAT_MAX_MS));
    }
    let mut sessions = std::collections::BTreeSet::new();
    for (i, raw) in held.iter_mut().enumerate() {
        let (user, _) = users[i % users.len()];
        match raw.expect().msg {
            ServerMsg::LoginAccepted(accepted) => {
                assert_eq!(accepted.user, UserId(demo.user(user).unwrap().id));
                assert!(sessions.insert(accepted.session_id), "session ids are unique");
            }
            other => panic!("session {i} ({user}): {other:?}"),
        }
    }
    let logged_in = began.elapsed();
    // Held a while: the well-behaved session is served meanwhile.
    thread::sleep(Duration::from_millis(500));
    // At the end every session answers a request: all sent, then all read.
    let asked = Instant::now();
    for raw in &mut held {
        raw.send_as(&fence(), 2);
    }
    for raw in &mut held {
        wait_fence(raw, 2);
    }
    let answered = asked.elapsed();
    let what = format!(
        "connections held {HELD} (slowest connect {:.1} ms, all logged in within {} ms; a \
         request on each, all answered within {} ms)",
        connect_max.as_secs_f64() * 1e3,
        logged_in.as_millis(),
        answered.as_millis()
    );
    drop(held);
    let exit = abuse.finish(&what, 64);
    assert!(exit.sessions >= HELD as u64 + 2);
}

/// One connect / disconnect cycle of the storm, cut at the stage `i` selects. Returns
/// how long the connect took.
fn storm_cycle(addr: SocketAddr, i: usize) -> Duration {
    let login = login_frame("alice", "alice-secret", HEARTBEAT_MAX_MS);
    let query = frame(&fence(), 2);
    let connecting = Instant::now();
    let Ok(mut stream) = TcpStream::connect(addr) else { panic!("connect {i}") };
    let connected = connecting.elapsed();
    // Writes may fail once the server has closed its side; that is part of the storm.
    match i % 6 {
        // Connect and go.
        0 => drop(stream),
        // Half a login.
        1 => {
            let _ = stream.write_all(&login[..login.len() / 2]);
        }
        // A whole login, its answer never read.
        2 => {
            let _ = stream.write_all(&login);
        }
        // Logged in, then half a frame.
        3 => {
            let _ = stream.write_all(&login);
            let mut answer = [0u8; wire::HEADER_LEN + 21];
            stream.set_read_timeout(Some(WAIT)).unwrap();
            stream.read_exact(&mut answer).expect("LoginAccepted");
            let _ = stream.write_all(&query[..query.len() / 2]);
        }
        // A login and a request, then a reset.
        4 => {
            let _ = stream.write_all(&[&login[..], &query[..]].concat());
            reset(stream);
        }
        // Half a frame of the largest size before any login, then a reset.
        _ => {
            let big = raw_frame(msg::QUERY, wire::VERSION, 0, 1, &[7u8; BODY_LEN_MAX as usize]);
            let _ = stream.write_all(&big[..big.len() / 2]);
            reset(stream);
        }
    }
    connected
}

#[test]
fn a_connection_storm_leaves_nothing_behind() {
    let _serial = serial();
    raise_open_files(4_096);
    let abuse = Abuse::start(|_| {});
    let addr = abuse.addr;
    let files_before = open_files();
    let began = Instant::now();
    let threads: Vec<_> = (0..STORM_THREADS)
        .map(|t| {
            thread::spawn(move || {
                let cycles = (t..STORM_CYCLES).step_by(STORM_THREADS);
                cycles.map(|i| storm_cycle(addr, i)).max().unwrap_or_default()
            })
        })
        .collect();
    let connect_max = threads.into_iter().map(|t| t.join().expect("storm thread")).max();
    let connect_max = connect_max.unwrap_or_default();
    let stormed = began.elapsed();
    assert!(connect_max < CONNECT_SLOW, "a SYN was dropped: slowest connect {connect_max:?}");
    // The server closes every connection of the storm: the process's open files come
    // back to what they were (give or take the file the well-behaved session's thread
    // opens for a moment to read the memory figures).
    let slack = 2;
    let deadline = Instant::now() + WAIT;
    while open_files() > files_before + slack && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let files_after = open_files();
    assert!(files_after <= files_before + slack, "open files {files_before} -> {files_after}");
    let settled = began.elapsed();
    let what = format!(
        "connection storm of {STORM_CYCLES} connect/disconnect cycles in {} ms (slowest \
         connect {:.1} ms), every socket closed after {} ms",
        stormed.as_millis(),
        connect_max.as_secs_f64() * 1e3,
        settled.as_millis()
    );
    let exit = abuse.finish(&what, 64);
    assert!(exit.sessions >= STORM_CYCLES as u64 + 2);
}

/// Trickles a login and three fences one byte at a time; checks every answer.
fn trickle(addr: SocketAddr, user: &str, pause: Duration) {
    let mut raw = Raw::connect(addr);
    let mut bytes = login_frame(user, &format!("{user}-secret"), HEARTBEAT_MAX_MS);
    for id in 2..=4 {
        bytes.extend_from_slice(&frame(&fence(), id));
    }
    for byte in bytes {
        raw.write(&[byte]);
        thread::sleep(pause);
    }
    assert!(matches!(raw.expect().msg, ServerMsg::LoginAccepted(_)), "{user} logged in");
    for id in 2..=4 {
        wait_fence(&mut raw, id);
    }
}

/// Sends `bytes` one at a time every `pause` until the server closes the connection;
/// returns the messages it sent.
fn slow_loris(raw: &mut Raw, bytes: &[u8], pause: Duration) -> Vec<ServerMsg> {
    let mut received = Vec::new();
    let mut bytes = bytes.iter().cycle();
    // Room for the longest timeout a caller sets (a 3 s login timeout) and then some.
    let deadline = Instant::now() + 2 * WAIT;
    loop {
        assert!(Instant::now() < deadline, "the slow loris is still connected");
        let byte = *bytes.next().expect("cycles");
        // Once the server has closed, writes fail: read what it said first.
        let _ = raw.stream.write_all(&[byte]);
        match raw.recv_timeout(pause) {
            Some(Incoming::Closed) => return received,
            Some(Incoming::Msg(Received { msg, .. })) => received.push(msg),
            None => {}
        }
    }
}

#[test]
fn clients_sending_one_byte_at_a_time_are_answered_and_slow_loris_is_cut_off() {
    let _serial = serial();
    // 3 s: twenty trickling logins on a busy 2-core machine can take over a second.
    let abuse = Abuse::start(|c| c.session.login_timeout_ms = 3_000);
    let addr = abuse.addr;
    let began = Instant::now();
    // Twenty at once, a byte every millisecond (about 0.2 s for 189 bytes each).
    let users: Vec<&str> = DEMO_SECRETS.iter().map(|(name, _)| *name).collect();
    let trickling: Vec<_> = (0..20)
        .map(|i| {
            let user = users[i % users.len()];
            thread::spawn(move || trickle(addr, user, Duration::from_millis(1)))
        })
        .collect();
    for thread in trickling {
        thread.join().expect("a trickling client is answered");
    }
    let trickled = began.elapsed();

    // A login that never completes: cut off at the login timeout (913).
    let login = login_frame("bob", "bob-secret", HEARTBEAT_MAX_MS);
    let mut raw = Raw::connect(addr);
    let said = slow_loris(&mut raw, &login[..login.len() - 1], Duration::from_millis(50));
    assert_eq!(said, [ServerMsg::Logout(SessionReason::LoginTimeout.code())]);
    // A session that never completes a frame: no frame, no proof of life; cut off after
    // three heartbeat intervals (912) however many bytes trickle in.
    let (mut raw, _, _) = Raw::login(addr, "bob", 100, false);
    let big = raw_frame(msg::QUERY, wire::VERSION, 0, 2, &[0u8; BODY_LEN_MAX as usize]);
    let said = slow_loris(&mut raw, &big, Duration::from_millis(20));
    let logout = ServerMsg::Logout(SessionReason::HeartbeatTimeout.code());
    assert_eq!(said.last(), Some(&logout), "{said:?}");
    assert!(said[..said.len() - 1].iter().all(|m| *m == ServerMsg::Heartbeat), "{said:?}");

    let what = format!(
        "20 clients sending one byte per ms answered in {} ms; slow-loris login and \
         session cut off (913, 912)",
        trickled.as_millis()
    );
    abuse.finish(&what, 64);
}

#[test]
fn frames_of_the_largest_size_are_answered_or_refused_without_harm() {
    let _serial = serial();
    let abuse = Abuse::start(|_| {});
    let addr = abuse.addr;
    let began = Instant::now();
    // Frames of the largest body the header allows (1024 bytes) that no message has:
    // each refused with 900 until the error budget ends the session (914), logged in or
    // not. Exactly 11 are sent: bytes still unread when the server closes would make it
    // reset the connection, and the client could lose the last replies.
    let big = raw_frame(msg::QUERY, wire::VERSION, 0, 9, &[0u8; BODY_LEN_MAX as usize]);
    let rounds = 100;
    for round in 0..rounds {
        let mut raw = if round % 2 == 0 {
            Raw::login(addr, "alice", HEARTBEAT_MAX_MS, false).0
        } else {
            Raw::connect(addr)
        };
        raw.write(&big.repeat(11));
        let mut rejects = 0;
        loop {
            match raw.recv() {
                Incoming::Msg(Received { msg: ServerMsg::SessionReject(reject), .. }) => {
                    assert_eq!(reject.reason, SessionReason::MalformedFrame.code());
                    assert_eq!((reject.ref_type, reject.ref_request_id), (msg::QUERY, 9));
                    rejects += 1;
                }
                Incoming::Msg(Received { msg: ServerMsg::Logout(reason), .. }) => {
                    assert_eq!(reason, SessionReason::TooManyErrors.code());
                    break;
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(rejects, 11, "error budget 10: the 11th refusal ends the session");
        raw.expect_closed();
    }
    let refused = began.elapsed();

    // The largest valid message after login (NewOrder, 51 bytes), 20 000 times as fast
    // as the socket takes them: each answered (an IOC order that cannot trade: Accepted,
    // Balance, Cancelled, Balance) or refused by the rate limit (908), nothing else.
    let orders = 20_000u64;
    let (mut raw, _, _) = Raw::login(addr, "alice", HEARTBEAT_MAX_MS, false);
    let mut writer = raw.stream.try_clone().unwrap();
    let fence_writer = raw.stream.try_clone().unwrap();
    let mut fence_again = FenceAgain::default();
    let sending = thread::spawn(move || {
        let mut bytes = Vec::new();
        for id in 1..=orders {
            let mut order = limit(2, BTC_USD, Side::Buy, 5_900_000, 1, id);
            order.time_in_force = TimeInForce::Ioc;
            ClientMsg::NewOrder(order).encode_into(id, &mut bytes);
        }
        writer.write_all(&bytes).unwrap();
        // Let the token bucket refill so that the fence itself is not refused.
        thread::sleep(Duration::from_millis(200));
        writer.write_all(&frame(&fence(), orders + 1)).unwrap();
    });
    let mut answered = vec![false; orders as usize + 1];
    let mut limited = 0u64;
    loop {
        match raw.expect().msg {
            ServerMsg::ExecReport(report) if report.request_id == orders + 1 => break,
            // The gateway read the fence in the same burst as the orders (it was held
            // up): the bucket had not refilled. Sent again once it has.
            ServerMsg::SessionReject(reject) if reject.ref_request_id == orders + 1 => {
                assert_eq!(reject.reason, SessionReason::RateLimited.code(), "{reject:?}");
                fence_again.later(&fence_writer, orders + 1);
            }
            ServerMsg::ExecReport(report) => {
                assert!(!matches!(report.event, Event::Rejected(_)), "{report:?}");
                answered[report.request_id as usize] = true;
            }
            ServerMsg::SessionReject(reject) => {
                assert_eq!(reject.reason, SessionReason::RateLimited.code(), "{reject:?}");
                assert!(!answered[reject.ref_request_id as usize]);
                answered[reject.ref_request_id as usize] = true;
                limited += 1;
            }
            ServerMsg::Heartbeat => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    sending.join().unwrap();
    fence_again.join();
    assert!(answered[1..].iter().all(|&a| a), "every order answered or refused");
    let what = format!(
        "{rounds} connections of 1024-byte frames refused (900 x 11, then 914) in {} ms; \
         {orders} NewOrders pipelined, {} executed, {limited} rate-limited (908)",
        refused.as_millis(),
        orders - limited,
    );
    abuse.finish(&what, 64);
}

/// Logs in and sends `Reference` queries (about 450 bytes of answer each) without ever
/// reading, until the server drops the connection. Returns the queries sent.
fn never_read(addr: SocketAddr) -> u64 {
    let (mut raw, _, _) = Raw::login(addr, "bob", HEARTBEAT_MAX_MS, false);
    raw.stream.set_write_timeout(Some(WAIT)).unwrap();
    let batch_len = 1_000u64;
    let mut batch = Vec::new();
    for id in 0..batch_len {
        ClientMsg::Query(Query::Reference).encode_into(id, &mut batch);
    }
    let mut sent = 0;
    let deadline = Instant::now() + 4 * WAIT;
    while Instant::now() < deadline {
        match raw.stream.write_all(&batch) {
            Ok(()) => sent += batch_len,
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                return sent;
            }
            Err(e) => panic!("after {sent} queries: {e}"),
        }
        thread::sleep(Duration::from_millis(2));
    }
    panic!("still connected after {sent} queries never read");
}

#[test]
fn clients_that_never_read_are_disconnected() {
    let _serial = serial();
    let abuse = Abuse::start(|_| {});
    let addr = abuse.addr;
    let began = Instant::now();
    let readers: Vec<_> = (0..4).map(|_| thread::spawn(move || never_read(addr))).collect();
    let sent: Vec<u64> = readers.into_iter().map(|t| t.join().expect("dropped")).collect();
    let what = format!(
        "4 clients never reading, dropped after {sent:?} queries (outbound_buffer_max \
         8 MiB) within {} ms",
        began.elapsed().as_millis()
    );
    // Four output buffers of up to 8 MiB (16 MiB of capacity once doubled).
    abuse.finish(&what, 160);
}

/// A loopback address for attacker `n` (127.1.x.y; the server sees it as the peer).
fn attacker(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x7f01_0000 + n)
}

fn rejected(reason: SessionReason) -> ServerMsg {
    ServerMsg::LoginRejected(reason.code())
}

#[test]
fn login_brute_force_is_throttled_per_user_and_per_address() {
    let _serial = serial();
    // Long enough that the steps below, each counting on the lockout still being in
    // force, fit in it on a slow machine.
    let lockout = Duration::from_millis(4_000);
    let abuse = Abuse::start(|c| c.session.login_lockout_ms = lockout.as_millis() as u32);
    let addr = abuse.addr;
    let failed = rejected(SessionReason::LoginFailed);
    let throttled = rejected(SessionReason::LoginThrottled);
    let began = Instant::now();
    let (a, b, c) = (attacker(1), attacker(2), attacker(3));

    // Five wrong secrets for alice from one address: refused as usual (906)...
    for guess in 0..5 {
        assert_eq!(attempt(addr, a, "alice", &format!("guess-{guess}")), failed);
    }
    // ... then alice is locked from anywhere and that address for anyone, even with the
    // right secret, which is not checked.
    assert_eq!(attempt(addr, a, "alice", "alice-secret"), throttled);
    assert_eq!(attempt(addr, b, "alice", "alice-secret"), throttled);
    assert_eq!(attempt(addr, a, "bob", "bob-secret"), throttled);
    // Another user from another address logs in.
    assert!(matches!(attempt(addr, b, "bob", "bob-secret"), ServerMsg::LoginAccepted(_)));

    // Cycling user names (real or not) locks the address all the same.
    for name in ["nobody0", "nobody1", "nobody2", "carol", "nobody4"] {
        assert_eq!(attempt(addr, c, name, "wrong"), failed);
    }
    assert_eq!(attempt(addr, c, "carol", "carol-secret"), throttled);
    assert_eq!(attempt(addr, c, "nobody9", "x"), throttled, "unknown names alike");
    assert!(matches!(attempt(addr, b, "carol", "carol-secret"), ServerMsg::LoginAccepted(_)));

    // A flood: 50 addresses, 2 500 attempts at alice and at fresh names. Only a handful of
    // secrets are checked; the rest are refused unchecked.
    let flood_began = Instant::now();
    let flooders: Vec<_> = (0..5u32)
        .map(|t| {
            thread::spawn(move || {
                let (mut checked, mut refused) = (0u32, 0u32);
                for i in 0..500u32 {
                    let from = attacker(100 + t * 10 + i % 10);
                    let name = if i % 2 == 0 { "alice".to_string() } else { format!("n{t}x{i}") };
                    match attempt(addr, from, &name, "guess") {
                        ServerMsg::LoginRejected(906) => checked += 1,
                        ServerMsg::LoginRejected(918) => refused += 1,
                        other => panic!("{name} from {from}: {other:?}"),
                    }
                }
                (checked, refused)
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for flooder in flooders {
        let (c, r) = flooder.join().expect("flooder");
        (checked, refused) = (checked + c, refused + r);
    }
    let flood = flood_began.elapsed();
    // Each address and each name gets at most 5 checked failures per lockout period.
    let periods = (flood.as_secs_f64() / lockout.as_secs_f64()).ceil() as u32 + 1;
    assert!(checked <= 50 * 5 * periods, "{checked} secrets checked in {flood:?}");
    assert!(refused > checked, "{refused} refused unchecked, {checked} checked");

    // Once the lockout has passed, alice logs in again.
    thread::sleep(lockout);
    let d = attacker(4);
    assert!(matches!(attempt(addr, d, "alice", "alice-secret"), ServerMsg::LoginAccepted(_)));
    let what = format!(
        "login brute force: locked per user and per address (918); flood of 2500 attempts \
         from 50 addresses in {} ms, {checked} secrets checked, {refused} refused \
         unchecked; {} ms in all",
        flood.as_millis(),
        began.elapsed().as_millis()
    );
    abuse.finish(&what, 64);
}

/// Reads server frames fast (unlike `Raw`, which is made for a few frames at a time):
/// a client that reads at line rate is not a slow consumer.
struct FastReader {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    /// Bytes of whole frames read.
    bytes: u64,
}

impl FastReader {
    fn new(stream: TcpStream) -> FastReader {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        FastReader { stream, buf: Vec::new(), start: 0, bytes: 0 }
    }

    /// The next message; panics if the connection ends or nothing comes for [`WAIT`].
    fn next(&mut self) -> ServerMsg {
        loop {
            if let Frame::Complete(header, body) = wire::next_frame(&self.buf[self.start..]) {
                let msg = ServerMsg::decode(header.msg_type, body).expect("a server message");
                let used = wire::HEADER_LEN + body.len();
                self.start += used;
                self.bytes += used as u64;
                return msg;
            }
            self.buf.drain(..self.start);
            self.start = 0;
            let len = self.buf.len();
            self.buf.resize(len + (1 << 16), 0);
            match self.stream.read(&mut self.buf[len..]) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => self.buf.truncate(len + n),
                Err(e) => panic!("reading: {e}"),
            }
        }
    }
}

/// Sends `message` `count` times from alice's session as fast as the socket takes them,
/// then (the bucket refilled) a fence, reading everything meanwhile. Returns the bytes
/// received and the number of messages refused by the rate limit (908).
fn flood_reading(addr: SocketAddr, message: &ClientMsg, count: u64) -> (u64, u64) {
    let (raw, _, _) = Raw::login(addr, "alice", HEARTBEAT_MAX_MS, false);
    let mut writer = raw.stream.try_clone().unwrap();
    let fence_writer = raw.stream.try_clone().unwrap();
    let mut fence_again = FenceAgain::default();
    let mut reader = FastReader::new(raw.stream);
    let mut bytes = Vec::new();
    for id in 1..=count {
        message.encode_into(id, &mut bytes);
    }
    let fence_id = count + 1;
    let sending = thread::spawn(move || {
        writer.write_all(&bytes).unwrap();
        // Let the token bucket refill so that the fence itself is not refused.
        thread::sleep(Duration::from_millis(200));
        writer.write_all(&frame(&fence(), fence_id)).unwrap();
    });
    let mut limited = 0u64;
    loop {
        match reader.next() {
            ServerMsg::ExecReport(report) if report.request_id == fence_id => break,
            // Read in the same burst as the flood (the gateway was held up): sent again
            // once the bucket has refilled.
            ServerMsg::SessionReject(reject) if reject.ref_request_id == fence_id => {
                assert_eq!(reject.reason, SessionReason::RateLimited.code(), "{reject:?}");
                fence_again.later(&fence_writer, fence_id);
            }
            ServerMsg::SessionReject(reject) => {
                assert_eq!(reject.reason, SessionReason::RateLimited.code(), "{reject:?}");
                limited += 1;
            }
            ServerMsg::ExecReport(_) | ServerMsg::Heartbeat => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    sending.join().unwrap();
    fence_again.join();
    (reader.bytes, limited)
}

/// Fences refused by the rate limit, sent again from their own threads once the bucket
/// has refilled, so that the reading thread keeps reading meanwhile (the answers to a
/// flood are still coming, and a session that stops reading them is a slow consumer).
#[derive(Default)]
struct FenceAgain {
    senders: Vec<JoinHandle<()>>,
}

impl FenceAgain {
    /// At most this many times: a bucket that never refills is a failure, not a wait.
    const TRIES: usize = 10;

    fn later(&mut self, stream: &TcpStream, id: u64) {
        assert!(self.senders.len() < Self::TRIES, "the fence was refused {} times", Self::TRIES);
        let mut writer = stream.try_clone().unwrap();
        self.senders.push(thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            writer.write_all(&frame(&fence(), id)).unwrap();
        }));
    }

    fn join(self) {
        for sender in self.senders {
            sender.join().expect("fence sender");
        }
    }
}

#[test]
fn large_answers_cost_what_they_can_hold() {
    let _serial = serial();
    let abuse = Abuse::start(|_| {});
    let addr = abuse.addr;
    // Alice rests 5 000 asks, one per price level.
    let (mut raw, _, _) = Raw::login(addr, "alice", HEARTBEAT_MAX_MS, false);
    let orders = 5_000u64;
    let mut bytes = Vec::new();
    for i in 1..=orders {
        let order = limit(2, BTC_USD, Side::Sell, 6_100_000 + i as i64, 1, i);
        ClientMsg::NewOrder(order).encode_into(i, &mut bytes);
    }
    raw.write(&bytes);
    raw.send_as(&fence(), orders + 1);
    wait_for(&mut raw, orders + 1);
    // Then asks for all of them, over and over: each answer is 5 000 `OrderInfo`s (about
    // 550 kB). Charged one token, 2 000 of them were seconds of work for the engine and
    // the gateway, which every other session waited behind (its heartbeats timed out);
    // charged what they can hold, a few go through and the rest are refused.
    let began = Instant::now();
    let account = fincore_engine::AccountId(2);
    let open_orders = ClientMsg::Query(Query::OpenOrders { account });
    let (open_bytes, open_limited) = flood_reading(addr, &open_orders, 2_000);
    // The same for full depth (1 000 levels).
    let depth = ClientMsg::Query(Query::Depth { instrument: BTC_USD, levels: 1_000 });
    let (depth_bytes, depth_limited) = flood_reading(addr, &depth, 20_000);
    let what = format!(
        "large answers: 2000 OpenOrders of {orders} orders ({open_limited} rate-limited, \
         {} MiB answered) and 20000 Depth of 1000 levels ({depth_limited} rate-limited, {} \
         MiB answered) in {} ms",
        open_bytes >> 20,
        depth_bytes >> 20,
        began.elapsed().as_millis()
    );
    assert!(open_limited > 1_900 && depth_limited > 15_000, "{what}");
    abuse.finish(&what, 64);
}

/// Waits for the last report of request `id`: a `QueryDone` (fences) skipping the rest.
fn wait_for(raw: &mut Raw, id: u64) {
    loop {
        if let ServerMsg::ExecReport(report) = raw.expect().msg
            && report.request_id == id
            && matches!(report.event, Event::QueryDone { .. })
        {
            return;
        }
    }
}

#[test]
fn connections_queued_while_out_of_file_descriptors_are_accepted_later() {
    use rustix::net::{AddressFamily, SocketType, connect, socket};
    use rustix::process::{Resource, setrlimit};
    let _serial = serial();
    let abuse = Abuse::start(|_| {});
    let addr = abuse.addr;
    // Sockets made before the limit is lowered: connecting them takes no descriptor.
    let clients = 40;
    let sockets: Vec<_> = (0..clients)
        .map(|_| socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket"))
        .collect();
    // Lower the open-files limit to leave 8 descriptor numbers free, so that the server
    // accepts a few of the connections and then fails (EMFILE) with the rest queued.
    let free_wanted = 8;
    let limit = hold_open_files_down(free_wanted);
    for socket in &sockets {
        // The kernel completes the connection and queues it for the server's accept.
        connect(socket, &addr).expect("connect");
    }
    thread::sleep(Duration::from_millis(300));
    setrlimit(Resource::Nofile, limit).expect("restore the open-files limit");
    // No new connection arrives to wake the listener up: the server must come back for
    // the queued ones by itself.
    let began = Instant::now();
    let mut streams: Vec<TcpStream> = sockets.into_iter().map(TcpStream::from).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        let (user, secret) = DEMO_SECRETS[i % DEMO_SECRETS.len()];
        stream.write_all(&login_frame(user, secret, HEARTBEAT_MAX_MS)).unwrap();
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let mut answer = [0u8; wire::HEADER_LEN + 21];
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.read_exact(&mut answer).unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(u16::from_le_bytes([answer[4], answer[5]]), msg::LOGIN_ACCEPTED, "{i}");
    }
    let what = format!(
        "{clients} connections queued while out of file descriptors ({free_wanted} free): \
         all accepted and logged in {} ms after the limit was restored",
        began.elapsed().as_millis()
    );
    drop(streams);
    abuse.finish(&what, 64);
}

/// Lowers the open-files limit so that only `free` descriptor numbers are left below it
/// (the server's accepts fail once they are used); returns the limit to restore.
fn hold_open_files_down(free: usize) -> rustix::process::Rlimit {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    let lowered = (0u64..).filter(|fd| !open.contains(fd)).nth(free).unwrap();
    let limit = getrlimit(Resource::Nofile);
    let low = Rlimit { current: Some(lowered), maximum: limit.maximum };
    setrlimit(Resource::Nofile, low).expect("lower the open-files limit");
    limit
}

#[test]
fn connections_that_ended_in_the_accept_queue_do_not_count_against_the_limit() {
    use rustix::net::{AddressFamily, SocketType, connect, socket};
    let _serial = serial();
    let max_connections = 16;
    let abuse = Abuse::start(|c| c.session.max_connections = max_connections);
    let addr = abuse.addr;
    // 100 connections queue up while the server cannot accept (no descriptor free); the
    // first 90 end there, the last 10 send a login.
    let (dead, live) = (90, 10);
    let mut streams: Vec<TcpStream> = (0..dead + live)
        .map(|_| socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket"))
        .map(TcpStream::from)
        .collect();
    let limit = hold_open_files_down(0);
    for stream in &streams {
        connect(stream, &addr).expect("connect");
    }
    for stream in &streams[..dead] {
        // Ends the connection without freeing a descriptor the server could take.
        stream.shutdown(std::net::Shutdown::Both).unwrap();
    }
    for (i, stream) in streams[dead..].iter_mut().enumerate() {
        let (user, secret) = DEMO_SECRETS[i % DEMO_SECRETS.len()];
        stream.write_all(&login_frame(user, secret, HEARTBEAT_MAX_MS)).unwrap();
    }
    thread::sleep(Duration::from_millis(200));
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).expect("restore");
    // The server takes the whole queue in a burst. The 90 ended connections were
    // counted until closed: the live ones, queued behind them, were refused (909)
    // although the server held only 10 sessions.
    for (i, stream) in streams[dead..].iter_mut().enumerate() {
        let mut answer = [0u8; wire::HEADER_LEN + 21];
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.read_exact(&mut answer[..wire::HEADER_LEN + 4]).unwrap();
        let msg_type = u16::from_le_bytes([answer[4], answer[5]]);
        assert_eq!(msg_type, msg::LOGIN_ACCEPTED, "live connection {i}: {answer:?}");
    }
    drop(streams.drain(..));
    let what = format!(
        "{dead} connections ended in the accept queue ahead of {live} logins, \
         max_connections {max_connections}: every login accepted"
    );
    abuse.finish(&what, 64);
}
