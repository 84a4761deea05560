//! One client connection on the gateway thread: its socket, input and output buffers,
//! login state, outbound sequence, heartbeat clocks, rate limit and error budget. The
//! decisions about what a message means live in `server.rs`; this file only keeps the
//! per-connection state and moves bytes.

use crate::metrics::{DisconnectCause, Trace};
use crate::pipeline::{Inbound, InboundBody};
use crate::wire::{self, ServerMsg};
use fincore_engine::{InstrumentId, UserId};
use mio::net::TcpStream;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bytes read from a socket per `read` call, into the gateway's one read buffer.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// How far [`Conn::read`] reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Until {
    /// Until a read returns less than the buffer holds (or `WouldBlock`).
    ShortRead,
    /// Until the socket says `WouldBlock` or end of file.
    WouldBlock,
}
/// Input buffer capacity kept once the input is all handled: enough for a client
/// that pipelines a read's worth at a time. A larger one (after a bigger backlog) is
/// given back, so that an idle session holds no input memory.
const INPUT_KEPT_MAX: usize = 2 * READ_CHUNK;
/// Output buffer capacity kept once the output is all written. Far above what a
/// session's bursts of reports need; a buffer grown towards `outbound_buffer_max` by a
/// client that stopped reading for a while is given back once it has caught up.
const OUTPUT_KEPT_MAX: usize = 1 << 20;
/// Unprocessed input a connection may hold before the gateway stops reading it (the
/// rest waits in the kernel's socket buffer: TCP flow control slows the client).
pub(crate) const INPUT_HELD_MAX: usize = 256 * 1024;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connected, not logged in; must log in before the deadline.
    AwaitingLogin { deadline: Instant },
    /// Logged in.
    Active(Login),
    /// Finishing: flush what is queued, then close (at the latest at the deadline).
    Closing { deadline: Instant },
}

/// A logged-in session's identity and options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Login {
    pub user: UserId,
    pub role: fincore_engine::Role,
    pub heartbeat: Duration,
    pub cancel_on_disconnect: bool,
}

impl Login {
    /// True for the admin role.
    pub fn admin(&self) -> bool {
        self.role == fincore_engine::Role::Admin
    }

    /// True for roles whose commands act on other users' accounts (admin, payment
    /// operator): they see every event their own commands cause.
    pub fn sees_own_effects(&self) -> bool {
        self.role != fincore_engine::Role::Trader
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket { tokens: burst, rate: f64::from(rate), burst, last: now }
    }

    /// Gives back `tokens` (up to the bucket's size).
    pub(crate) fn refund(&mut self, tokens: u32) {
        self.tokens = (self.tokens + f64::from(tokens)).min(self.burst);
    }

    /// Takes `cost` tokens if there are that many.
    pub(crate) fn take(&mut self, cost: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let cost = f64::from(cost);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

/// One client connection.
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// `peer` as the journal's audit value, computed once.
    peer_code: u64,
    /// The server-wide session id.
    pub session_id: u32,
    pub phase: Phase,
    input: Vec<u8>,
    input_start: usize,
    output: Vec<u8>,
    output_start: usize,
    /// The sequence number of the next server message.
    pub next_seq: u64,
    pub last_recv: Instant,
    pub last_send: Instant,
    pub bucket: TokenBucket,
    /// Refused messages so far.
    pub errors: u32,
    /// Instruments subscribed to.
    pub subscriptions: Vec<InstrumentId>,
    /// Subscriptions whose depth snapshot is on its way, oldest first, and whether
    /// each is still wanted (an unsubscribe may come before its snapshot).
    pub pending_subscriptions: VecDeque<(InstrumentId, bool)>,
    /// Tokens each query on its way through the engine paid, oldest first: its answer
    /// settles the real cost (the server's `settle_query`). One entry per query in
    /// flight, so bounded by the backlog and the ring.
    pub query_costs: VecDeque<u32>,
    /// The client asked to log out (or closed its side): the notice goes once everything
    /// it sent before is answered, or at this deadline. No heartbeat timeout meanwhile.
    pub logout_deadline: Option<Instant>,
    /// The session has left the routing tables (it is closing or closed).
    pub left: bool,
    /// Why the connection is ending, once known (the first cause wins; none by the
    /// close: the peer closed it). For the disconnect metrics.
    pub close_cause: Option<DisconnectCause>,
    /// Reading stopped because the gateway's backlog or this input buffer was full.
    pub read_paused: bool,
    /// The peer closed its side, or the socket failed.
    pub eof: bool,
}

impl Conn {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        session_id: u32,
        now: Instant,
        login_timeout: Duration,
        bucket: TokenBucket,
    ) -> Conn {
        Conn {
            stream,
            peer,
            peer_code: peer_code(&peer),
            session_id,
            phase: Phase::AwaitingLogin { deadline: now + login_timeout },
            input: Vec::new(),
            input_start: 0,
            output: Vec::with_capacity(4096),
            output_start: 0,
            next_seq: 1,
            last_recv: now,
            last_send: now,
            bucket,
            errors: 0,
            subscriptions: Vec::new(),
            pending_subscriptions: VecDeque::new(),
            query_costs: VecDeque::new(),
            logout_deadline: None,
            left: false,
            close_cause: None,
            read_paused: false,
            eof: false,
        }
    }

