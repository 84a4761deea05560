//! The TCP protocol: frames, the messages in them, and the session-level reason codes.
//! `docs/PROTOCOL.md` (sections 7-10) documents every byte; `gateway/tests/wire_golden.rs`
//! pins the layouts and checks the document's hex examples.
//!
//! A frame is a 16-byte header followed by a body of `len` bytes:
//!
//! | offset | field | type | meaning |
//! |---|---|---|---|
//! | 0 | `len` | u32 | body length in bytes (not counting the header), at most [`BODY_LEN_MAX`] |
//! | 4 | `type` | u16 | message type ([`msg`]) |
//! | 6 | `version` | u8 | [`VERSION`] |
//! | 7 | `flags` | u8 | 0 |
//! | 8 | `seq` | u64 | server to client: the session's outbound sequence number (1, 2, ...); client to server: the client's request id, echoed in replies |
//!
//! Bodies use the same bincode fixed-width layout as the engine's messages
//! (`docs/PROTOCOL.md` section 1); several bodies *are* engine messages (a new order, a
//! query, the event inside an execution report).

use fincore_engine::{
    AccountId, AccountStatus, Amend, AssetId, Authorize, ClientPaymentId, Event, InstrumentId,
    InstrumentStatus, NewOrder, OrderRef, PaymentRef, Price, Qty, Query, RejectReason, Role, Side,
    TradeId, Transfer, UserId,
};
use wincode::{SchemaRead, SchemaWrite};

/// Length of the frame header.
pub const HEADER_LEN: usize = 16;
/// The protocol version this server speaks.
pub const VERSION: u8 = 1;
/// The largest body either side may send. A header announcing more is a protocol error
/// that closes the connection (the stream cannot be trusted to resynchronise).
pub const BODY_LEN_MAX: u32 = 1024;
/// Longest user name in a login, bytes.
pub const USERNAME_LEN: usize = 32;
/// Longest secret in a login, bytes.
pub const SECRET_LEN: usize = 64;

/// Message type numbers (the header's `type`).
pub mod msg {
    /// Client: log in.
    pub const LOGIN: u16 = 1;
    /// Either side: nothing else to say.
    pub const HEARTBEAT: u16 = 2;
    /// Client: end the session.
    pub const LOGOUT: u16 = 3;
    /// Client: new order.
    pub const NEW_ORDER: u16 = 10;
    /// Client: cancel one order.
    pub const CANCEL: u16 = 11;
    /// Client: amend one order.
    pub const AMEND: u16 = 12;
    /// Client: cancel an account's orders.
    pub const MASS_CANCEL: u16 = 13;
    /// Admin: create an account.
    pub const CREATE_ACCOUNT: u16 = 20;
    /// Admin or payment operator: deposit.
    pub const DEPOSIT: u16 = 21;
    /// Admin or payment operator: withdraw.
    pub const WITHDRAW: u16 = 22;
    /// Admin: freeze / unfreeze / close an account.
    pub const SET_ACCOUNT_STATUS: u16 = 23;
    /// Admin: halt / resume an instrument.
    pub const SET_INSTRUMENT_STATUS: u16 = 24;
    /// Admin: write a snapshot now.
    pub const TAKE_SNAPSHOT: u16 = 25;
    /// Admin: an asset's payment limits.
    pub const SET_PAYMENT_LIMITS: u16 = 26;
    /// Admin: an account's credit and velocity limits in one asset.
    pub const SET_ACCOUNT_LIMITS: u16 = 27;
    /// Admin: put an account on or off the compliance deny-list.
    pub const SET_ACCOUNT_BLOCKED: u16 = 28;
    /// Client: a query (balances, order, open orders, depth).
    pub const QUERY: u16 = 30;
    /// Client: subscribe to an instrument's market data.
    pub const SUBSCRIBE: u16 = 40;
    /// Client: unsubscribe.
    pub const UNSUBSCRIBE: u16 = 41;
    /// Client: transfer between accounts.
    pub const TRANSFER: u16 = 50;
    /// Client: authorize (hold) a payment.
    pub const AUTHORIZE: u16 = 51;
    /// Client: capture an authorization.
    pub const CAPTURE: u16 = 52;
    /// Client: void an authorization.
    pub const VOID: u16 = 53;

    /// Server: login accepted.
    pub const LOGIN_ACCEPTED: u16 = 101;
    /// Server: login refused; the connection closes.
    pub const LOGIN_REJECTED: u16 = 102;
    /// Server: the session ends (reason inside); the connection closes.
    pub const LOGOUT_NOTICE: u16 = 104;
    /// Server: a client message was refused before reaching the engine.
    pub const SESSION_REJECT: u16 = 105;
    /// Server: one engine event concerning this session.
    pub const EXEC_REPORT: u16 = 110;
    /// Server: a snapshot was written.
    pub const SNAPSHOT_TAKEN: u16 = 111;
    /// Server: one level of a market-data depth snapshot.
    pub const MD_SNAPSHOT_LEVEL: u16 = 120;
    /// Server: end of a depth snapshot; updates follow.
    pub const MD_SNAPSHOT_END: u16 = 121;
    /// Server: a trade.
    pub const MD_TRADE: u16 = 122;
    /// Server: a price level changed.
    pub const MD_LEVEL: u16 = 123;
    /// Server: no more market data for this instrument.
    pub const MD_UNSUBSCRIBED: u16 = 124;
}

