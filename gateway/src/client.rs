//! A blocking client for the TCP protocol: log in, send messages, receive typed
//! replies, and build orders from decimal prices and quantities using the instrument's
//! tick and lot (a price off the tick grid is refused here, before it is sent).
//!
//! ```no_run
//! use fincore_gateway::client::{Client, LoginOptions};
//! use fincore_engine::{AccountId, Side};
//! let mut client = Client::connect("127.0.0.1:7100", "alice", "alice-secret", LoginOptions::default())?;
//! let order = client.limit_order(AccountId(2), "BTC-USD", Side::Buy, "60000".parse()?, "0.01".parse()?, 1)?;
//! for reply in client.request(&order.into())? {
//!     println!("{:?}", reply.msg);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every command is answered by zero or more execution reports and no end marker, so
//! [`Client::request`] follows the message with a cheap query (a zero-level depth
//! query) and collects everything up to that query's answer: the engine answers in
//! sequence and the server delivers in order, so every report of the command has
//! arrived by then.

use crate::wire::{self, ClientMsg, Frame, Header, LoginAccepted, ServerMsg};
use fincore_engine::{
    AccountId, AssetId, ClientOrderId, Event, InstrumentId, InstrumentSpec, InstrumentStatus,
    NewOrder, OrderType, Price, Qty, Query, RejectReason, Side, StpMode, StpScope, Symbol,
    TimeInForce, units,
};
use rust_decimal::Decimal;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// What can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection failed. (Not the error's `source`: its text is already in this
    /// one's, and a report of the chain would print it twice.)
    #[error("connection: {0}")]
    Io(io::Error),
    /// Nothing arrived for this long: no answer, and not even the heartbeat a live
    /// server sends a logged-in session after `heartbeat_ms` of silence.
    #[error("no answer from the server in {} s", .0.as_secs())]
    Silent(Duration),
    /// The server refused the login.
    #[error("login refused: {}", login_refusal(*.0))]
    LoginRejected(u32),
    /// The server ended the session.
    #[error("session ended by the server: {}", wire::reason_name(*.0))]
    LoggedOut(u32),
    /// The connection closed without a logout notice.
    #[error("the server closed the connection")]
    Closed,
    /// The server sent something that is not valid protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A decimal price or quantity that does not fit the instrument.
    #[error("{0}: {1}")]
    Invalid(String, RejectReason),
    /// A symbol the server does not know.
    #[error("unknown {0}")]
    Unknown(String),
    /// A user name or secret longer than its login field: refused rather than cut
    /// short, which would log in with a different name or secret than the one given.
    #[error("the {0} is {1} bytes, more than the {2} a login carries")]
    TooLong(&'static str, usize, usize),
}

/// A login refusal's reason, and what to do about it where the name alone does not say.
fn login_refusal(reason: u32) -> String {
    let name = wire::reason_name(reason);
    if reason != wire::SessionReason::LoginThrottled.code() {
        return name;
    }
    // The refusal carries no more than its code (docs/PROTOCOL.md section 9), so the
    // lockout's length is the server's configuration, unknown here: cite the default.
    let lockout_ms = crate::config::SessionLimits::default().login_lockout_ms;
    format!(
        "{name}: too many failed logins; try again later (the lock lasts {lockout_ms} ms by \
         default)"
    )
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> ClientError {
        ClientError::Io(error)
    }
}

/// How long [`Client::recv`] waits for anything at all: three heartbeat intervals (a
/// live server heartbeats after one), and never less than this.
pub const SILENCE_MIN: Duration = Duration::from_secs(10);

/// Login options.
#[derive(Clone, Copy, Debug)]
pub struct LoginOptions {
    /// Heartbeat interval to ask for.
    pub heartbeat_ms: u32,
    /// Cancel the user's resting orders when this session ends.
    pub cancel_on_disconnect: bool,
}

impl Default for LoginOptions {
    fn default() -> LoginOptions {
        LoginOptions { heartbeat_ms: 5_000, cancel_on_disconnect: false }
    }
}

/// One message from the server with its outbound sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The session's outbound sequence number.
    pub seq: u64,
    /// The message.
    pub msg: ServerMsg,
}

impl Received {
    /// The engine event inside an execution report, if this is one.
    pub fn event(&self) -> Option<&Event> {
        match &self.msg {
            ServerMsg::ExecReport(report) => Some(&report.event),
            _ => None,
        }
    }
}