    /// A request from this session for the engine thread.
    pub(crate) fn inbound(
        &self,
        user: UserId,
        request_id: u64,
        time_ns: u64,
        body: InboundBody,
    ) -> Inbound {
        let (session, peer) = (self.session_id, self.peer_code);
        Inbound { session, user, request_id, time_ns, peer, body, trace: Trace::NONE }
    }

    /// The logged-in identity, if any.
    pub(crate) fn login(&self) -> Option<Login> {
        match self.phase {
            Phase::Active(login) => Some(login),
            _ => None,
        }
    }

    /// Reads what the socket has, up to the input bound, through `chunk` (the gateway's
    /// one read buffer: the connection's own buffer grows only by what arrives, and no
    /// read has to zero a fresh chunk first). Returns false if reading stopped at the
    /// bound (more may be waiting).
    ///
    /// Reading is `Until::ShortRead` after a plain readiness event: a read that does
    /// not fill `chunk` took everything the socket held, and bytes arriving after it
    /// raise a new (edge-triggered) event, so the read that would only say
    /// `WouldBlock` is skipped (one system call in three at 100 k commands/s).
    /// `Until::WouldBlock` when the peer closed (its end of file raises no new event)
    /// or when resuming a paused read. (A client sending TCP urgent data makes a read
    /// stop short at the urgent mark; what follows then waits for its next bytes.)
    pub(crate) fn read(&mut self, chunk: &mut [u8], until: Until) -> bool {
        assert!(!chunk.is_empty(), "a read buffer");
        loop {
            if self.held_input() >= INPUT_HELD_MAX {
                return false;
            }
            match self.stream.read(chunk) {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(n) => {
                    self.compact_input();
                    self.input.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() && until == Until::ShortRead {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    return true;
                }
            }
        }
    }

    fn held_input(&self) -> usize {
        self.input.len() - self.input_start
    }

    fn compact_input(&mut self) {
        if self.input_start > 0 && self.input_start * 2 >= self.input.len() {
            self.input.drain(..self.input_start);
            self.input_start = 0;
        }
    }

    /// The unprocessed input.
    pub(crate) fn input(&self) -> &[u8] {
        &self.input[self.input_start..]
    }

    /// Marks `n` bytes of input processed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.input_start += n;
        if self.input_start == self.input.len() {
            self.discard_input();
        }
    }

    /// Drops all unprocessed input (the connection is closing).
    pub(crate) fn discard_input(&mut self) {
        self.input.clear();
        self.input_start = 0;
        if self.input.capacity() > INPUT_KEPT_MAX {
            self.input = Vec::new();
        }
    }

    /// Queues one message. Returns false if the output is now over `bound` bytes (a
    /// slow consumer).
    pub(crate) fn send(&mut self, message: &ServerMsg, bound: usize, now: Instant) -> bool {
        message.encode_into(self.next_seq, &mut self.output);
        self.next_seq += 1;
        self.last_send = now;
        self.queued_output() <= bound
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued_output(&self) -> usize {
        self.output.len() - self.output_start
    }

    /// Writes queued output until done or the socket is full.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while self.output_start < self.output.len() {
            match self.stream.write(&self.output[self.output_start..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.output_start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.output_start == self.output.len() {
            self.output.clear();
            self.output_start = 0;
            if self.output.capacity() > OUTPUT_KEPT_MAX {
                self.output = Vec::new();
            }
        } else if self.output_start > self.output.len() / 2 {
            self.output.drain(..self.output_start);
            self.output_start = 0;
        }
        Ok(())
    }
}

/// The audit value the journal stores for a peer: IPv4 address and port packed as
/// `ip << 16 | port`; IPv6 addresses folded to 48 bits the same way.
fn peer_code(peer: &SocketAddr) -> u64 {
    let ip = match peer.ip() {
        std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            ((bits >> 64) as u64 ^ bits as u64) & 0xffff_ffff_ffff
        }
    };
    ip << 16 | u64::from(peer.port())
}

/// A frame's body must fit the limit the header check enforces.
const _: () = assert!(wire::BODY_LEN_MAX as usize <= INPUT_HELD_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_gives_tokens_back_up_to_the_bucket_size() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0, 10, t0);
        assert!(bucket.take(8, t0));
        assert!(!bucket.take(8, t0), "2 left");
        bucket.refund(6);
        assert!(bucket.take(8, t0), "8 after the refund");
        bucket.refund(1_000);
        assert!(bucket.take(10, t0), "full, not more");
        assert!(!bucket.take(1, t0));
    }
}