/// Why the server refused a message or ended a session. Codes 900-999 belong to the
/// session layer; every other number is one of the engine's reject codes
/// ([`RejectReason`]: 100-899 and 1000 up), used where the gateway applies the same rule
/// (101 `NotAdmin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SessionReason {
    /// Logout notice only: the client asked to log out.
    ClientLogout = 0,
    /// An admin message from a session whose user is not an admin.
    NotAdmin = 101,
    /// The body does not decode as its type (wrong length, bad enum tag, bad bool) or
    /// the header's flags are not zero.
    MalformedFrame = 900,
    /// The header announces a body longer than [`BODY_LEN_MAX`]. Closes the connection.
    FrameTooLong = 901,
    /// No message has this type (or it is a server-to-client type).
    UnknownMessageType = 902,
    /// The header's version is not [`VERSION`]. Closes the connection.
    UnsupportedVersion = 903,
    /// Only `Login` and `Heartbeat` are accepted before a login succeeds.
    NotLoggedIn = 904,
    /// A second `Login` on a logged-in session.
    AlreadyLoggedIn = 905,
    /// Unknown user or wrong secret (the two are not distinguished).
    LoginFailed = 906,
    /// The requested heartbeat interval is outside the server's bounds.
    InvalidHeartbeat = 907,
    /// The session's message rate is over its limit; the message was dropped.
    RateLimited = 908,
    /// The server is at its connection limit. Closes the connection.
    TooManyConnections = 909,
    /// The session's unsent output passed its bound (the client stopped reading).
    SlowConsumer = 911,
    /// Nothing arrived from the client for three heartbeat intervals.
    HeartbeatTimeout = 912,
    /// No login within the login timeout.
    LoginTimeout = 913,
    /// Too many refused messages; the connection closes.
    TooManyErrors = 914,
    /// The server is shutting down.
    ServerShutdown = 915,
    /// The server could not journal the command (e.g. disk full); nothing was applied
    /// and the server stops accepting commands.
    JournalFailure = 916,
    /// A snapshot could not be written.
    SnapshotFailed = 917,
    /// Too many failed logins for this user name or from this address: the login was
    /// refused without its secret being checked. Closes the connection.
    LoginThrottled = 918,
}

impl SessionReason {
    /// Every reason, in code order.
    pub const ALL: [SessionReason; 20] = [
        SessionReason::ClientLogout,
        SessionReason::NotAdmin,
        SessionReason::MalformedFrame,
        SessionReason::FrameTooLong,
        SessionReason::UnknownMessageType,
        SessionReason::UnsupportedVersion,
        SessionReason::NotLoggedIn,
        SessionReason::AlreadyLoggedIn,
        SessionReason::LoginFailed,
        SessionReason::InvalidHeartbeat,
        SessionReason::RateLimited,
        SessionReason::TooManyConnections,
        SessionReason::SlowConsumer,
        SessionReason::HeartbeatTimeout,
        SessionReason::LoginTimeout,
        SessionReason::TooManyErrors,
        SessionReason::ServerShutdown,
        SessionReason::JournalFailure,
        SessionReason::SnapshotFailed,
        SessionReason::LoginThrottled,
    ];

    /// The number on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The reason with this code.
    pub fn from_code(code: u32) -> Option<SessionReason> {
        SessionReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for SessionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

/// The name of any reason code on the wire: a session reason or an engine reject.
pub fn reason_name(code: u32) -> String {
    if let Some(reason) = SessionReason::from_code(code) {
        return reason.to_string();
    }
    match u16::try_from(code).ok().and_then(RejectReason::from_code) {
        Some(reason) => format!("{reason:?} ({code})"),
        None => format!("unknown reason ({code})"),
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Body length.
    pub len: u32,
    /// Message type.
    pub msg_type: u16,
    /// Protocol version.
    pub version: u8,
    /// Flags (0).
    pub flags: u8,
    /// Outbound sequence (server) or request id (client).
    pub seq: u64,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes, if there are that many.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let bytes: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            len: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            msg_type: u16::from_le_bytes([bytes[4], bytes[5]]),
            version: bytes[6],
            flags: bytes[7],
            seq: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
        })
    }

    fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.len.to_le_bytes());
        out[4..6].copy_from_slice(&self.msg_type.to_le_bytes());
        out[6] = self.version;
        out[7] = self.flags;
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
    }

    /// A header the receiver cannot continue after: the connection must close.
    pub fn fatal_problem(&self) -> Option<SessionReason> {
        if self.version != VERSION {
            Some(SessionReason::UnsupportedVersion)
        } else if self.len > BODY_LEN_MAX {
            Some(SessionReason::FrameTooLong)
        } else {
            None
        }
    }
}

