//! Starting a server for a test: the demo configuration on an ephemeral port of
//! 127.0.0.1, data in a temporary directory.
#![allow(dead_code)]

use fincore_engine::{
    AccountId, AssetId, BalanceChanged, ClientOrderId, ClientPaymentId, Dec, Event, InstrumentId,
    InstrumentSpec, LevelChanged, NewOrder, OrderInfo, OrderType, PaymentAction, PaymentInfo,
    Price, Qty, Query, Side, StpMode, StpScope, Symbol, TimeInForce,
};
use fincore_gateway::client::Received;
use fincore_gateway::client::{Client, LoginOptions};
use fincore_gateway::config::ServerConfig;
use fincore_gateway::server::Started;
use fincore_gateway::server::{self, ServerHandle, ServerOptions};
use fincore_gateway::wire::{self, ClientMsg, ExternalPayment, Frame, LoginAccepted, ServerMsg};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The demo configuration, listening on an ephemeral port, with data in `dir`.
pub fn config(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::demo();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.to_path_buf();
    config
}

/// Starts `config`.
pub fn start(config: &ServerConfig) -> ServerHandle {
    server::start(config, ServerOptions::default()).expect("server starts").0
}

/// Logs in as a demo user (secret `<name>-secret`).
pub fn login(addr: SocketAddr, user: &str) -> Client {
    Client::connect(addr, user, &format!("{user}-secret"), LoginOptions::default())
        .unwrap_or_else(|e| panic!("{user} logs in: {e}"))
}

// ---------------------------------------------------------------------------------
// Helpers of the TCP integration tests (`tcp_*.rs`). Every wait is bounded by [`WAIT`]
// and panics when it runs out, so a missing reply fails the test instead of hanging it.
// ---------------------------------------------------------------------------------

/// The longest any test waits for one expected message.
pub const WAIT: Duration = Duration::from_secs(5);

/// The demo's instruments.
pub const BTC_USD: InstrumentId = InstrumentId(0);
/// The demo's second instrument.
pub const ETH_USD: InstrumentId = InstrumentId(1);
/// Asset ids of the demo.
pub const USD: fincore_engine::AssetId = fincore_engine::AssetId(0);
/// Bitcoin, 8 decimals.
pub const BTC: fincore_engine::AssetId = fincore_engine::AssetId(1);
/// Ether, 8 decimals.
pub const ETH: fincore_engine::AssetId = fincore_engine::AssetId(2);
/// Every demo trader's setup deposit, minor units: 1 000 000 USD, 100 BTC, 1 000 ETH.
pub const USD_0: i64 = 1_000_000 * 1_000_000;
/// 100 BTC in satoshi.
pub const BTC_0: i64 = 100 * 100_000_000;
/// 1 000 ETH in minor units.
pub const ETH_0: i64 = 1_000 * 100_000_000;
/// Journal sequence after the demo setup (65 commands: 3 assets, 13 users, 12
/// accounts, 2 instruments, 33 deposits, USD's payment limits, carol's credit limit).
pub const SETUP_SEQ: u64 = 65;
/// Payments the demo setup records (its 33 deposits): the first payment made over TCP
/// gets id `SETUP_PAYMENTS + 1`.
pub const SETUP_PAYMENTS: u64 = 33;
/// The demo's USD `transfer_max` (250 000 USD) in minor units.
pub const USD_TRANSFER_MAX: i64 = 250_000 * 1_000_000;
/// The demo's USD `daily_outgoing_max` (1 000 000 USD) in minor units.
pub const USD_DAILY_MAX: i64 = 1_000_000 * 1_000_000;
/// Carol's (account 4) USD credit limit in the demo (5 000 USD) in minor units.
pub const CAROL_USD_CREDIT: i64 = 5_000 * 1_000_000;

/// Starts `config` and returns the start report too.
pub fn start_full(config: &ServerConfig) -> (ServerHandle, Started) {
    server::start(config, ServerOptions::default()).expect("server starts")
}

/// Logs in as a demo user with options.
pub fn login_with(addr: SocketAddr, user: &str, options: LoginOptions) -> Client {
    Client::connect(addr, user, &format!("{user}-secret"), options)
        .unwrap_or_else(|e| panic!("{user} logs in: {e}"))
}