/// The server's assets and instruments, for decimal conversions.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    /// Assets: id, symbol, scale.
    pub assets: Vec<(AssetId, Symbol, u8)>,
    /// Instruments and their status.
    pub instruments: Vec<(InstrumentSpec, InstrumentStatus)>,
}

impl Reference {
    /// The instrument with this symbol.
    pub fn instrument(&self, symbol: &str) -> Result<&InstrumentSpec, ClientError> {
        self.instruments
            .iter()
            .map(|(spec, _)| spec)
            .find(|spec| spec.symbol.as_str() == symbol)
            .ok_or_else(|| ClientError::Unknown(format!("instrument {symbol}")))
    }

    /// The instrument with this id.
    pub fn instrument_by_id(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.instruments.iter().map(|(spec, _)| spec).find(|spec| spec.instrument == id)
    }

    /// The asset with this symbol.
    pub fn asset(&self, symbol: &str) -> Result<(AssetId, u8), ClientError> {
        self.assets
            .iter()
            .find(|(_, s, _)| s.as_str() == symbol)
            .map(|&(id, _, scale)| (id, scale))
            .ok_or_else(|| ClientError::Unknown(format!("asset {symbol}")))
    }

    /// The asset with this id: symbol and scale.
    pub fn asset_by_id(&self, id: AssetId) -> Option<(Symbol, u8)> {
        self.assets.iter().find(|(a, _, _)| *a == id).map(|&(_, symbol, scale)| (symbol, scale))
    }
}

/// A logged-in connection.
pub struct Client {
    /// The sending half (the stream, numbered and buffered output); reads use its
    /// stream too.
    out: ClientSender,
    input: Vec<u8>,
    session: LoginAccepted,
    heartbeat: Duration,
    last_send: Instant,
    reference: Option<Reference>,
}