/// Login body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Login {
    /// User name, ASCII, zero-padded.
    pub username: [u8; USERNAME_LEN],
    /// Secret, zero-padded.
    pub secret: [u8; SECRET_LEN],
    /// Heartbeat interval the client asks for, milliseconds.
    pub heartbeat_ms: u32,
    /// Cancel all of this user's resting orders when this session ends.
    pub cancel_on_disconnect: bool,
}

impl Login {
    /// A login for `username` / `secret` (truncated to the field sizes).
    pub fn new(
        username: &str,
        secret: &str,
        heartbeat_ms: u32,
        cancel_on_disconnect: bool,
    ) -> Login {
        Login {
            username: padded(username.as_bytes()),
            secret: padded(secret.as_bytes()),
            heartbeat_ms,
            cancel_on_disconnect,
        }
    }

    /// The user name without its padding.
    pub fn username(&self) -> &[u8] {
        unpadded(&self.username)
    }

    /// The secret without its padding.
    pub fn secret(&self) -> &[u8] {
        unpadded(&self.secret)
    }
}

fn padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let len = bytes.len().min(N);
    out[..len].copy_from_slice(&bytes[..len]);
    out
}

fn unpadded(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Cancel body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Cancel {
    /// The order's account.
    pub account: AccountId,
    /// Which order.
    pub order: OrderRef,
}

/// Mass-cancel body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct MassCancel {
    /// The account.
    pub account: AccountId,
    /// One instrument, or all.
    pub instrument: Option<InstrumentId>,
}

/// Create-account body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct CreateAccount {
    /// The new account's id.
    pub account: AccountId,
    /// Its owner.
    pub owner: UserId,
}

/// Deposit and withdrawal body: a payment between an account and the asset's external
/// account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct ExternalPayment {
    /// The account credited (deposit) or debited (withdrawal).
    pub account: AccountId,
    /// The asset.
    pub asset: AssetId,
    /// Minor units, positive.
    pub amount: i64,
    /// Idempotency key (deposits: one namespace for all; withdrawals: the account's).
    pub client_payment_id: ClientPaymentId,
}

/// Capture body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Capture {
    /// The sender's account in the payment (the debit side when named by client id).
    pub account: AccountId,
    /// Which payment.
    pub payment: PaymentRef,
    /// Minor units to capture; 0 for the whole authorized amount.
    pub amount: i64,
}

/// Void body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct Void {
    /// The sender's account in the payment (the debit side when named by client id).
    pub account: AccountId,
    /// Which payment.
    pub payment: PaymentRef,
}

/// Asset payment-limits body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct SetPaymentLimits {
    /// The asset.
    pub asset: AssetId,
    /// Largest single outgoing payment; none for no limit.
    pub transfer_max: Option<i64>,
    /// Default rolling 24-hour outgoing limit per account; none for no limit.
    pub velocity_24h: Option<i64>,
}

/// Account payment-limits body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct SetAccountLimits {
    /// The account.
    pub account: AccountId,
    /// The asset.
    pub asset: AssetId,
    /// How far below zero payments may take the available balance.
    pub credit_limit: i64,
    /// The account's own 24-hour outgoing limit; none to follow the asset's default.
    pub velocity_24h: Option<i64>,
}

/// Deny-list body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct SetAccountBlocked {
    /// The account.
    pub account: AccountId,
    /// On the list or not.
    pub blocked: bool,
}

/// Account-status body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct SetAccountStatus {
    /// The account.
    pub account: AccountId,
    /// Active, frozen or closed.
    pub status: AccountStatus,
}

/// Instrument-status body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct SetInstrumentStatus {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Trading or halted.
    pub status: InstrumentStatus,
    /// On a halt, also cancel every resting order.
    pub cancel_resting: bool,
}

/// A message from a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMsg {
    /// Log in.
    Login(Login),
    /// Keep-alive.
    Heartbeat,
    /// End the session.
    Logout,
    /// New order.
    NewOrder(NewOrder),
    /// Cancel.
    Cancel(Cancel),
    /// Amend.
    Amend(Amend),
    /// Mass cancel.
    MassCancel(MassCancel),
    /// Admin: create an account.
    CreateAccount(CreateAccount),
    /// Admin or operator: deposit.
    Deposit(ExternalPayment),
    /// Admin or operator: withdraw.
    Withdraw(ExternalPayment),
    /// Admin: account status.
    SetAccountStatus(SetAccountStatus),
    /// Admin: instrument status.
    SetInstrumentStatus(SetInstrumentStatus),
    /// Admin: snapshot now.
    TakeSnapshot,
    /// A query.
    Query(Query),
    /// Market data on.
    Subscribe(InstrumentId),
    /// Market data off.
    Unsubscribe(InstrumentId),
    /// Payment: transfer.
    Transfer(Transfer),
    /// Payment: authorize.
    Authorize(Authorize),
    /// Payment: capture.
    Capture(Capture),
    /// Payment: void.
    Void(Void),
    /// Admin: asset payment limits.
    SetPaymentLimits(SetPaymentLimits),
    /// Admin: account payment limits.
    SetAccountLimits(SetAccountLimits),
    /// Admin: deny-list.
    SetAccountBlocked(SetAccountBlocked),
}