/// The next message other than a heartbeat, within [`WAIT`].
pub fn next(client: &mut Client) -> Received {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no message within {WAIT:?}");
        match client.recv_timeout(left) {
            Ok(Some(Received { msg: ServerMsg::Heartbeat, .. })) | Ok(None) => {}
            Ok(Some(received)) => return received,
            Err(e) => panic!("waiting for a message: {e}"),
        }
    }
}

/// Sends `message` then a fence query; returns everything (heartbeats excluded) that
/// arrived before the fence's answer. Like `Client::request`, bounded by [`WAIT`].
pub fn request(client: &mut Client, message: &ClientMsg) -> (u64, Vec<Received>) {
    let id = client.send(message).expect("send");
    (id, fence(client))
}

/// Sends a fence (a zero-level depth query) and returns what arrived before its answer.
pub fn fence(client: &mut Client) -> Vec<Received> {
    let fence = client
        .send(&ClientMsg::Query(Query::Depth { instrument: BTC_USD, levels: 0 }))
        .expect("send fence");
    let mut replies = Vec::new();
    loop {
        let received = next(client);
        match received.msg {
            ServerMsg::ExecReport(report) if report.request_id == fence => {
                assert_eq!(report.event, Event::QueryDone { items: 0 }, "fence answer");
                return replies;
            }
            _ => replies.push(received),
        }
    }
}

/// The events of execution reports, in order, with their request ids.
pub fn events(replies: &[Received]) -> Vec<(u64, Event)> {
    replies
        .iter()
        .map(|r| match r.msg {
            ServerMsg::ExecReport(report) => (report.request_id, report.event),
            other => panic!("expected only execution reports, got {other:?}"),
        })
        .collect()
}

/// Runs a query (bounded by [`WAIT`]) and returns its items, or the `Rejected` event as
/// the only item.
pub fn query(client: &mut Client, query: Query) -> Vec<Event> {
    let id = client.send(&ClientMsg::Query(query)).expect("send query");
    let mut items = Vec::new();
    loop {
        let received = next(client);
        let ServerMsg::ExecReport(report) = received.msg else { continue };
        if report.request_id != id {
            continue;
        }
        match report.event {
            Event::QueryDone { items: n } => {
                assert_eq!(n as usize, items.len(), "QueryDone counts the items");
                return items;
            }
            Event::Rejected(_) => {
                items.push(report.event);
                return items;
            }
            event => items.push(event),
        }
    }
}

/// An account's balances: `[(available, held)]` indexed by asset id (USD, BTC, ETH),
/// for an account with no pending authorization (asserted).
pub fn balances(client: &mut Client, account: AccountId) -> Vec<(i64, i64)> {
    payment_balances(client, account)
        .into_iter()
        .map(|(available, held, pending)| {
            assert_eq!(pending, 0, "{account:?} has no pending authorization");
            (available, held)
        })
        .collect()
}

/// An account's balances: `[(available, held, pending)]` indexed by asset id.
pub fn payment_balances(client: &mut Client, account: AccountId) -> Vec<(i64, i64, i64)> {
    query(client, Query::Balances { account })
        .into_iter()
        .enumerate()
        .map(|(i, e)| match e {
            Event::BalanceInfo(BalanceChanged { account: a, asset, available, held, pending })
                if a == account && usize::from(asset.0) == i =>
            {
                (available, held, pending)
            }
            other => panic!("balances of {account:?}: unexpected {other:?}"),
        })
        .collect()
}

/// A `Balance` event with nothing pending.
pub fn balance(account: AccountId, asset: AssetId, available: i64, held: i64) -> Event {
    Event::Balance(BalanceChanged { account, asset, available, held, pending: 0 })
}

/// Wall-clock time in nanoseconds since the Unix epoch: the clock the server stamps
/// commands with, so the engine time of a command sent after `now_ns()` is at least it.
pub fn now_ns() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970");
    u64::try_from(since_epoch.as_nanos()).expect("before 2554")
}

/// The action and payment of a `Payment` event (panics on any other event).
pub fn payment_of(event: &Event) -> (PaymentAction, PaymentInfo) {
    match event {
        Event::Payment { action, info } => (*action, *info),
        other => panic!("expected a Payment event, got {other:?}"),
    }
}