impl Client {
    /// Connects and logs in.
    pub fn connect(
        addr: impl ToSocketAddrs,
        user: &str,
        secret: &str,
        options: LoginOptions,
    ) -> Result<Client, ClientError> {
        for (what, value, max) in
            [("user name", user, wire::USERNAME_LEN), ("secret", secret, wire::SECRET_LEN)]
        {
            if value.len() > max {
                return Err(ClientError::TooLong(what, value.len(), max));
            }
        }
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            out: ClientSender {
                stream,
                output: Vec::with_capacity(4096),
                next_request: 1,
                written: 0,
            },
            input: Vec::with_capacity(64 * 1024),
            session: LoginAccepted {
                session_id: 0,
                user: fincore_engine::UserId(0),
                admin: false,
                heartbeat_ms: options.heartbeat_ms,
                next_seq: 1,
            },
            heartbeat: Duration::from_millis(u64::from(options.heartbeat_ms.max(1))),
            last_send: Instant::now(),
            reference: None,
        };
        let login =
            wire::Login::new(user, secret, options.heartbeat_ms, options.cancel_on_disconnect);
        client.send(&ClientMsg::Login(login))?;
        match client.recv()?.msg {
            ServerMsg::LoginAccepted(accepted) => client.session = accepted,
            ServerMsg::LoginRejected(reason) => return Err(ClientError::LoginRejected(reason)),
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected a login reply, got message type {}",
                    other.msg_type()
                )));
            }
        }
        Ok(client)
    }

    /// The session the server granted.
    pub fn session(&self) -> &LoginAccepted {
        &self.session
    }

    /// Sends one message; returns its request id.
    pub fn send(&mut self, message: &ClientMsg) -> Result<u64, ClientError> {
        let request = self.queue(message);
        self.flush()?;
        Ok(request)
    }

    /// Adds a message to the output without sending it (see [`Client::flush`]); returns
    /// its request id. Queuing many and flushing once sends them in one write.
    pub fn queue(&mut self, message: &ClientMsg) -> u64 {
        self.out.queue(message)
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        if self.out.flush()? {
            self.last_send = Instant::now();
        }
        Ok(())
    }

    /// The next message if it has already arrived (never waits for the network).
    pub fn recv_buffered(&mut self) -> Result<Option<Received>, ClientError> {
        match self.take_frame()? {
            Some(Received { msg: ServerMsg::Logout(reason), .. }) => {
                Err(ClientError::LoggedOut(reason))
            }
            other => Ok(other),
        }
    }

    /// Sends raw bytes (for testing what the server does with bad input).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.out.stream.write_all(bytes)?;
        self.last_send = Instant::now();
        Ok(())
    }

    /// Waits for the next message (sending heartbeats while it waits). A logout notice
    /// is returned as [`ClientError::LoggedOut`]; silence for three heartbeat intervals
    /// (at least [`SILENCE_MIN`]) as [`ClientError::Silent`], so a server that accepted
    /// the connection but never answers (or something else on its port) cannot hang
    /// the client.
    pub fn recv(&mut self) -> Result<Received, ClientError> {
        let silence = (self.heartbeat * 3).max(SILENCE_MIN);
        self.recv_timeout(silence)?.ok_or(ClientError::Silent(silence))
    }

    /// Waits up to `timeout` for the next message.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Received>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(received) = self.take_frame()? {
                if let ServerMsg::Logout(reason) = received.msg {
                    return Err(ClientError::LoggedOut(reason));
                }
                return Ok(Some(received));
            }
            if self.last_send.elapsed() >= self.heartbeat / 2 && self.session.session_id != 0 {
                self.queue(&ClientMsg::Heartbeat);
                self.flush()?;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = (deadline - now).min(self.heartbeat / 2).max(Duration::from_millis(1));
            self.out.stream.set_read_timeout(Some(wait))?;
            let len = self.input.len();
            self.input.resize(len + 64 * 1024, 0);
            match self.out.stream.read(&mut self.input[len..]) {
                Ok(0) => {
                    self.input.truncate(len);
                    return Err(ClientError::Closed);
                }
                Ok(n) => self.input.truncate(len + n),
                Err(e) => {
                    self.input.truncate(len);
                    if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                        return Err(e.into());
                    }
                }
            }
        }
    }

    fn take_frame(&mut self) -> Result<Option<Received>, ClientError> {
        loop {
            match self.take_any_frame()? {
                // A message type this client does not know (a newer server): skipped,
                // as docs/PROTOCOL.md section 7 asks of clients.
                Some(Err(_)) => continue,
                Some(Ok(received)) => return Ok(Some(received)),
                None => return Ok(None),
            }
        }
    }

    /// The next whole frame: decoded, or the header of one whose type is unknown.
    #[allow(clippy::type_complexity)]
    fn take_any_frame(&mut self) -> Result<Option<Result<Received, Header>>, ClientError> {
        take_any_frame(&mut self.input)
    }

    /// Sends `message`, then a fence query, and returns everything received until the
    /// fence's answer (not included): all of the message's replies, plus anything else
    /// that arrived meanwhile (heartbeats excluded).
    pub fn request(&mut self, message: &ClientMsg) -> Result<Vec<Received>, ClientError> {
        // The message and its fence go out in one write.
        self.queue(message);
        let fence =
            self.queue(&ClientMsg::Query(Query::Depth { instrument: InstrumentId(0), levels: 0 }));
        self.flush()?;
        let mut replies = Vec::new();
        loop {
            let received = self.recv()?;
            match received.msg {
                ServerMsg::ExecReport(report) if report.request_id == fence => {
                    if matches!(report.event, Event::QueryDone { .. } | Event::Rejected(_)) {
                        return Ok(replies);
                    }
                }
                ServerMsg::Heartbeat => {}
                _ => replies.push(received),
            }
        }
    }

    /// Runs a query and returns its items (without the closing `QueryDone`); a rejected
    /// query returns the `Rejected` event as its only item.
    pub fn query(&mut self, query: Query) -> Result<Vec<Event>, ClientError> {
        let request = self.send(&ClientMsg::Query(query))?;
        let mut items = Vec::new();
        loop {
            let received = self.recv()?;
            let ServerMsg::ExecReport(report) = received.msg else { continue };
            if report.request_id != request {
                continue;
            }
            match report.event {
                Event::QueryDone { .. } => return Ok(items),
                Event::Rejected(_) => {
                    items.push(report.event);
                    return Ok(items);
                }
                event => items.push(event),
            }
        }
    }

    /// The server's assets and instruments (fetched once).
    pub fn reference(&mut self) -> Result<&Reference, ClientError> {
        if self.reference.is_none() {
            let mut reference = Reference::default();
            for event in self.query(Query::Reference)? {
                match event {
                    Event::AssetInfo { asset, symbol, scale } => {
                        reference.assets.push((asset, symbol, scale));
                    }
                    Event::InstrumentInfo { spec, status } => {
                        reference.instruments.push((spec, status));
                    }
                    Event::Rejected(rejected) => {
                        return Err(ClientError::Invalid(
                            "reference query".into(),
                            rejected.reason,
                        ));
                    }
                    _ => {}
                }
            }
            self.reference = Some(reference);
        }
        Ok(self.reference.as_ref().expect("just loaded"))
    }

    /// A GTC limit order from decimals, checked against the tick and lot.
    pub fn limit_order(
        &mut self,
        account: AccountId,
        symbol: &str,
        side: Side,
        price: Decimal,
        qty: Decimal,
        client_order_id: u64,
    ) -> Result<NewOrder, ClientError> {
        self.order(account, symbol, side, Some(price), qty, TimeInForce::Gtc, client_order_id)
    }

    /// An order from decimals: `price` None makes a market order (use IOC or FOK).
    #[allow(clippy::too_many_arguments)]
    pub fn order(
        &mut self,
        account: AccountId,
        symbol: &str,
        side: Side,
        price: Option<Decimal>,
        qty: Decimal,
        time_in_force: TimeInForce,
        client_order_id: u64,
    ) -> Result<NewOrder, ClientError> {
        let spec = *self.reference()?.instrument(symbol)?;
        let price = price.map(|price| self.ticks(&spec, price)).transpose()?;
        let qty = self.lots(&spec, qty)?;
        Ok(Client::order_in_units(&spec, account, side, price, qty, time_in_force, client_order_id))
    }

    /// [`Client::order`] with the price (`None`: a market order) and quantity already in
    /// ticks and lots of `spec`.
    pub fn order_in_units(
        spec: &InstrumentSpec,
        account: AccountId,
        side: Side,
        price: Option<Price>,
        qty: Qty,
        time_in_force: TimeInForce,
        client_order_id: u64,
    ) -> NewOrder {
        let (order_type, price) = match price {
            Some(price) => (OrderType::Limit, price),
            None => (OrderType::Market, Price(0)),
        };
        NewOrder {
            account,
            instrument: spec.instrument,
            client_order_id: ClientOrderId(client_order_id),
            side,
            order_type,
            time_in_force,
            price,
            qty,
            stp_mode: StpMode::CancelNewest,
            stp_scope: StpScope::Account,
            post_only: false,
        }
    }

    /// A decimal price in ticks of `spec`.
    pub fn ticks(&self, spec: &InstrumentSpec, price: Decimal) -> Result<Price, ClientError> {
        units::price_to_ticks(spec, price)
            .map_err(|reason| ClientError::Invalid(format!("price {price}"), reason))
    }

    /// A decimal quantity in lots of `spec`.
    pub fn lots(&self, spec: &InstrumentSpec, qty: Decimal) -> Result<Qty, ClientError> {
        units::qty_to_lots(spec, qty)
            .map_err(|reason| ClientError::Invalid(format!("quantity {qty}"), reason))
    }

    /// Splits the session into a sending half and a receiving half, for a sender and a
    /// receiver on two threads (a load generator that must send on schedule whatever
    /// arrives). Neither half sends heartbeats: log in with a heartbeat interval longer
    /// than the session's quiet periods. Bytes already received stay with the receiver.
    pub fn split(self) -> Result<(ClientSender, ClientReceiver), ClientError> {
        let reader = self.out.stream.try_clone()?;
        reader.set_read_timeout(None)?;
        let sender = self.out;
        let (input, end) = (with_room(&self.input), self.input.len());
        let receiver = ClientReceiver { stream: reader, input, start: 0, end };
        Ok((sender, receiver))
    }

    /// Logs out and waits for the server's notice.
    pub fn logout(mut self) -> Result<(), ClientError> {
        self.send(&ClientMsg::Logout)?;
        loop {
            match self.recv() {
                Err(ClientError::LoggedOut(_) | ClientError::Closed) => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
    }
}

/// The sending half of a split [`Client`].
pub struct ClientSender {
    stream: TcpStream,
    output: Vec<u8>,
    next_request: u64,
    /// Bytes of `output` already written by [`ClientSender::flush_some`].
    written: usize,
}

impl ClientSender {
    /// Adds a message to the output; returns its request id (see [`Client::queue`]).
    pub fn queue(&mut self, message: &ClientMsg) -> u64 {
        let request = self.next_request;
        self.next_request += 1;
        message.encode_into(request, &mut self.output);
        request
    }

    /// Sends everything queued and waits until it is written; true if there was
    /// something to send. For a blocking socket: on a non-blocking one use
    /// [`ClientSender::flush_some`].
    pub fn flush(&mut self) -> Result<bool, ClientError> {
        if self.output.len() == self.written {
            return Ok(false);
        }
        self.stream.write_all(&self.output[self.written..])?;
        self.output.clear();
        self.written = 0;
        Ok(true)
    }

    /// Sends what the socket takes now, keeping the rest queued: for a non-blocking
    /// socket (see [`ClientReceiver::set_nonblocking`]). True once nothing is left.
    pub fn flush_some(&mut self) -> Result<bool, ClientError> {
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
        } else if self.written > self.output.len() / 2 {
            // Compacted only when the written part is the larger: each byte moves at
            // most once on average, however far behind the socket is.
            self.output.drain(..self.written);
            self.written = 0;
        }
        Ok(self.output.is_empty())
    }
}