impl ClientMsg {
    /// The header's type for this message.
    pub fn msg_type(&self) -> u16 {
        match self {
            ClientMsg::Login(_) => msg::LOGIN,
            ClientMsg::Heartbeat => msg::HEARTBEAT,
            ClientMsg::Logout => msg::LOGOUT,
            ClientMsg::NewOrder(_) => msg::NEW_ORDER,
            ClientMsg::Cancel(_) => msg::CANCEL,
            ClientMsg::Amend(_) => msg::AMEND,
            ClientMsg::MassCancel(_) => msg::MASS_CANCEL,
            ClientMsg::CreateAccount(_) => msg::CREATE_ACCOUNT,
            ClientMsg::Deposit(_) => msg::DEPOSIT,
            ClientMsg::Withdraw(_) => msg::WITHDRAW,
            ClientMsg::SetAccountStatus(_) => msg::SET_ACCOUNT_STATUS,
            ClientMsg::SetInstrumentStatus(_) => msg::SET_INSTRUMENT_STATUS,
            ClientMsg::TakeSnapshot => msg::TAKE_SNAPSHOT,
            ClientMsg::Query(_) => msg::QUERY,
            ClientMsg::Subscribe(_) => msg::SUBSCRIBE,
            ClientMsg::Unsubscribe(_) => msg::UNSUBSCRIBE,
            ClientMsg::Transfer(_) => msg::TRANSFER,
            ClientMsg::Authorize(_) => msg::AUTHORIZE,
            ClientMsg::Capture(_) => msg::CAPTURE,
            ClientMsg::Void(_) => msg::VOID,
            ClientMsg::SetPaymentLimits(_) => msg::SET_PAYMENT_LIMITS,
            ClientMsg::SetAccountLimits(_) => msg::SET_ACCOUNT_LIMITS,
            ClientMsg::SetAccountBlocked(_) => msg::SET_ACCOUNT_BLOCKED,
        }
    }

    /// True if a user with `role` may send this message: admin messages need the admin
    /// role, deposits and withdrawals the admin or payment-operator role.
    pub fn permitted(&self, role: Role) -> bool {
        match self {
            ClientMsg::CreateAccount(_)
            | ClientMsg::SetAccountStatus(_)
            | ClientMsg::SetInstrumentStatus(_)
            | ClientMsg::TakeSnapshot
            | ClientMsg::SetPaymentLimits(_)
            | ClientMsg::SetAccountLimits(_)
            | ClientMsg::SetAccountBlocked(_) => role == Role::Admin,
            ClientMsg::Deposit(_) | ClientMsg::Withdraw(_) => role != Role::Trader,
            _ => true,
        }
    }

    /// The client order id or client payment id the message carries, if any (for
    /// session rejects), else 0.
    pub fn client_id(&self) -> u64 {
        let payment = |payment: &PaymentRef| match payment {
            PaymentRef::Client(id) => id.0,
            PaymentRef::Id(_) => 0,
        };
        match self {
            ClientMsg::NewOrder(order) => order.client_order_id.0,
            ClientMsg::Cancel(Cancel { order: OrderRef::Client(id), .. })
            | ClientMsg::Amend(Amend { order: OrderRef::Client(id), .. }) => id.0,
            ClientMsg::Deposit(p) | ClientMsg::Withdraw(p) => p.client_payment_id.0,
            ClientMsg::Transfer(t) => t.client_payment_id.0,
            ClientMsg::Authorize(a) => a.client_payment_id.0,
            ClientMsg::Capture(c) => payment(&c.payment),
            ClientMsg::Void(v) => payment(&v.payment),
            _ => 0,
        }
    }

    /// Appends the whole frame (header and body) with request id `request_id`.
    pub fn encode_into(&self, request_id: u64, out: &mut Vec<u8>) {
        let start = begin_frame(out);
        match self {
            ClientMsg::Login(body) => put(out, body),
            ClientMsg::Heartbeat | ClientMsg::Logout | ClientMsg::TakeSnapshot => {}
            ClientMsg::NewOrder(body) => put(out, body),
            ClientMsg::Cancel(body) => put(out, body),
            ClientMsg::Amend(body) => put(out, body),
            ClientMsg::MassCancel(body) => put(out, body),
            ClientMsg::CreateAccount(body) => put(out, body),
            ClientMsg::Deposit(body) | ClientMsg::Withdraw(body) => put(out, body),
            ClientMsg::SetAccountStatus(body) => put(out, body),
            ClientMsg::SetInstrumentStatus(body) => put(out, body),
            ClientMsg::Query(body) => put(out, body),
            ClientMsg::Subscribe(body) | ClientMsg::Unsubscribe(body) => put(out, body),
            ClientMsg::Transfer(body) => put(out, body),
            ClientMsg::Authorize(body) => put(out, body),
            ClientMsg::Capture(body) => put(out, body),
            ClientMsg::Void(body) => put(out, body),
            ClientMsg::SetPaymentLimits(body) => put(out, body),
            ClientMsg::SetAccountLimits(body) => put(out, body),
            ClientMsg::SetAccountBlocked(body) => put(out, body),
        }
        end_frame(out, start, self.msg_type(), request_id);
    }