/// The engine time at which the payment of a `Payment` event was created, checked to be
/// a server stamp taken between `since` and now.
pub fn created_at(event: &Event, since: u64) -> u64 {
    let (_, info) = payment_of(event);
    let now = now_ns();
    assert!(
        (since..=now).contains(&info.created_ns),
        "created at {} (engine time), not within {since}..={now}: {info:?}",
        info.created_ns
    );
    info.created_ns
}

/// A deposit (or, for `ClientMsg::Withdraw`, withdrawal) body.
pub fn external(account: AccountId, asset: AssetId, amount: i64, id: u64) -> ExternalPayment {
    ExternalPayment { account, asset, amount, client_payment_id: ClientPaymentId(id) }
}

/// An account's live orders.
pub fn open_orders(client: &mut Client, account: AccountId) -> Vec<OrderInfo> {
    query(client, Query::OpenOrders { account })
        .into_iter()
        .map(|e| match e {
            Event::OrderInfo(info) => info,
            other => panic!("open orders of {account:?}: unexpected {other:?}"),
        })
        .collect()
}

/// An instrument's whole depth (both sides).
pub fn depth(client: &mut Client, instrument: InstrumentId) -> Vec<LevelChanged> {
    query(client, Query::Depth { instrument, levels: 1_000 })
        .into_iter()
        .map(|e| match e {
            Event::DepthLevel(level) => level,
            other => panic!("depth of {instrument:?}: unexpected {other:?}"),
        })
        .collect()
}

/// A GTC limit order in ticks and lots (STP cancel-newest by account, not post-only).
pub fn limit(
    account: u32,
    instrument: InstrumentId,
    side: Side,
    price: i64,
    qty: i64,
    client_order_id: u64,
) -> NewOrder {
    NewOrder {
        account: AccountId(account),
        instrument,
        client_order_id: ClientOrderId(client_order_id),
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtc,
        price: Price(price),
        qty: Qty(qty),
        stp_mode: StpMode::CancelNewest,
        stp_scope: StpScope::Account,
        post_only: false,
    }
}

/// Builds one frame by hand (for malformed input).
pub fn raw_frame(msg_type: u16, version: u8, flags: u8, seq: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire::HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&msg_type.to_le_bytes());
    out.push(version);
    out.push(flags);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a client message as the client would encode it.
pub fn body_of(message: &ClientMsg) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode_into(0, &mut out);
    out.split_off(wire::HEADER_LEN)
}

/// What a raw connection read next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A whole message (Logout notices included: nothing is turned into an error).
    Msg(Received),
    /// The server closed the connection (end of stream or reset).
    Closed,
}

/// A connection driven byte by byte: no automatic heartbeats, no login, every frame
/// returned as is. For the session rules the blocking client hides.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    input: Vec<u8>,
    next_request: u64,
    closed: bool,
}