impl std::os::fd::AsRawFd for ClientSender {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.stream.as_raw_fd()
    }
}

/// The most one read of a [`ClientReceiver`] takes, in bytes.
const RECEIVE_BUFFER_LEN: usize = 64 * 1024;

/// A receive buffer holding `bytes` with room for one whole read after them.
fn with_room(bytes: &[u8]) -> Box<[u8]> {
    let mut buffer = vec![0; (bytes.len() + RECEIVE_BUFFER_LEN).next_power_of_two()];
    buffer[..bytes.len()].copy_from_slice(bytes);
    buffer.into()
}

/// The receiving half of a split [`Client`]. Built for throughput: frames are cut
/// from a read cursor, and reads land directly in the buffer they are decoded from,
/// after the unread part of the last read has moved to its front (less than a frame,
/// for a caller that takes every whole frame before reading again). Reading into a
/// scratch buffer and appending to the input cost a twentieth of the load tool's time
/// at saturation (BENCHMARKS.md, session 16).
pub struct ClientReceiver {
    stream: TcpStream,
    /// Read bytes in `start..end`, and room for the next read (`RECEIVE_BUFFER_LEN`)
    /// after them.
    input: Box<[u8]>,
    /// Where the unread bytes of `input` start.
    start: usize,
    /// Where they end.
    end: usize,
}