    /// Decodes a body of type `msg_type`. The error is the reason to report.
    pub fn decode(msg_type: u16, body: &[u8]) -> Result<ClientMsg, SessionReason> {
        Ok(match msg_type {
            msg::LOGIN => ClientMsg::Login(get(body)?),
            msg::HEARTBEAT => empty(body, ClientMsg::Heartbeat)?,
            msg::LOGOUT => empty(body, ClientMsg::Logout)?,
            msg::NEW_ORDER => ClientMsg::NewOrder(get(body)?),
            msg::CANCEL => ClientMsg::Cancel(get(body)?),
            msg::AMEND => ClientMsg::Amend(get(body)?),
            msg::MASS_CANCEL => ClientMsg::MassCancel(get(body)?),
            msg::CREATE_ACCOUNT => ClientMsg::CreateAccount(get(body)?),
            msg::DEPOSIT => ClientMsg::Deposit(get(body)?),
            msg::WITHDRAW => ClientMsg::Withdraw(get(body)?),
            msg::SET_ACCOUNT_STATUS => ClientMsg::SetAccountStatus(get(body)?),
            msg::SET_INSTRUMENT_STATUS => ClientMsg::SetInstrumentStatus(get(body)?),
            msg::TAKE_SNAPSHOT => empty(body, ClientMsg::TakeSnapshot)?,
            msg::QUERY => ClientMsg::Query(get(body)?),
            msg::SUBSCRIBE => ClientMsg::Subscribe(get(body)?),
            msg::UNSUBSCRIBE => ClientMsg::Unsubscribe(get(body)?),
            msg::TRANSFER => ClientMsg::Transfer(get(body)?),
            msg::AUTHORIZE => ClientMsg::Authorize(get(body)?),
            msg::CAPTURE => ClientMsg::Capture(get(body)?),
            msg::VOID => ClientMsg::Void(get(body)?),
            msg::SET_PAYMENT_LIMITS => ClientMsg::SetPaymentLimits(get(body)?),
            msg::SET_ACCOUNT_LIMITS => ClientMsg::SetAccountLimits(get(body)?),
            msg::SET_ACCOUNT_BLOCKED => ClientMsg::SetAccountBlocked(get(body)?),
            _ => return Err(SessionReason::UnknownMessageType),
        })
    }
}

impl From<NewOrder> for ClientMsg {
    fn from(order: NewOrder) -> ClientMsg {
        ClientMsg::NewOrder(order)
    }
}

/// Login-accepted body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct LoginAccepted {
    /// This session's id (unique while the server runs; appears in the journal's audit
    /// fields of every command the session sends).
    pub session_id: u32,
    /// The user the session acts as.
    pub user: UserId,
    /// 1 for an admin, 0 for a trader.
    pub admin: bool,
    /// The heartbeat interval in force, milliseconds.
    pub heartbeat_ms: u32,
    /// The sequence number the next server message will carry.
    pub next_seq: u64,
}

/// A refused client message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct SessionReject {
    /// A [`SessionReason`] code (or 101).
    pub reason: u32,
    /// The refused message's type.
    pub ref_type: u16,
    /// Its request id (the header's `seq`).
    pub ref_request_id: u64,
    /// Its client order id or client payment id when it has one, else 0.
    pub ref_client_id: u64,
}

/// An engine event for this session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct ExecReport {
    /// The journal sequence of the command that produced it (for a query answer: the
    /// last command applied before it was answered).
    pub journal_seq: u64,
    /// The request id of the message that caused it, when this session sent that
    /// message; 0 for events caused by others (a fill of a resting order, an admin's
    /// deposit).
    pub request_id: u64,
    /// The event (`docs/PROTOCOL.md` section 4).
    pub event: Event,
}

/// The fixed front of an [`ExecReport`] body (`docs/PROTOCOL.md` section 9), read
/// without decoding the event: for a client that needs whole events of a few kinds only
/// (the load generator, which reads millions of reports a second, most of them
/// `Accepted` and `Balance` that it only counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecReportHead {
    /// As [`ExecReport::journal_seq`].
    pub journal_seq: u64,
    /// As [`ExecReport::request_id`].
    pub request_id: u64,
    /// The event's tag ([`event_tag`]).
    pub event_tag: u32,
}

impl ExecReportHead {
    /// Bytes of the fixed front: two `u64` and the event's `u32` tag.
    pub const LEN: usize = 20;