impl Raw {
    /// Connects without logging in.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Raw { stream, input: Vec::new(), next_request: 1, closed: false }
    }

    /// Connects and logs in as a demo user; returns the LoginAccepted and its sequence.
    pub fn login(
        addr: SocketAddr,
        user: &str,
        heartbeat_ms: u32,
        cancel_on_disconnect: bool,
    ) -> (Raw, u64, LoginAccepted) {
        let mut raw = Raw::connect(addr);
        let secret = format!("{user}-secret");
        let login = wire::Login::new(user, &secret, heartbeat_ms, cancel_on_disconnect);
        raw.send(&ClientMsg::Login(login));
        match raw.recv() {
            Incoming::Msg(Received { seq, msg: ServerMsg::LoginAccepted(accepted) }) => {
                (raw, seq, accepted)
            }
            other => panic!("{user} logs in: {other:?}"),
        }
    }

    /// Sends a message with the next request id; returns that id.
    pub fn send(&mut self, message: &ClientMsg) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        self.send_as(message, id);
        id
    }

    /// Sends a message with a chosen request id.
    pub fn send_as(&mut self, message: &ClientMsg, request_id: u64) {
        let mut out = Vec::new();
        message.encode_into(request_id, &mut out);
        self.write(&out);
    }

    /// Sends raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Stops sending (half-close): the server sees the end of the stream.
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// The next message or the end of the connection, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Incoming> {
        let deadline = Instant::now() + timeout;
        loop {
            match wire::next_frame(&self.input) {
                Frame::Complete(header, body) => {
                    let msg = ServerMsg::decode(header.msg_type, body)
                        .unwrap_or_else(|r| panic!("undecodable server message {header:?}: {r}"));
                    let used = wire::HEADER_LEN + body.len();
                    self.input.drain(..used);
                    return Some(Incoming::Msg(Received { seq: header.seq, msg }));
                }
                Frame::Fatal(header, reason) => panic!("bad server frame {header:?}: {reason}"),
                Frame::Incomplete => {}
            }
            if self.closed {
                return Some(Incoming::Closed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Reset or aborted: the server closed with our bytes unread.
                Err(_) => self.closed = true,
            }
        }
    }

    /// The next message or the end of the connection, within [`WAIT`].
    pub fn recv(&mut self) -> Incoming {
        self.recv_timeout(WAIT).unwrap_or_else(|| panic!("nothing from the server in {WAIT:?}"))
    }

    /// The next message, which must not be the end of the connection.
    pub fn expect(&mut self) -> Received {
        match self.recv() {
            Incoming::Msg(received) => received,
            Incoming::Closed => panic!("the server closed the connection"),
        }
    }

    /// The next message other than a heartbeat.
    pub fn expect_not_heartbeat(&mut self) -> Received {
        loop {
            let received = self.expect();
            if received.msg != ServerMsg::Heartbeat {
                return received;
            }
        }
    }

    /// Asserts that the server closes the connection next, with nothing more to say.
    pub fn expect_closed(&mut self) {
        match self.recv() {
            Incoming::Closed => {}
            Incoming::Msg(received) => panic!("expected the connection to close, got {received:?}"),
        }
    }

    /// Bytes received but not yet a whole frame (after the end of the connection: a
    /// frame cut short).
    pub fn leftover(&self) -> usize {
        self.input.len()
    }

    /// Every byte until the server closes the connection (within [`WAIT`]).
    pub fn bytes_until_closed(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut all = std::mem::take(&mut self.input);
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the server did not close the connection in {WAIT:?}");
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
        all
    }
}

/// Asserts that outbound sequence numbers run `first, first + 1, ...` without a gap.
pub fn assert_gap_free(received: &[Received], first: u64) {
    for (i, r) in received.iter().enumerate() {
        assert_eq!(r.seq, first + i as u64, "outbound sequence gap at message {i}: {r:?}");
    }
}

/// The journal sequence of the last command the engine has applied, as a zero-level
/// depth query's answer reports it.
pub fn applied_seq(client: &mut Client) -> u64 {
    let id = client
        .send(&ClientMsg::Query(Query::Depth { instrument: BTC_USD, levels: 0 }))
        .expect("send");
    loop {
        if let ServerMsg::ExecReport(report) = next(client).msg
            && report.request_id == id
        {
            assert_eq!(report.event, Event::QueryDone { items: 0 });
            return report.journal_seq;
        }
    }
}

/// Sends `message` and returns the events of everything it caused on this session, all
/// of which must be execution reports carrying its request id.
pub fn command(client: &mut Client, message: ClientMsg) -> Vec<Event> {
    let (id, replies) = request(client, &message);
    events(&replies)
        .into_iter()
        .map(|(request_id, event)| {
            assert_eq!(request_id, id, "reply to request {id}: {event:?}");
            event
        })
        .collect()
}

/// The events other sessions' commands delivered to this one (request id 0) so far.
pub fn unsolicited(client: &mut Client) -> Vec<Event> {
    events(&fence(client))
        .into_iter()
        .map(|(request_id, event)| {
            assert_eq!(request_id, 0, "caused by another session: {event:?}");
            event
        })
        .collect()
}

/// The demo configuration's BTC-USD definition, as the engine holds it.
pub fn btc_usd_spec() -> InstrumentSpec {
    InstrumentSpec {
        instrument: InstrumentId(0),
        symbol: Symbol::new("BTC-USD").unwrap(),
        base: AssetId(1),
        quote: AssetId(0),
        tick_size: Dec { mantissa: 1, scale: 2 },
        lot_size: Dec { mantissa: 1, scale: 4 },
        reference_price: Price(6_000_000),
        band_bps: 1_000,
        qty_max: Qty(1_000_000),
        notional_max: 10_000_000_000_000,
        maker_fee_bps: 1,
        taker_fee_bps: 5,
        fee_account: AccountId(1),
    }
}