impl ClientReceiver {
    /// Waits for the next message. A logout notice is [`ClientError::LoggedOut`];
    /// messages of unknown types are skipped. For a blocking socket (on a non-blocking
    /// one it would spin: use [`ClientReceiver::try_recv`]).
    pub fn recv(&mut self) -> Result<Received, ClientError> {
        loop {
            if let Some(received) = self.try_recv()? {
                return Ok(received);
            }
        }
    }

    /// Makes the connection (both halves: they share the socket) non-blocking or
    /// blocking again. Non-blocking, [`ClientReceiver::try_recv`] and
    /// [`ClientSender::flush_some`] return instead of waiting, for a caller that runs
    /// many sessions from one event loop (register [`std::os::fd::AsRawFd`] with it).
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), ClientError> {
        Ok(self.stream.set_nonblocking(nonblocking)?)
    }

    /// The next message, reading as needed; `None` once a non-blocking socket has
    /// nothing more for now (a blocking one waits instead, as [`ClientReceiver::recv`]).
    /// An edge-triggered event loop calls it until `None`: the socket is then drained.
    pub fn try_recv(&mut self) -> Result<Option<Received>, ClientError> {
        loop {
            if let Some(received) = self.next_buffered()? {
                return Ok(Some(received));
            }
            if self.read_available()? == Arrival::Nothing {
                return Ok(None);
            }
        }
    }

    /// The next message among the bytes already read, without reading.
    pub fn next_buffered(&mut self) -> Result<Option<Received>, ClientError> {
        loop {
            let (frame, used) = decode_frame(&self.input[self.start..self.end])?;
            self.start += used;
            return match frame {
                Some(Ok(Received { msg: ServerMsg::Logout(reason), .. })) => {
                    Err(ClientError::LoggedOut(reason))
                }
                Some(Ok(received)) => Ok(Some(received)),
                Some(Err(_unknown)) => continue,
                None => Ok(None),
            };
        }
    }

    /// The next whole frame among the bytes already read, without reading and without
    /// decoding: its header and body, for a caller that decodes only what it needs
    /// (a logout notice is then the caller's to notice). A header that cannot be
    /// followed is an error, as for [`ClientReceiver::next_buffered`].
    pub fn next_raw(&mut self) -> Result<Option<(Header, &[u8])>, ClientError> {
        let Some((header, body)) = split_frame(&self.input[self.start..self.end])? else {
            return Ok(None);
        };
        let from = self.start + wire::HEADER_LEN;
        self.start = from + body.len();
        Ok(Some((header, &self.input[from..self.start])))
    }

    /// One read from the socket into the buffer (a blocking socket waits for bytes). A
    /// caller that timestamps messages takes the time after each read that brings some.
    pub fn read_available(&mut self) -> Result<Arrival, ClientError> {
        self.input.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        // A caller that takes every whole frame before reading again leaves less than
        // one, so the room is always there; one that does not makes the buffer grow.
        if self.input.len() - self.end < RECEIVE_BUFFER_LEN {
            self.input = with_room(&self.input[..self.end]);
        }
        loop {
            match self.stream.read(&mut self.input[self.end..self.end + RECEIVE_BUFFER_LEN]) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => {
                    self.end += n;
                    let full = n == RECEIVE_BUFFER_LEN;
                    return Ok(if full { Arrival::More } else { Arrival::Drained });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Arrival::Nothing),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// What one [`ClientReceiver::read_available`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// No bytes: the (non-blocking) socket had none.
    Nothing,
    /// Bytes that filled a whole read (64 KiB): more may be waiting.
    More,
    /// Bytes, fewer than a whole read takes: the socket had no more at that moment.
    /// On an edge-triggered poll, bytes that arrive later raise a new readiness event,
    /// so a caller may stop reading here, saving the read that would only say
    /// `WouldBlock`; unless the event said the peer closed (its end of file raises
    /// no new event, so read on until [`ClientError::Closed`]).
    Drained,
}

impl std::os::fd::AsRawFd for ClientReceiver {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.stream.as_raw_fd()
    }
}