    /// The whole body's length of a report whose event has tag `tag`, for the frequent
    /// kinds a counting client may skip without decoding ([`event_tag::ACCEPTED`],
    /// [`event_tag::BALANCE`], [`event_tag::PAYMENT`]: fixed sizes, PROTOCOL.md section
    /// 4); `None` for the others, which such a client decodes in full.
    pub fn skippable_len(tag: u32) -> Option<usize> {
        let event = match tag {
            event_tag::ACCEPTED => 54,
            event_tag::BALANCE => 34,
            event_tag::PAYMENT => 82,
            _ => return None,
        };
        Some(16 + event)
    }

    /// The front of `body`, or `None` if it is shorter than [`ExecReportHead::LEN`].
    /// Nothing after the tag is looked at: decode the whole message to validate it.
    pub fn peek(body: &[u8]) -> Option<ExecReportHead> {
        let front: &[u8; ExecReportHead::LEN] = body.get(..ExecReportHead::LEN)?.try_into().ok()?;
        let u64_at = |at: usize| u64::from_le_bytes(front[at..at + 8].try_into().expect("8 bytes"));
        Some(ExecReportHead {
            journal_seq: u64_at(0),
            request_id: u64_at(8),
            event_tag: u32::from_le_bytes(front[16..20].try_into().expect("4 bytes")),
        })
    }
}

/// Event tags on the wire (`docs/PROTOCOL.md` section 4), for [`ExecReportHead`].
pub mod event_tag {
    /// `Rejected`.
    pub const REJECTED: u32 = 0;
    /// `Accepted`.
    pub const ACCEPTED: u32 = 1;
    /// `Fill`.
    pub const FILL: u32 = 2;
    /// `Cancelled`.
    pub const CANCELLED: u32 = 3;
    /// `Balance`.
    pub const BALANCE: u32 = 5;
    /// `Payment`.
    pub const PAYMENT: u32 = 12;
}

/// Snapshot-taken body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct SnapshotTaken {
    /// The last command the snapshot includes.
    pub seq: u64,
    /// The state hash at that sequence.
    pub state_hash: u64,
}

/// One level of a market-data depth snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct MdSnapshotLevel {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Bid or ask.
    pub side: Side,
    /// Price, ticks.
    pub price: Price,
    /// Total quantity, lots.
    pub qty: Qty,
    /// Orders at the level.
    pub orders: u32,
}

/// End of a depth snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct MdSnapshotEnd {
    /// Instrument.
    pub instrument: InstrumentId,
    /// The market-data sequence the snapshot is current to; the next update carries
    /// `md_seq + 1`.
    pub md_seq: u64,
    /// Levels sent.
    pub levels: u32,
}

/// A public trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct MdTrade {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Per-instrument market-data sequence.
    pub md_seq: u64,
    /// Trade id.
    pub trade_id: TradeId,
    /// Price, ticks.
    pub price: Price,
    /// Quantity, lots.
    pub qty: Qty,
    /// The aggressor's side.
    pub taker_side: Side,
}

/// A price level's new total (quantity 0: the level is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub struct MdLevel {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Per-instrument market-data sequence.
    pub md_seq: u64,
    /// Bid or ask.
    pub side: Side,
    /// Price, ticks.
    pub price: Price,
    /// Total quantity, lots.
    pub qty: Qty,
    /// Orders at the level.
    pub orders: u32,
}

/// A message from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMsg {
    /// Login accepted.
    LoginAccepted(LoginAccepted),
    /// Login refused (reason code); the connection closes.
    LoginRejected(u32),
    /// Keep-alive.
    Heartbeat,
    /// The session is over (reason code); the connection closes.
    Logout(u32),
    /// A refused message.
    SessionReject(SessionReject),
    /// An engine event.
    ExecReport(ExecReport),
    /// A snapshot was written.
    SnapshotTaken(SnapshotTaken),
    /// Depth snapshot level.
    MdSnapshotLevel(MdSnapshotLevel),
    /// Depth snapshot end.
    MdSnapshotEnd(MdSnapshotEnd),
    /// Trade.
    MdTrade(MdTrade),
    /// Level update.
    MdLevel(MdLevel),
    /// Unsubscribed from this instrument.
    MdUnsubscribed(InstrumentId),
}

impl ServerMsg {
    /// The header's type for this message.
    pub fn msg_type(&self) -> u16 {
        match self {
            ServerMsg::LoginAccepted(_) => msg::LOGIN_ACCEPTED,
            ServerMsg::LoginRejected(_) => msg::LOGIN_REJECTED,
            ServerMsg::Heartbeat => msg::HEARTBEAT,
            ServerMsg::Logout(_) => msg::LOGOUT_NOTICE,
            ServerMsg::SessionReject(_) => msg::SESSION_REJECT,
            ServerMsg::ExecReport(_) => msg::EXEC_REPORT,
            ServerMsg::SnapshotTaken(_) => msg::SNAPSHOT_TAKEN,
            ServerMsg::MdSnapshotLevel(_) => msg::MD_SNAPSHOT_LEVEL,
            ServerMsg::MdSnapshotEnd(_) => msg::MD_SNAPSHOT_END,
            ServerMsg::MdTrade(_) => msg::MD_TRADE,
            ServerMsg::MdLevel(_) => msg::MD_LEVEL,
            ServerMsg::MdUnsubscribed(_) => msg::MD_UNSUBSCRIBED,
        }
    }

