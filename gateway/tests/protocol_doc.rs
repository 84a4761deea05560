//! Keeps the TCP part of `docs/PROTOCOL.md` (sections 7-12) and the code in agreement:
//! every example frame from section 7 on is re-encoded from the message it describes
//! (exact bytes), the session-reason table of section 10 must list exactly
//! [`SessionReason::ALL`], the message table of section 9 must list exactly the message
//! types the decoders know, each with its name, direction, role and body size, and the
//! event table of section 4 every event's tag, name and size. `engine/tests/protocol_doc.rs`
//! checks sections 1-6.

mod common;

use fincore_engine::*;
use fincore_gateway::wire::{
    self, Cancel, Capture, ClientMsg, CreateAccount, ExecReport, ExternalPayment, Login,
    LoginAccepted, MassCancel, MdLevel, MdSnapshotEnd, MdSnapshotLevel, MdTrade, ServerMsg,
    SessionReason, SessionReject, SetAccountBlocked, SetAccountLimits, SetAccountStatus,
    SetInstrumentStatus, SetPaymentLimits, SnapshotTaken, Void,
};
use std::collections::BTreeMap;

fn protocol_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
    std::fs::read_to_string(path).expect("docs/PROTOCOL.md is readable")
}

/// The text of the section whose heading starts with `heading`, up to the next one.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc.find(&format!("\n{heading}")).unwrap_or_else(|| panic!("{heading} exists"));
    let rest = &doc[start + 1..];
    let end = rest[1..].find("\n## ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// The ```hex NAME blocks of `text`, as bytes.
fn examples(text: &str) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```hex ") else { continue };
        let mut bytes = Vec::new();
        for body in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            for pair in body.split_whitespace() {
                bytes.push(u8::from_str_radix(pair, 16).expect("hex byte"));
            }
        }
        let previous = found.insert(name.trim().to_string(), bytes);
        assert!(previous.is_none(), "example `{name}` appears once");
    }
    found
}

/// The rows of the markdown tables in `text`, as trimmed cells (without the outer
/// empty cells), skipping header separators.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| {
            let cells: Vec<String> = l.split('|').map(|c| c.trim().to_string()).collect();
            cells[1..cells.len() - 1].to_vec()
        })
        .collect()
}

fn unquote(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn client_frame(message: ClientMsg, request_id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode_into(request_id, &mut out);
    out
}

fn server_frame(message: ServerMsg, seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode_into(seq, &mut out);
    out
}

fn alice_order() -> NewOrder {
    common::limit(2, InstrumentId(0), Side::Buy, 6_000_000, 100, 1)
}

fn report(journal_seq: u64, request_id: u64, event: Event) -> ServerMsg {
    ServerMsg::ExecReport(ExecReport { journal_seq, request_id, event })
}

#[test]
fn example_frames_match_the_encoder() {
    let doc = protocol_doc();
    let tcp = &doc[doc.find("\n## 7. Framing").expect("section 7 exists")..];
    let examples = examples(tcp);
    // Section 12's session: the demo's setup is 65 commands and 33 payments.
    let (first_seq, first_payment) = (66, 34);
    let deposit = ExternalPayment {
        account: AccountId(2),
        asset: AssetId(0),
        amount: 1_000_000,
        client_payment_id: ClientPaymentId(9),
    };
    let transfer = Transfer {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 250_000_000,
        client_payment_id: ClientPaymentId(1),
    };
    let engine_time = 1_800_000_000_000_000_000;
    let paid = PaymentInfo {
        payment_id: PaymentId(first_payment),
        client_payment_id: ClientPaymentId(1),
        kind: PaymentKind::Transfer,
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 250_000_000,
        captured: 250_000_000,
        status: PaymentStatus::Completed,
        created_ns: engine_time,
        deadline_ns: 0,
        resolved_ns: engine_time,
    };
    let accepted = OrderAccepted {
        order_id: OrderId(1),
        account: AccountId(2),
        instrument: InstrumentId(0),
        client_order_id: ClientOrderId(1),
        side: Side::Buy,
        price: Price(6_000_000),
        qty: Qty(100),
        hold: 600_300_000,
    };
    let balance = BalanceChanged {
        account: AccountId(2),
        asset: AssetId(0),
        available: 1_000_000_000_000 - 600_300_000,
        held: 600_300_000,
        pending: 0,
    };
    let after_payment = BalanceChanged { available: balance.available - 250_000_000, ..balance };
    let expected = [
        ("heartbeat", client_frame(ClientMsg::Heartbeat, 0)),
        (
            "login",
            client_frame(ClientMsg::Login(Login::new("alice", "alice-secret", 5_000, false)), 1),
        ),
        (
            "login_accepted",
            server_frame(
                ServerMsg::LoginAccepted(LoginAccepted {
                    session_id: 1,
                    user: UserId(2),
                    admin: false,
                    heartbeat_ms: 5_000,
                    next_seq: 2,
                }),
                1,
            ),
        ),
        ("new_order_frame", client_frame(ClientMsg::NewOrder(alice_order()), 2)),
        ("accepted_report", server_frame(report(first_seq, 2, Event::Accepted(accepted)), 2)),
        ("balance_report", server_frame(report(first_seq, 2, Event::Balance(balance)), 3)),
        (
            "fence_query",
            client_frame(
                ClientMsg::Query(Query::Depth { instrument: InstrumentId(0), levels: 0 }),
                3,
            ),
        ),
        ("fence_done", server_frame(report(first_seq, 3, Event::QueryDone { items: 0 }), 4)),
        ("deposit_frame", client_frame(ClientMsg::Deposit(deposit), 4)),
        (
            "not_admin_reject",
            server_frame(
                ServerMsg::SessionReject(SessionReject {
                    reason: SessionReason::NotAdmin.code(),
                    ref_type: wire::msg::DEPOSIT,
                    ref_request_id: 4,
                    ref_client_id: 9,
                }),
                5,
            ),
        ),
        ("transfer_frame", client_frame(ClientMsg::Transfer(transfer), 5)),
        (
            "payment_report",
            server_frame(
                report(
                    first_seq + 1,
                    5,
                    Event::Payment { action: PaymentAction::Created, info: paid },
                ),
                6,
            ),
        ),
        (
            "payment_balance_report",
            server_frame(report(first_seq + 1, 5, Event::Balance(after_payment)), 7),
        ),
        ("logout", client_frame(ClientMsg::Logout, 6)),
        ("logout_notice", server_frame(ServerMsg::Logout(SessionReason::ClientLogout.code()), 8)),
    ];
    let names: Vec<&str> = examples.keys().map(String::as_str).collect();
    let mut expected_names: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    expected_names.sort_unstable();
    assert_eq!(names, expected_names, "every example from section 7 on is checked");
    for (name, bytes) in expected {
        assert_eq!(hex(&examples[name]), hex(&bytes), "example `{name}` in docs/PROTOCOL.md");
    }
}

#[test]
fn reason_table_lists_every_code() {
    let doc = protocol_doc();
    let table = section(&doc, "## 10. Session reason codes");
    let mut listed = Vec::new();
    for row in rows(table) {
        let (Ok(code), Some(name)) = (row[0].parse::<u32>(), unquote(&row[1])) else { continue };
        assert_eq!(row.len(), 4, "code | reason | when | effect: {row:?}");
        assert!(!row[2].is_empty() && !row[3].is_empty(), "{name}: when and effect");
        listed.push((code, name.to_string()));
    }
    let actual: Vec<(u32, String)> =
        SessionReason::ALL.iter().map(|r| (r.code(), format!("{r:?}"))).collect();
    assert_eq!(listed, actual);
}

/// One sample of every client message (several for bodies of more than one size).
fn client_samples() -> Vec<ClientMsg> {
    let by_client = OrderRef::Client(ClientOrderId(7));
    let external = ExternalPayment {
        account: AccountId(2),
        asset: AssetId(0),
        amount: 5,
        client_payment_id: ClientPaymentId(3),
    };
    let transfer = Transfer {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 5,
        client_payment_id: ClientPaymentId(4),
    };
    let authorize = Authorize {
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 5,
        client_payment_id: ClientPaymentId(5),
        timeout_s: 60,
    };
    let by_payment_client = PaymentRef::Client(ClientPaymentId(5));
    let no_limits = SetPaymentLimits { asset: AssetId(0), transfer_max: None, velocity_24h: None };
    let account_limits = SetAccountLimits {
        account: AccountId(2),
        asset: AssetId(0),
        credit_limit: 0,
        velocity_24h: None,
    };
    vec![
        ClientMsg::Login(Login::new("alice", "alice-secret", 5_000, false)),
        ClientMsg::Heartbeat,
        ClientMsg::Logout,
        ClientMsg::NewOrder(alice_order()),
        ClientMsg::Cancel(Cancel { account: AccountId(2), order: by_client }),
        ClientMsg::Amend(Amend {
            account: AccountId(2),
            order: by_client,
            price: Price(1),
            qty: Qty(1),
        }),
        ClientMsg::MassCancel(MassCancel { account: AccountId(2), instrument: None }),
        ClientMsg::MassCancel(MassCancel {
            account: AccountId(2),
            instrument: Some(InstrumentId(0)),
        }),
        ClientMsg::CreateAccount(CreateAccount { account: AccountId(20), owner: UserId(2) }),
        ClientMsg::Deposit(external),
        ClientMsg::Withdraw(external),
        ClientMsg::SetAccountStatus(SetAccountStatus {
            account: AccountId(2),
            status: AccountStatus::Frozen,
        }),
        ClientMsg::SetInstrumentStatus(SetInstrumentStatus {
            instrument: InstrumentId(0),
            status: InstrumentStatus::Halted,
            cancel_resting: false,
        }),
        ClientMsg::TakeSnapshot,
        ClientMsg::SetPaymentLimits(no_limits),
        ClientMsg::SetPaymentLimits(SetPaymentLimits { transfer_max: Some(1), ..no_limits }),
        ClientMsg::SetPaymentLimits(SetPaymentLimits {
            transfer_max: Some(1),
            velocity_24h: Some(2),
            ..no_limits
        }),
        ClientMsg::SetAccountLimits(account_limits),
        ClientMsg::SetAccountLimits(SetAccountLimits { velocity_24h: Some(1), ..account_limits }),
        ClientMsg::SetAccountBlocked(SetAccountBlocked { account: AccountId(2), blocked: true }),
        ClientMsg::Query(Query::Balances { account: AccountId(2) }),
        ClientMsg::Query(Query::Order { account: AccountId(2), order: by_client }),
        ClientMsg::Query(Query::OpenOrders { account: AccountId(2) }),
        ClientMsg::Query(Query::Depth { instrument: InstrumentId(0), levels: 0 }),
        ClientMsg::Query(Query::Reference),
        ClientMsg::Query(Query::Payment { account: AccountId(2), payment: by_payment_client }),
        ClientMsg::Query(Query::Payments { account: AccountId(2), limit: 10 }),
        ClientMsg::Subscribe(InstrumentId(0)),
        ClientMsg::Unsubscribe(InstrumentId(0)),
        ClientMsg::Transfer(transfer),
        ClientMsg::Authorize(authorize),
        ClientMsg::Capture(Capture {
            account: AccountId(3),
            payment: by_payment_client,
            amount: 0,
        }),
        ClientMsg::Capture(Capture {
            account: AccountId(3),
            payment: PaymentRef::Id(PaymentId(34)),
            amount: 5,
        }),
        ClientMsg::Void(Void { account: AccountId(2), payment: by_payment_client }),
    ]
}

fn server_samples() -> Vec<ServerMsg> {
    let mut samples = vec![
        ServerMsg::LoginAccepted(LoginAccepted {
            session_id: 1,
            user: UserId(2),
            admin: false,
            heartbeat_ms: 5_000,
            next_seq: 2,
        }),
        ServerMsg::LoginRejected(906),
        ServerMsg::Heartbeat,
        ServerMsg::Logout(0),
        ServerMsg::SessionReject(SessionReject {
            reason: 900,
            ref_type: 10,
            ref_request_id: 1,
            ref_client_id: 1,
        }),
        ServerMsg::SnapshotTaken(SnapshotTaken { seq: 1, state_hash: 2 }),
        ServerMsg::MdSnapshotLevel(MdSnapshotLevel {
            instrument: InstrumentId(0),
            side: Side::Buy,
            price: Price(1),
            qty: Qty(1),
            orders: 1,
        }),
        ServerMsg::MdSnapshotEnd(MdSnapshotEnd {
            instrument: InstrumentId(0),
            md_seq: 1,
            levels: 1,
        }),
        ServerMsg::MdTrade(MdTrade {
            instrument: InstrumentId(0),
            md_seq: 1,
            trade_id: TradeId(1),
            price: Price(1),
            qty: Qty(1),
            taker_side: Side::Sell,
        }),
        ServerMsg::MdLevel(MdLevel {
            instrument: InstrumentId(0),
            md_seq: 1,
            side: Side::Sell,
            price: Price(1),
            qty: Qty(0),
            orders: 0,
        }),
        ServerMsg::MdUnsubscribed(InstrumentId(0)),
    ];
    samples.extend(event_samples().into_iter().map(|event| report(1, 1, event)));
    samples
}

/// One sample of every engine event.
fn event_samples() -> Vec<Event> {
    let spec = common::btc_usd_spec();
    let level = LevelChanged {
        instrument: InstrumentId(0),
        side: Side::Buy,
        price: Price(1),
        qty: Qty(1),
        orders: 1,
    };
    let balance = BalanceChanged {
        account: AccountId(2),
        asset: AssetId(0),
        available: 1,
        held: 0,
        pending: 0,
    };
    let payment = PaymentInfo {
        payment_id: PaymentId(34),
        client_payment_id: ClientPaymentId(1),
        kind: PaymentKind::Authorization,
        debit: AccountId(2),
        credit: AccountId(3),
        asset: AssetId(0),
        amount: 5,
        captured: 0,
        status: PaymentStatus::Pending,
        created_ns: 1,
        deadline_ns: 2,
        resolved_ns: 0,
    };
    vec![
        Event::Rejected(Rejected {
            kind: CommandKind::NewOrder,
            account: AccountId(2),
            client_id: 1,
            reason: RejectReason::InsufficientBalance,
        }),
        Event::Accepted(OrderAccepted {
            order_id: OrderId(1),
            account: AccountId(2),
            instrument: InstrumentId(0),
            client_order_id: ClientOrderId(1),
            side: Side::Buy,
            price: Price(1),
            qty: Qty(1),
            hold: 1,
        }),
        Event::Fill(Fill {
            instrument: InstrumentId(0),
            trade_id: TradeId(1),
            price: Price(1),
            qty: Qty(1),
            taker_side: Side::Buy,
            maker_order: OrderId(1),
            taker_order: OrderId(2),
            maker_account: AccountId(3),
            taker_account: AccountId(2),
            maker_client_id: ClientOrderId(1),
            taker_client_id: ClientOrderId(2),
            maker_fee: 0,
            taker_fee: 0,
            maker_remaining: Qty(0),
            taker_remaining: Qty(0),
        }),
        Event::Cancelled(OrderCancelled {
            order_id: OrderId(1),
            account: AccountId(2),
            instrument: InstrumentId(0),
            client_order_id: ClientOrderId(1),
            qty_cancelled: Qty(1),
            reason: CancelReason::User,
        }),
        Event::Amended(OrderAmended {
            order_id: OrderId(1),
            account: AccountId(2),
            instrument: InstrumentId(0),
            client_order_id: ClientOrderId(1),
            price: Price(1),
            qty: Qty(1),
            priority_kept: true,
        }),
        Event::Balance(balance),
        Event::Trade(Trade {
            instrument: InstrumentId(0),
            trade_id: TradeId(1),
            price: Price(1),
            qty: Qty(1),
            taker_side: Side::Buy,
        }),
        Event::Level(level),
        Event::UserCreated { user: UserId(2), role: Role::Trader },
        Event::AssetCreated { asset: AssetId(0), scale: 6 },
        Event::InstrumentCreated { instrument: InstrumentId(0) },
        Event::AccountCreated { account: AccountId(2), owner: UserId(2) },
        Event::Payment { action: PaymentAction::Created, info: payment },
        Event::AccountStatusChanged { account: AccountId(2), status: AccountStatus::Frozen },
        Event::InstrumentStatusChanged {
            instrument: InstrumentId(0),
            status: InstrumentStatus::Halted,
        },
        Event::MassCancelled { account: AccountId(2), count: 1 },
        Event::BalanceInfo(balance),
        Event::OrderInfo(OrderInfo {
            order_id: OrderId(1),
            account: AccountId(2),
            instrument: InstrumentId(0),
            client_order_id: ClientOrderId(1),
            side: Side::Buy,
            price: Price(1),
            remaining: Qty(1),
            filled: Qty(0),
            hold: 1,
        }),
        Event::DepthLevel(level),
        Event::QueryDone { items: 0 },
        Event::AssetInfo { asset: AssetId(0), symbol: Symbol::new("USD").unwrap(), scale: 6 },
        Event::InstrumentInfo { spec, status: InstrumentStatus::Trading },
        Event::PaymentInfo(payment),
        Event::PaymentLimitsSet { asset: AssetId(0), transfer_max: None, velocity_24h: None },
        Event::PaymentLimitsSet { asset: AssetId(0), transfer_max: Some(1), velocity_24h: None },
        Event::PaymentLimitsSet { asset: AssetId(0), transfer_max: Some(1), velocity_24h: Some(2) },
        Event::AccountLimitsSet {
            account: AccountId(2),
            asset: AssetId(0),
            credit_limit: 0,
            velocity_24h: None,
        },
        Event::AccountLimitsSet {
            account: AccountId(2),
            asset: AssetId(0),
            credit_limit: 0,
            velocity_24h: Some(1),
        },
        Event::AccountBlocked { account: AccountId(2), blocked: true },
        Event::Ticked { time_ns: 1 },
    ]
}

/// The variant name of a value's `Debug` form: `Accepted(..)` -> `Accepted`.
fn variant_name(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    text.split(['(', ' ', '{']).next().unwrap().to_string()
}

/// The body sizes a cell allows: `51`, `5 or 7`, `4 to 20`.
fn sizes_allow(cell: &str, len: usize) -> bool {
    let numbers: Vec<usize> = cell.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    if cell.contains(" to ") {
        numbers.len() == 2 && (numbers[0]..=numbers[1]).contains(&len)
    } else {
        numbers.contains(&len)
    }
}

/// Every message type a decoder knows (an empty body of any other type is refused as
/// an unknown type, before its length is looked at).
fn known_message_types() -> Vec<u16> {
    let unknown = Some(SessionReason::UnknownMessageType);
    (0..=u16::MAX)
        .filter(|&t| {
            ClientMsg::decode(t, &[]).err() != unknown || ServerMsg::decode(t, &[]).err() != unknown
        })
        .collect()
}

/// The role a message needs, as the direction column of section 9 says it: "client to
/// server" (anyone), "..., admin or operator", "..., admin".
fn roles_allowed(direction: &str) -> Vec<Role> {
    if direction.ends_with(", admin or operator") {
        vec![Role::Operator, Role::Admin]
    } else if direction.ends_with(", admin") {
        vec![Role::Admin]
    } else {
        vec![Role::Trader, Role::Operator, Role::Admin]
    }
}

#[test]
fn message_table_lists_every_message() {
    let doc = protocol_doc();
    // The summary table, before the per-message subsections.
    let table = section(&doc, "## 9. Messages").split("\n### ").next().unwrap();
    // type -> (name, direction, sizes).
    let mut listed = BTreeMap::new();
    for row in rows(table) {
        let (Ok(msg_type), Some(name)) = (row[0].parse::<u16>(), unquote(&row[1])) else {
            continue;
        };
        let entry = (name.to_string(), row[2].clone(), row[3].clone());
        assert!(listed.insert(msg_type, entry).is_none(), "type {msg_type} listed once");
    }
    let mut seen = std::collections::BTreeSet::new();
    for message in client_samples() {
        let msg_type = message.msg_type();
        let (name, direction, sizes) = listed.get(&msg_type).unwrap_or_else(|| {
            panic!("type {msg_type} ({message:?}) is in the table of section 9")
        });
        assert_eq!(*name, variant_name(&message), "name of type {msg_type}");
        let to_server = direction.starts_with("client to server") || direction == "both";
        assert!(to_server, "direction of {name}");
        let allowed: Vec<Role> = [Role::Trader, Role::Operator, Role::Admin]
            .into_iter()
            .filter(|&role| message.permitted(role))
            .collect();
        assert_eq!(allowed, roles_allowed(direction), "{name}: who may send it ({direction})");
        let len = client_frame(message, 1).len() - wire::HEADER_LEN;
        assert!(sizes_allow(sizes, len), "{name}: a {len}-byte body, the table says {sizes}");
        seen.insert(msg_type);
    }
    for message in server_samples() {
        let msg_type = message.msg_type();
        let (name, direction, sizes) = listed.get(&msg_type).unwrap_or_else(|| {
            panic!("type {msg_type} ({message:?}) is in the table of section 9")
        });
        assert_eq!(*name, variant_name(&message), "name of type {msg_type}");
        assert!(direction == "server to client" || direction == "both", "direction of {name}");
        let len = server_frame(message, 1).len() - wire::HEADER_LEN;
        assert!(sizes_allow(sizes, len), "{name}: a {len}-byte body, the table says {sizes}");
        seen.insert(msg_type);
    }
    let listed_types: Vec<u16> = listed.keys().copied().collect();
    let seen: Vec<u16> = seen.into_iter().collect();
    assert_eq!(listed_types, seen, "the table lists exactly the sampled message types");
    assert_eq!(known_message_types(), seen, "every message type of `wire::msg` is sampled");
    // The smallest and largest sizes the table gives are reached by a sample.
    for (name, _, sizes) in listed.values() {
        let numbers: Vec<usize> = sizes.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let lens: Vec<usize> = client_samples()
            .into_iter()
            .filter(|m| variant_name(m) == *name)
            .map(|m| client_frame(m, 1).len() - wire::HEADER_LEN)
            .chain(
                server_samples()
                    .into_iter()
                    .filter(|m| variant_name(m) == *name)
                    .map(|m| server_frame(m, 1).len() - wire::HEADER_LEN),
            )
            .collect();
        for number in numbers {
            assert!(lens.contains(&number), "{name}: no sample of {number} bytes ({sizes})");
        }
    }
}

#[test]
fn event_table_gives_tags_and_sizes() {
    let doc = protocol_doc();
    let table = section(&doc, "## 4. Events");
    let mut listed = BTreeMap::new();
    for row in rows(table) {
        let (Ok(tag), Some(name)) = (row[0].parse::<u32>(), unquote(&row[1])) else { continue };
        let sizes = row.last().unwrap().clone();
        assert!(sizes.split_whitespace().any(|w| w.parse::<usize>().is_ok()), "{name}: {sizes}");
        assert!(listed.insert(tag, (name.to_string(), sizes)).is_none(), "tag {tag} listed once");
    }
    let samples = event_samples();
    let sampled: std::collections::BTreeSet<u32> =
        samples.iter().map(|e| u32::from_le_bytes(e.encode()[..4].try_into().unwrap())).collect();
    let listed_tags: Vec<u32> = listed.keys().copied().collect();
    assert_eq!(listed_tags, sampled.into_iter().collect::<Vec<_>>(), "every event is listed");
    // No event past the last one listed: its tag does not decode.
    let next = listed_tags.last().unwrap() + 1;
    let mut bytes = next.to_le_bytes().to_vec();
    bytes.extend([0u8; 128]);
    for len in 4..bytes.len() {
        assert!(Event::decode(&bytes[..len]).is_err(), "event tag {next} is unknown");
    }
    let mut wrong = Vec::new();
    for event in samples {
        let bytes = event.encode();
        let tag = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let (name, sizes) = &listed[&tag];
        assert_eq!(*name, variant_name(&event), "name of event tag {tag}");
        if !sizes_allow(sizes, bytes.len()) {
            wrong.push(format!("{name}: {} bytes, the table says {sizes}", bytes.len()));
        }
    }
    assert!(wrong.is_empty(), "sizes in the event table of section 4: {wrong:#?}");
}