impl std::os::fd::AsFd for ClientReceiver {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

/// The next whole frame of `input`: decoded, or the header of one whose type is
/// unknown; consumed from `input`.
#[allow(clippy::type_complexity)]
fn take_any_frame(input: &mut Vec<u8>) -> Result<Option<Result<Received, Header>>, ClientError> {
    let (frame, used) = decode_frame(input)?;
    input.drain(..used);
    Ok(frame)
}

/// The first whole frame of `input` (decoded, or the header of one whose type is
/// unknown) and the bytes it takes; `(None, 0)` if it is not all there yet.
#[allow(clippy::type_complexity)]
fn decode_frame(input: &[u8]) -> Result<(Option<Result<Received, Header>>, usize), ClientError> {
    let Some((header, body)) = split_frame(input)? else { return Ok((None, 0)) };
    let used = wire::HEADER_LEN + body.len();
    match ServerMsg::decode(header.msg_type, body) {
        Ok(msg) => Ok((Some(Ok(Received { seq: header.seq, msg })), used)),
        Err(wire::SessionReason::UnknownMessageType) => Ok((Some(Err(header)), used)),
        Err(reason) => Err(ClientError::Protocol(format!(
            "undecodable message type {}: {reason}",
            header.msg_type
        ))),
    }
}

/// The first whole frame of `input`, header and body, not decoded; `None` if it is not
/// all there yet. A header that cannot be followed ends the stream.
fn split_frame(input: &[u8]) -> Result<Option<(Header, &[u8])>, ClientError> {
    match wire::next_frame(input) {
        Frame::Incomplete => Ok(None),
        Frame::Fatal(header, reason) => {
            let Header { len, msg_type, version, .. } = header;
            Err(ClientError::Protocol(format!(
                "bad frame header (body length {len}, type {msg_type}, version {version}): \
                 {reason}"
            )))
        }
        Frame::Complete(header, body) => Ok(Some((header, body))),
    }
}