    /// Appends the whole frame with outbound sequence `seq`.
    pub fn encode_into(&self, seq: u64, out: &mut Vec<u8>) {
        let start = begin_frame(out);
        match self {
            ServerMsg::LoginAccepted(body) => put(out, body),
            ServerMsg::LoginRejected(reason) | ServerMsg::Logout(reason) => put(out, reason),
            ServerMsg::Heartbeat => {}
            ServerMsg::SessionReject(body) => put(out, body),
            ServerMsg::ExecReport(body) => put(out, body),
            ServerMsg::SnapshotTaken(body) => put(out, body),
            ServerMsg::MdSnapshotLevel(body) => put(out, body),
            ServerMsg::MdSnapshotEnd(body) => put(out, body),
            ServerMsg::MdTrade(body) => put(out, body),
            ServerMsg::MdLevel(body) => put(out, body),
            ServerMsg::MdUnsubscribed(body) => put(out, body),
        }
        end_frame(out, start, self.msg_type(), seq);
    }

    /// Decodes a body of type `msg_type`.
    pub fn decode(msg_type: u16, body: &[u8]) -> Result<ServerMsg, SessionReason> {
        Ok(match msg_type {
            msg::LOGIN_ACCEPTED => ServerMsg::LoginAccepted(get(body)?),
            msg::LOGIN_REJECTED => ServerMsg::LoginRejected(get(body)?),
            msg::HEARTBEAT => empty(body, ServerMsg::Heartbeat)?,
            msg::LOGOUT_NOTICE => ServerMsg::Logout(get(body)?),
            msg::SESSION_REJECT => ServerMsg::SessionReject(get(body)?),
            msg::EXEC_REPORT => ServerMsg::ExecReport(get(body)?),
            msg::SNAPSHOT_TAKEN => ServerMsg::SnapshotTaken(get(body)?),
            msg::MD_SNAPSHOT_LEVEL => ServerMsg::MdSnapshotLevel(get(body)?),
            msg::MD_SNAPSHOT_END => ServerMsg::MdSnapshotEnd(get(body)?),
            msg::MD_TRADE => ServerMsg::MdTrade(get(body)?),
            msg::MD_LEVEL => ServerMsg::MdLevel(get(body)?),
            msg::MD_UNSUBSCRIBED => ServerMsg::MdUnsubscribed(get(body)?),
            _ => return Err(SessionReason::UnknownMessageType),
        })
    }
}

fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    start
}

fn end_frame(out: &mut [u8], start: usize, msg_type: u16, seq: u64) {
    let len = (out.len() - start - HEADER_LEN) as u32;
    debug_assert!(len <= BODY_LEN_MAX, "every message fits the body limit");
    Header { len, msg_type, version: VERSION, flags: 0, seq }.write(&mut out[start..]);
}

fn put<T>(out: &mut Vec<u8>, body: &T)
where
    T: SchemaWrite<wincode::config::DefaultConfig, Src = T>,
{
    // Writing into a Vec only fails on allocation failure, which aborts anyway.
    wincode::serialize_into(out, body).expect("encoding into a Vec cannot fail");
}

fn get<T>(body: &[u8]) -> Result<T, SessionReason>
where
    T: for<'de> SchemaRead<'de, wincode::config::DefaultConfig, Dst = T>,
{
    wincode::deserialize_exact(body).map_err(|_| SessionReason::MalformedFrame)
}

fn empty<T>(body: &[u8], msg: T) -> Result<T, SessionReason> {
    if body.is_empty() { Ok(msg) } else { Err(SessionReason::MalformedFrame) }
}

/// Splits complete frames off the front of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole frame: its header and body.
    Complete(Header, &'a [u8]),
    /// More bytes are needed.
    Incomplete,
    /// The header is unusable; the stream cannot continue.
    Fatal(Header, SessionReason),
}

/// Looks at the front of `buf`: a whole frame, not enough bytes yet, or a fatal header.
pub fn next_frame(buf: &[u8]) -> Frame<'_> {
    let Some(header) = Header::parse(buf) else { return Frame::Incomplete };
    if let Some(reason) = header.fatal_problem() {
        return Frame::Fatal(header, reason);
    }
    let end = HEADER_LEN + header.len as usize;
    match buf.get(HEADER_LEN..end) {
        Some(body) => Frame::Complete(header, body),
        None => Frame::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_unique_and_round_trip() {
        for reason in SessionReason::ALL {
            assert_eq!(SessionReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(SessionReason::from_code(1), None);
    }

    #[test]
    fn login_round_trips_and_unpads() {
        let login = Login::new("alice", "alice-secret", 1000, true);
        let mut out = Vec::new();
        ClientMsg::Login(login).encode_into(7, &mut out);
        let Frame::Complete(header, body) = next_frame(&out) else { panic!("whole frame") };
        assert_eq!((header.msg_type, header.seq, header.len as usize), (1, 7, out.len() - 16));
        let ClientMsg::Login(back) = ClientMsg::decode(header.msg_type, body).unwrap() else {
            panic!("login")
        };
        assert_eq!(back.username(), b"alice");
        assert_eq!(back.secret(), b"alice-secret");
        assert!(back.cancel_on_disconnect);
    }

    #[test]
    fn an_exec_report_head_is_its_front_and_the_tags_are_the_events() {
        use fincore_engine::{
            AccountId, AssetId, BalanceChanged, CancelReason, ClientOrderId, CommandKind, Fill,
            OrderAccepted, OrderCancelled, OrderId, RejectReason, Rejected, TradeId,
        };
        let (account, instrument, order_id) = (AccountId(4), InstrumentId(1), OrderId(5));
        let (client_order_id, price, qty) = (ClientOrderId(6), Price(7), Qty(8));
        let rejected = Event::Rejected(Rejected {
            kind: CommandKind::Cancel,
            account,
            client_id: 9,
            reason: RejectReason::UnknownOrder,
        });
        let accepted = Event::Accepted(OrderAccepted {
            order_id,
            account,
            instrument,
            client_order_id,
            side: Side::Buy,
            price,
            qty,
            hold: 10,
        });
        let fill = Event::Fill(Fill {
            instrument,
            trade_id: TradeId(11),
            price,
            qty,
            taker_side: Side::Sell,
            maker_order: order_id,
            taker_order: OrderId(12),
            maker_account: account,
            taker_account: AccountId(13),
            maker_client_id: client_order_id,
            taker_client_id: ClientOrderId(14),
            maker_fee: 1,
            taker_fee: 2,
            maker_remaining: Qty(0),
            taker_remaining: Qty(3),
        });
        let cancelled = Event::Cancelled(OrderCancelled {
            order_id,
            account,
            instrument,
            client_order_id,
            qty_cancelled: qty,
            reason: CancelReason::User,
        });
        let balance = Event::Balance(BalanceChanged {
            account,
            asset: AssetId(0),
            available: 15,
            held: 16,
            pending: 17,
        });
        let payment = Event::Payment {
            action: fincore_engine::PaymentAction::Created,
            info: fincore_engine::PaymentInfo {
                payment_id: fincore_engine::PaymentId(18),
                client_payment_id: fincore_engine::ClientPaymentId(19),
                kind: fincore_engine::PaymentKind::Transfer,
                debit: account,
                credit: AccountId(20),
                asset: AssetId(0),
                amount: 21,
                captured: 21,
                status: fincore_engine::PaymentStatus::Completed,
                created_ns: 22,
                deadline_ns: 0,
                resolved_ns: 22,
            },
        };
        let cases = [
            (rejected, event_tag::REJECTED),
            (accepted, event_tag::ACCEPTED),
            (fill, event_tag::FILL),
            (cancelled, event_tag::CANCELLED),
            (balance, event_tag::BALANCE),
            (payment, event_tag::PAYMENT),
        ];
        for (event, tag) in cases {
            let report = ExecReport { journal_seq: 0x0102_0304_0506_0708, request_id: 77, event };
            let mut out = Vec::new();
            ServerMsg::ExecReport(report).encode_into(3, &mut out);
            let Frame::Complete(_, body) = next_frame(&out) else { panic!("whole frame") };
            let head = ExecReportHead::peek(body).expect("long enough");
            let expected = ExecReportHead {
                journal_seq: 0x0102_0304_0506_0708,
                request_id: 77,
                event_tag: tag,
            };
            assert_eq!(head, expected, "{event:?}");
            let skippable = [event_tag::ACCEPTED, event_tag::BALANCE, event_tag::PAYMENT];
            let len = skippable.contains(&tag).then_some(body.len());
            assert_eq!(ExecReportHead::skippable_len(tag), len, "{event:?}");
            assert_eq!(ExecReportHead::peek(&body[..ExecReportHead::LEN - 1]), None);
        }
    }

    #[test]
    fn frames_split_and_refuse() {
        let mut out = Vec::new();
        ClientMsg::Heartbeat.encode_into(1, &mut out);
        assert_eq!(next_frame(&out[..15]), Frame::Incomplete);
        assert!(matches!(next_frame(&out), Frame::Complete(_, body) if body.is_empty()));
        out[6] = 2;
        assert!(matches!(next_frame(&out), Frame::Fatal(_, SessionReason::UnsupportedVersion)));
        out[6] = VERSION;
        out[0..4].copy_from_slice(&(BODY_LEN_MAX + 1).to_le_bytes());
        assert!(matches!(next_frame(&out), Frame::Fatal(_, SessionReason::FrameTooLong)));
        assert_eq!(ClientMsg::decode(999, &[]), Err(SessionReason::UnknownMessageType));
        assert_eq!(ClientMsg::decode(msg::HEARTBEAT, &[0]), Err(SessionReason::MalformedFrame));
        assert_eq!(ClientMsg::decode(msg::CANCEL, &[0; 3]), Err(SessionReason::MalformedFrame));
    }
}
