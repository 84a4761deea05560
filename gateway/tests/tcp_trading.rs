//! Trading over real TCP connections (server on 127.0.0.1, ephemeral port, temporary
//! data directory, the demo venue): an order's round trip; a cross between two users
//! with the fill on both sessions, market data on a third, and balances after fees to
//! the minor unit; who sees which execution reports (a session sees only events about
//! its own user's accounts; the fee account's owner sees its fee); authorization
//! (another user's account: reject 202; admin messages from a trader: session reject
//! 101); the admin's deposit, withdrawal, freeze, halt and snapshot; cancel-on-disconnect;
//! a slow consumer, disconnected without hurting the other sessions; and payments:
//! transfers, authorizations with their capture, void and expiry, retries, queries, the
//! payment operator's role, payment limits, credit and the deny-list, each reported to
//! the sides of the payment and no one else.
//!
//! Demo numbers used throughout (BTC-USD: tick 0.01 USD, lot 0.0001 BTC, USD 6 decimals,
//! BTC 8): one tick x one lot is 1 micro-dollar, one lot is 10 000 satoshi. 60 000 USD is
//! 6 000 000 ticks and 0.01 BTC is 100 lots, so that trade's notional is 600 000 000
//! micro-dollars (600 USD); the maker pays 1 bp (60 000), the taker 5 bp (300 000), and
//! a resting buy holds its notional plus the larger fee (600 300 000).

mod common;

use common::{
    BTC, BTC_0, BTC_USD, ETH_0, Incoming, Raw, USD, USD_0, WAIT, applied_seq, balance, balances,
    command, events, external, fence, limit, next, now_ns, open_orders, request, unsolicited,
};
use fincore_engine::{
    AccountId, AccountStatus, Amend, CancelReason, ClientOrderId, ClientPaymentId, CommandKind,
    EXTERNAL_ACCOUNT, Event, Fill, InstrumentId, InstrumentStatus, OrderAccepted, OrderCancelled,
    OrderId, OrderRef, PaymentAction, PaymentId, PaymentInfo, PaymentKind, PaymentStatus, Price,
    Qty, Query, RejectReason, Rejected, Side, UserId,
};
use fincore_gateway::client::{LoginOptions, Received};
use fincore_gateway::wire::{
    Cancel, ClientMsg, CreateAccount, MassCancel, MdLevel, MdSnapshotEnd, MdSnapshotLevel, MdTrade,
    ServerMsg, SessionReason, SessionReject, SetAccountBlocked, SetAccountLimits, SetAccountStatus,
    SetInstrumentStatus, SetPaymentLimits,
};
use fincore_gateway::{ReplayBounds, replay, snapshot_dir};
use std::time::{Duration, Instant};

const ALICE: AccountId = AccountId(2);
const BOB: AccountId = AccountId(3);
const CAROL: AccountId = AccountId(4);
const FEES: AccountId = AccountId(1);

fn rejected(kind: CommandKind, account: AccountId, client_id: u64, reason: RejectReason) -> Event {
    Event::Rejected(Rejected { kind, account, client_id, reason })
}

fn accepted(event: &Event) -> OrderAccepted {
    match event {
        Event::Accepted(accepted) => *accepted,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[test]
fn an_order_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let mut alice = common::login(server.local_addr(), "alice");

    // 60 000 x 0.01 from decimals: 6 000 000 ticks, 100 lots.
    let order = alice
        .limit_order(
            ALICE,
            "BTC-USD",
            Side::Buy,
            "60000".parse().unwrap(),
            "0.01".parse().unwrap(),
            1,
        )
        .unwrap();
    let (id, replies) = request(&mut alice, &order.into());
    assert_eq!(replies.len(), 2, "{replies:?}");
    let ServerMsg::ExecReport(first) = replies[0].msg else { panic!("{replies:?}") };
    assert_eq!((first.request_id, first.journal_seq), (id, common::SETUP_SEQ + 1));
    let placed = accepted(&first.event);
    let expected = OrderAccepted {
        order_id: placed.order_id,
        account: ALICE,
        instrument: BTC_USD,
        client_order_id: ClientOrderId(1),
        side: Side::Buy,
        price: Price(6_000_000),
        qty: Qty(100),
        hold: 600_300_000,
    };
    assert_eq!(placed, expected);
    assert_eq!(events(&replies)[1], (id, balance(ALICE, USD, USD_0 - 600_300_000, 600_300_000)));

    let info = common::query(
        &mut alice,
        Query::Order { account: ALICE, order: OrderRef::Client(ClientOrderId(1)) },
    );
    let [Event::OrderInfo(info)] = info[..] else { panic!("{info:?}") };
    assert_eq!(
        (info.order_id, info.remaining, info.filled, info.hold),
        (placed.order_id, Qty(100), Qty(0), 600_300_000)
    );

    let cancel = Cancel { account: ALICE, order: OrderRef::Id(placed.order_id) };
    let replies = command(&mut alice, ClientMsg::Cancel(cancel));
    let cancelled = OrderCancelled {
        order_id: placed.order_id,
        account: ALICE,
        instrument: BTC_USD,
        client_order_id: ClientOrderId(1),
        qty_cancelled: Qty(100),
        reason: CancelReason::User,
    };
    assert_eq!(replies, [Event::Cancelled(cancelled), balance(ALICE, USD, USD_0, 0)]);
    assert_eq!(applied_seq(&mut alice), common::SETUP_SEQ + 2);
    assert!(open_orders(&mut alice, ALICE).is_empty());
    server.stop().unwrap();
}

#[test]
fn a_cross_reaches_both_traders_the_market_data_and_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut alice = common::login(addr, "alice");
    let mut bob = common::login(addr, "bob");
    let mut carol = common::login(addr, "carol");
    let mut admin = common::login(addr, "admin");

    // Carol rests an ask (0.5 BTC at 61 000), then subscribes: her ask is the snapshot.
    let ask = limit(4, BTC_USD, Side::Sell, 6_100_000, 5_000, 1);
    assert_eq!(command(&mut carol, ask.into()).len(), 2);
    // An instrument that does not exist: the depth query's reject, no subscription.
    let id = carol.send(&ClientMsg::Subscribe(InstrumentId(77))).unwrap();
    let ServerMsg::ExecReport(report) = next(&mut carol).msg else { panic!("a report") };
    let unknown = rejected(CommandKind::Query, AccountId(0), 0, RejectReason::UnknownInstrument);
    assert_eq!((report.request_id, report.event), (id, unknown));
    carol.send(&ClientMsg::Subscribe(BTC_USD)).unwrap();
    let level = MdSnapshotLevel {
        instrument: BTC_USD,
        side: Side::Sell,
        price: Price(6_100_000),
        qty: Qty(5_000),
        orders: 1,
    };
    assert_eq!(next(&mut carol).msg, ServerMsg::MdSnapshotLevel(level));
    let end = MdSnapshotEnd { instrument: BTC_USD, md_seq: 1, levels: 1 };
    assert_eq!(next(&mut carol).msg, ServerMsg::MdSnapshotEnd(end));

    // Alice bids 60 000 for 0.01 (maker); bob sells into it (taker).
    let bid = command(&mut alice, limit(2, BTC_USD, Side::Buy, 6_000_000, 100, 11).into());
    let bid = accepted(&bid[0]);
    let sell = command(&mut bob, limit(3, BTC_USD, Side::Sell, 6_000_000, 100, 22).into());
    let taker = accepted(&sell[0]);
    let Event::Fill(fill) = sell[2] else { panic!("{sell:?}") };
    let whole = Fill {
        instrument: BTC_USD,
        trade_id: fill.trade_id,
        price: Price(6_000_000),
        qty: Qty(100),
        taker_side: Side::Sell,
        maker_order: bid.order_id,
        taker_order: taker.order_id,
        maker_account: ALICE,
        taker_account: BOB,
        maker_client_id: ClientOrderId(11),
        taker_client_id: ClientOrderId(22),
        maker_fee: 60_000,
        taker_fee: 300_000,
        maker_remaining: Qty(0),
        taker_remaining: Qty(0),
    };
    // Each trader's copy of the fill hides the other side (PROTOCOL.md section 11).
    let for_taker = Fill {
        maker_order: OrderId(0),
        maker_account: AccountId(0),
        maker_client_id: ClientOrderId(0),
        maker_fee: 0,
        maker_remaining: Qty(0),
        ..whole
    };
    let for_maker = Fill {
        taker_order: OrderId(0),
        taker_account: AccountId(0),
        taker_client_id: ClientOrderId(0),
        taker_fee: 0,
        taker_remaining: Qty(0),
        ..whole
    };
    // Bob sees his own order, hold and balances, never alice's or the fee account's.
    assert_eq!(
        sell,
        [
            sell[0],
            balance(BOB, BTC, BTC_0 - 1_000_000, 1_000_000),
            Event::Fill(for_taker),
            balance(BOB, BTC, BTC_0 - 1_000_000, 0),
            balance(BOB, USD, USD_0 + 600_000_000 - 300_000, 0),
        ]
    );
    // Alice gets the fill of her resting order and her two balances (base, then quote),
    // and nothing of bob's.
    assert_eq!(
        unsolicited(&mut alice),
        [
            Event::Fill(for_maker),
            balance(ALICE, BTC, BTC_0 + 1_000_000, 0),
            balance(ALICE, USD, USD_0 - 600_000_000 - 60_000, 0),
        ]
    );
    // The fee account's owner (admin) sees the fees arrive, and only that.
    assert_eq!(unsolicited(&mut admin), [balance(FEES, USD, 360_000, 0)]);

    // Carol, subscribed, sees the bid appear, the trade, and the bid disappear, each
    // numbered after the snapshot's md_seq; none of the traders' private reports.
    let md: Vec<ServerMsg> = fence(&mut carol).into_iter().map(|r| r.msg).collect();
    let level = |md_seq, qty, orders| {
        ServerMsg::MdLevel(MdLevel {
            instrument: BTC_USD,
            md_seq,
            side: Side::Buy,
            price: Price(6_000_000),
            qty: Qty(qty),
            orders,
        })
    };
    let trade = ServerMsg::MdTrade(MdTrade {
        instrument: BTC_USD,
        md_seq: 3,
        trade_id: fill.trade_id,
        price: Price(6_000_000),
        qty: Qty(100),
        taker_side: Side::Sell,
    });
    assert_eq!(md, [level(2, 100, 1), trade, level(4, 0, 0)]);

    // The ledger to the minor unit, and conservation of USD across the three accounts.
    assert_eq!(
        balances(&mut alice, ALICE),
        [(USD_0 - 600_060_000, 0), (BTC_0 + 1_000_000, 0), (ETH_0, 0)]
    );
    assert_eq!(
        balances(&mut bob, BOB),
        [(USD_0 + 599_700_000, 0), (BTC_0 - 1_000_000, 0), (ETH_0, 0)]
    );
    assert_eq!(balances(&mut admin, FEES), [(360_000, 0), (0, 0), (0, 0)]);
    assert_eq!(
        balances(&mut carol, CAROL),
        [(USD_0, 0), (BTC_0 - 50_000_000, 50_000_000), (ETH_0, 0)]
    );
    assert!(open_orders(&mut alice, ALICE).is_empty());
    assert!(open_orders(&mut bob, BOB).is_empty());

    // After unsubscribing, carol gets no more market data.
    carol.send(&ClientMsg::Unsubscribe(BTC_USD)).unwrap();
    assert_eq!(next(&mut carol).msg, ServerMsg::MdUnsubscribed(BTC_USD));
    command(&mut alice, limit(2, BTC_USD, Side::Buy, 5_900_000, 100, 12).into());
    assert_eq!(fence(&mut carol), []);
    // An Unsubscribe right behind a Subscribe drops the pending snapshot too. Both go in
    // one write, so the gateway reads them together, before the engine's answer to the
    // Subscribe can reach it. (In two writes, a busy machine may let the snapshot out
    // before the Unsubscribe is read, which PROTOCOL.md section 11 allows.)
    let mut both = Vec::new();
    ClientMsg::Subscribe(BTC_USD).encode_into(1_000, &mut both);
    ClientMsg::Unsubscribe(BTC_USD).encode_into(1_001, &mut both);
    carol.send_raw(&both).unwrap();
    assert_eq!(next(&mut carol).msg, ServerMsg::MdUnsubscribed(BTC_USD));
    command(&mut alice, limit(2, BTC_USD, Side::Buy, 5_900_000, 100, 13).into());
    assert_eq!(fence(&mut carol), []);
    server.stop().unwrap();
}

#[test]
fn a_trader_acts_only_on_its_own_accounts_and_sends_no_admin_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut alice = common::login(addr, "alice");
    let mut bob = common::login(addr, "bob");
    let resting = command(&mut bob, limit(3, BTC_USD, Side::Sell, 6_200_000, 100, 7).into());
    let resting = accepted(&resting[0]);
    let seq = applied_seq(&mut alice);

    // Orders, cancels (by engine id or bob's client id), amends and mass cancels on
    // bob's account, and queries of it: each one Rejected 202, nothing else.
    let not_owned = RejectReason::AccountNotOwned;
    let on_bob = [
        (
            ClientMsg::NewOrder(limit(3, BTC_USD, Side::Buy, 6_000_000, 100, 9)),
            rejected(CommandKind::NewOrder, BOB, 9, not_owned),
        ),
        (
            ClientMsg::Cancel(Cancel { account: BOB, order: OrderRef::Id(resting.order_id) }),
            rejected(CommandKind::Cancel, BOB, 0, not_owned),
        ),
        (
            ClientMsg::Cancel(Cancel { account: BOB, order: OrderRef::Client(ClientOrderId(7)) }),
            rejected(CommandKind::Cancel, BOB, 7, not_owned),
        ),
        (
            ClientMsg::Amend(Amend {
                account: BOB,
                order: OrderRef::Id(resting.order_id),
                price: Price(6_200_000),
                qty: Qty(50),
            }),
            rejected(CommandKind::Amend, BOB, 0, not_owned),
        ),
        (
            ClientMsg::MassCancel(MassCancel { account: BOB, instrument: None }),
            rejected(CommandKind::MassCancel, BOB, 0, not_owned),
        ),
    ];
    for (message, expected) in on_bob {
        assert_eq!(command(&mut alice, message), [expected], "{message:?}");
    }
    for query in [
        Query::Balances { account: BOB },
        Query::OpenOrders { account: BOB },
        Query::Order { account: BOB, order: OrderRef::Id(resting.order_id) },
    ] {
        let answer = common::query(&mut alice, query);
        assert_eq!(answer, [rejected(CommandKind::Query, BOB, 0, not_owned)], "{query:?}");
    }

    // Admin messages from a trader never reach the engine: session reject 101 each,
    // echoing the message type, the request id and the client payment id if any.
    let admin_only = [
        (ClientMsg::Deposit(external(ALICE, USD, 1_000_000, 41)), 41),
        (ClientMsg::Withdraw(external(ALICE, USD, 1_000_000, 42)), 42),
        (ClientMsg::CreateAccount(CreateAccount { account: AccountId(99), owner: UserId(2) }), 0),
        (
            ClientMsg::SetAccountStatus(SetAccountStatus {
                account: BOB,
                status: AccountStatus::Frozen,
            }),
            0,
        ),
        (
            ClientMsg::SetInstrumentStatus(SetInstrumentStatus {
                instrument: BTC_USD,
                status: InstrumentStatus::Halted,
                cancel_resting: true,
            }),
            0,
        ),
        (ClientMsg::TakeSnapshot, 0),
        (
            ClientMsg::SetPaymentLimits(SetPaymentLimits {
                asset: USD,
                transfer_max: None,
                velocity_24h: None,
            }),
            0,
        ),
        (
            ClientMsg::SetAccountLimits(SetAccountLimits {
                account: ALICE,
                asset: USD,
                credit_limit: 1_000_000_000,
                velocity_24h: None,
            }),
            0,
        ),
        (ClientMsg::SetAccountBlocked(SetAccountBlocked { account: BOB, blocked: true }), 0),
    ];
    for (message, client_id) in admin_only {
        let (id, replies) = request(&mut alice, &message);
        let reject = SessionReject {
            reason: SessionReason::NotAdmin.code(),
            ref_type: message.msg_type(),
            ref_request_id: id,
            ref_client_id: client_id,
        };
        let got: Vec<ServerMsg> = replies.iter().map(|r| r.msg).collect();
        assert_eq!(got, [ServerMsg::SessionReject(reject)], "{message:?}");
    }

    // Rejected commands are journaled (the engine decided them); the admin messages
    // are not. Bob's order and everybody's money are untouched, and alice goes on.
    assert_eq!(applied_seq(&mut alice), seq + 5);
    let still = open_orders(&mut bob, BOB);
    assert_eq!(still.len(), 1);
    assert_eq!((still[0].order_id, still[0].remaining), (resting.order_id, Qty(100)));
    assert_eq!(balances(&mut bob, BOB), [(USD_0, 0), (BTC_0 - 1_000_000, 1_000_000), (ETH_0, 0)]);
    assert_eq!(balances(&mut alice, ALICE), [(USD_0, 0), (BTC_0, 0), (ETH_0, 0)]);
    let own = command(&mut alice, limit(2, BTC_USD, Side::Buy, 6_000_000, 100, 9).into());
    assert_eq!(accepted(&own[0]).account, ALICE);
    server.stop().unwrap();
}

#[test]
fn the_admin_deposits_withdraws_freezes_halts_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut admin = common::login(addr, "admin");
    let mut alice = common::login(addr, "alice");

    // A deposit: a payment from USD's external account to alice's, recorded after the
    // setup's 33 deposits. The admin gets the result; alice's session the same,
    // unsolicited.
    let since = now_ns();
    let replies = command(&mut admin, ClientMsg::Deposit(external(ALICE, USD, 5_000_000, 1)));
    let at = common::created_at(&replies[0], since);
    let deposit = PaymentInfo {
        payment_id: PaymentId(common::SETUP_PAYMENTS + 1),
        client_payment_id: ClientPaymentId(1),
        kind: PaymentKind::Deposit,
        debit: EXTERNAL_ACCOUNT,
        credit: ALICE,
        asset: USD,
        amount: 5_000_000,
        captured: 5_000_000,
        status: PaymentStatus::Completed,
        created_ns: at,
        deadline_ns: 0,
        resolved_ns: at,
    };
    let expected = [
        Event::Payment { action: PaymentAction::Created, info: deposit },
        balance(ALICE, USD, USD_0 + 5_000_000, 0),
    ];
    assert_eq!(replies, expected);
    assert_eq!(unsolicited(&mut alice), expected);
    // The same deposit again (a retry): nothing moves, the payment is reported as it is,
    // to the admin only.
    let retry = command(&mut admin, ClientMsg::Deposit(external(ALICE, USD, 5_000_000, 1)));
    assert_eq!(retry, [Event::Payment { action: PaymentAction::Duplicate, info: deposit }]);
    assert_eq!(unsolicited(&mut alice), []);
    // The same id for another amount is a conflict, told to the admin only.
    let conflict = command(&mut admin, ClientMsg::Deposit(external(ALICE, USD, 5_000_001, 1)));
    let refused = rejected(CommandKind::Deposit, ALICE, 1, RejectReason::PaymentIdConflict);
    assert_eq!(conflict, [refused]);
    assert_eq!(unsolicited(&mut alice), []);

    let since = now_ns();
    let replies = command(&mut admin, ClientMsg::Withdraw(external(ALICE, USD, 2_000_000, 1)));
    let at = common::created_at(&replies[0], since);
    let withdrawal = PaymentInfo {
        payment_id: PaymentId(common::SETUP_PAYMENTS + 2),
        kind: PaymentKind::Withdrawal,
        debit: ALICE,
        credit: EXTERNAL_ACCOUNT,
        amount: 2_000_000,
        captured: 2_000_000,
        created_ns: at,
        resolved_ns: at,
        ..deposit
    };
    let expected = [
        Event::Payment { action: PaymentAction::Created, info: withdrawal },
        balance(ALICE, USD, USD_0 + 3_000_000, 0),
    ];
    assert_eq!(replies, expected);
    assert_eq!(unsolicited(&mut alice), expected);

    // A new account for alice: she is told, and can trade on it once funded.
    let create = CreateAccount { account: AccountId(50), owner: UserId(2) };
    let created = [Event::AccountCreated { account: AccountId(50), owner: UserId(2) }];
    assert_eq!(command(&mut admin, ClientMsg::CreateAccount(create)), created);
    assert_eq!(unsolicited(&mut alice), created);
    let fund = external(AccountId(50), BTC, 100_000_000, 2);
    assert_eq!(command(&mut admin, ClientMsg::Deposit(fund)).len(), 2);
    assert_eq!(unsolicited(&mut alice).len(), 2);
    let ask = command(&mut alice, limit(50, BTC_USD, Side::Sell, 6_500_000, 10_000, 50).into());
    assert_eq!(ask[1], balance(AccountId(50), BTC, 0, 100_000_000), "the whole BTC held");
    assert_eq!(balances(&mut alice, AccountId(50)), [(0, 0), (0, 100_000_000), (0, 0)]);

    // Freeze: no new orders (203) until unfrozen.
    let order = |coid| ClientMsg::NewOrder(limit(2, BTC_USD, Side::Buy, 6_000_000, 100, coid));
    let status = |status| ClientMsg::SetAccountStatus(SetAccountStatus { account: ALICE, status });
    let frozen = [Event::AccountStatusChanged { account: ALICE, status: AccountStatus::Frozen }];
    assert_eq!(command(&mut admin, status(AccountStatus::Frozen)), frozen);
    assert_eq!(unsolicited(&mut alice), frozen);
    let refused = rejected(CommandKind::NewOrder, ALICE, 1, RejectReason::AccountFrozen);
    assert_eq!(command(&mut alice, order(1)), [refused]);
    let active = [Event::AccountStatusChanged { account: ALICE, status: AccountStatus::Active }];
    assert_eq!(command(&mut admin, status(AccountStatus::Active)), active);
    assert_eq!(unsolicited(&mut alice), active);
    let resting = accepted(&command(&mut alice, order(1))[0]);

    // Halt without cancelling: the resting order stays, new orders are refused (301),
    // cancels still work; resume: orders are accepted again.
    let halt = |status| {
        ClientMsg::SetInstrumentStatus(SetInstrumentStatus {
            instrument: BTC_USD,
            status,
            cancel_resting: false,
        })
    };
    let halted =
        Event::InstrumentStatusChanged { instrument: BTC_USD, status: InstrumentStatus::Halted };
    assert_eq!(command(&mut admin, halt(InstrumentStatus::Halted)), [halted]);
    // Every logged-in session is told of a halt, not only the admin.
    assert_eq!(unsolicited(&mut alice), [halted]);
    assert_eq!(open_orders(&mut alice, ALICE).len(), 1);
    let refused = rejected(CommandKind::NewOrder, ALICE, 2, RejectReason::InstrumentHalted);
    assert_eq!(command(&mut alice, order(2)), [refused]);
    let cancel = Cancel { account: ALICE, order: OrderRef::Id(resting.order_id) };
    assert!(matches!(command(&mut alice, ClientMsg::Cancel(cancel))[0], Event::Cancelled(_)));
    let trading =
        Event::InstrumentStatusChanged { instrument: BTC_USD, status: InstrumentStatus::Trading };
    assert_eq!(command(&mut admin, halt(InstrumentStatus::Trading)), [trading]);
    assert_eq!(unsolicited(&mut alice), [trading]);
    assert!(matches!(command(&mut alice, order(3))[0], Event::Accepted(_)));

    // A snapshot now: at the last applied command, with that command's state hash.
    let seq = applied_seq(&mut admin);
    let (id, replies) = request(&mut admin, &ClientMsg::TakeSnapshot);
    let [Received { msg: ServerMsg::SnapshotTaken(taken), .. }] = replies[..] else {
        panic!("request {id}: {replies:?}")
    };
    assert_eq!(taken.seq, seq);
    let file = snapshot_dir(dir.path()).join(format!("snapshot-{seq:020}.snap"));
    assert!(file.is_file(), "{} exists", file.display());
    // Asked again with nothing applied since: the same answer, the file not rewritten.
    // Writing a snapshot renames a new file into place: a new inode.
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
    let (id, replies) = request(&mut admin, &ClientMsg::TakeSnapshot);
    let [Received { msg: ServerMsg::SnapshotTaken(again), .. }] = replies[..] else {
        panic!("request {id}: {replies:?}")
    };
    assert_eq!(again, taken);
    let again_inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
    assert_eq!(again_inode, inode, "not written again");
    assert_eq!(
        balances(&mut alice, ALICE),
        [(USD_0 + 3_000_000 - 600_300_000, 600_300_000), (BTC_0, 0), (ETH_0, 0)]
    );
    server.stop().unwrap();

    // The journal alone rebuilds the snapshot's state.
    let bounds = ReplayBounds { until_seq: Some(seq), no_snapshot: true, ..Default::default() };
    let rebuilt = replay(dir.path(), bounds).unwrap();
    assert_eq!(rebuilt.engine.state_hash(), taken.state_hash);
}

#[test]
fn cancel_on_disconnect_cancels_only_for_the_sessions_that_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut alice = common::login(addr, "alice");
    let cancel_on_disconnect = LoginOptions { cancel_on_disconnect: true, ..Default::default() };

    // Carol, without the flag: one order placed before logging out, one before
    // dropping the connection. Both stay.
    let mut carol = common::login(addr, "carol");
    command(&mut carol, limit(4, BTC_USD, Side::Sell, 6_300_000, 100, 1).into());
    carol.logout().unwrap();
    let mut carol = common::login(addr, "carol");
    command(&mut carol, limit(4, BTC_USD, Side::Sell, 6_310_000, 100, 2).into());
    drop(carol);

    // Bob, with the flag: two resting asks, then the connection drops. A second bob
    // session (without the flag) rests a third ask and stays connected.
    let mut bob = common::login_with(addr, "bob", cancel_on_disconnect);
    let mut bob_too = common::login(addr, "bob");
    command(&mut bob, limit(3, BTC_USD, Side::Sell, 6_200_000, 100, 1).into());
    command(&mut bob, limit(3, BTC_USD, Side::Sell, 6_250_000, 200, 2).into());
    assert_eq!(unsolicited(&mut bob_too).len(), 4, "the first session's two orders, seen");
    command(&mut bob_too, limit(3, BTC_USD, Side::Sell, 6_270_000, 300, 3).into());
    let asks = |levels: &[fincore_engine::LevelChanged]| -> Vec<i64> {
        levels.iter().filter(|l| l.side == Side::Sell).map(|l| l.price.0).collect()
    };
    assert_eq!(
        asks(&common::depth(&mut alice, BTC_USD)),
        [6_200_000, 6_250_000, 6_270_000, 6_300_000, 6_310_000]
    );
    drop(bob);

    // Cancel-on-disconnect cancels the *user's* resting orders: the remaining session
    // sees the three cancels (request id 0), then the mass cancel's end.
    let mut cancelled = Vec::new();
    loop {
        let received = next(&mut bob_too);
        let ServerMsg::ExecReport(report) = received.msg else { panic!("{received:?}") };
        assert_eq!(report.request_id, 0);
        match report.event {
            Event::Cancelled(c) => {
                assert_eq!(c.reason, CancelReason::MassCancel);
                cancelled.push(c.client_order_id.0);
            }
            Event::Balance(b) => assert_eq!(b.account, BOB),
            Event::MassCancelled { account, count } => {
                assert_eq!((account, count), (BOB, 3));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(cancelled, [1, 2, 3]);

    // Nothing of bob's is left on the book; his money is all available again.
    assert_eq!(asks(&common::depth(&mut alice, BTC_USD)), [6_300_000, 6_310_000]);
    let mut bob = common::login(addr, "bob");
    assert!(open_orders(&mut bob, BOB).is_empty());
    assert_eq!(balances(&mut bob, BOB), [(USD_0, 0), (BTC_0, 0), (ETH_0, 0)]);
    // Carol's two orders survived her logout and her dropped connection.
    let mut carol = common::login(addr, "carol");
    let mut kept: Vec<u64> =
        open_orders(&mut carol, CAROL).iter().map(|o| o.client_order_id.0).collect();
    kept.sort_unstable();
    assert_eq!(kept, [1, 2]);
    assert_eq!(balances(&mut carol, CAROL)[1], (BTC_0 - 2_000_000, 2_000_000));
    server.stop().unwrap();
}

/// Orders and mass cancels from `client` on account 10 (load0), `orders` per round:
/// every round adds `2 * orders` market-data updates. Returns the replies counted.
fn churn_round(client: &mut fincore_gateway::client::Client, round: u64, orders: u64) -> usize {
    let mut batch = Vec::new();
    for i in 0..orders {
        let coid = round * orders + i + 1;
        ClientMsg::NewOrder(limit(10, BTC_USD, Side::Buy, 5_500_000, 1, coid))
            .encode_into(coid, &mut batch);
    }
    ClientMsg::MassCancel(MassCancel { account: AccountId(10), instrument: None })
        .encode_into(0, &mut batch);
    client.send_raw(&batch).unwrap();
    let mut replies = 0;
    loop {
        let received = next(client);
        let ServerMsg::ExecReport(report) = received.msg else { panic!("{received:?}") };
        replies += 1;
        match report.event {
            Event::Accepted(_) | Event::Balance(_) | Event::Cancelled(_) => {}
            Event::MassCancelled { count, .. } => {
                assert_eq!(count as u64, orders);
                return replies;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_slow_consumer_is_disconnected_and_the_others_get_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session.outbound_buffer_max = 64 * 1024;
    config.session.rate_per_sec = 10_000_000;
    config.session.burst = 1_000_000;
    // Room for the slow subscriber, the active subscriber and the trader: a fourth
    // connection (a probe) is refused while all three are open.
    config.session.max_connections = 3;
    let server = common::start(&config);
    let addr = server.local_addr();

    // Two subscribers from the empty book: one never reads again, one reads everything
    // on its own thread until the trader's marker order appears.
    let (mut slow, _, _) = Raw::login(addr, "carol", 60_000, false);
    slow.send(&ClientMsg::Subscribe(BTC_USD));
    let start = MdSnapshotEnd { instrument: BTC_USD, md_seq: 0, levels: 0 };
    assert_eq!(slow.expect().msg, ServerMsg::MdSnapshotEnd(start));
    let (mut active, _, _) = Raw::login(addr, "alice", 60_000, false);
    active.send(&ClientMsg::Subscribe(BTC_USD));
    assert_eq!(active.expect().msg, ServerMsg::MdSnapshotEnd(start));
    const MARKER: Price = Price(5_400_000);
    // How far the active subscriber has read: the trader never gets more than a round
    // ahead of it, so that only the slow session's backlog grows, however the threads
    // are scheduled.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader_seen = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut md_seq = 0;
        loop {
            match active.expect().msg {
                ServerMsg::MdLevel(level) => {
                    assert_eq!(level.md_seq, md_seq + 1, "market data without a gap");
                    md_seq = level.md_seq;
                    reader_seen.store(md_seq, std::sync::atomic::Ordering::Release);
                    if level.price == MARKER {
                        return md_seq;
                    }
                }
                other => panic!("the active subscriber got {other:?}"),
            }
        }
    });

    // The trader churns the book until the slow session is gone: with the connection
    // limit at three, a probe connection is refused (909) while the slow one is open.
    let options = LoginOptions { heartbeat_ms: 60_000, cancel_on_disconnect: false };
    let mut trader = common::login_with(addr, "load0", options);
    const ORDERS: u64 = 100;
    let began = Instant::now();
    let mut rounds = 0;
    loop {
        for _ in 0..25 {
            assert_eq!(churn_round(&mut trader, rounds, ORDERS), 4 * ORDERS as usize + 1);
            let caught_up = Instant::now() + WAIT;
            while seen.load(std::sync::atomic::Ordering::Acquire) < 2 * ORDERS * rounds {
                assert!(
                    !reader.is_finished(),
                    "the active subscriber stopped (its panic is above)"
                );
                assert!(Instant::now() < caught_up, "the active subscriber fell behind");
                std::thread::sleep(Duration::from_micros(200));
            }
            rounds += 1;
        }
        let mut probe = Raw::connect(addr);
        probe.send(&ClientMsg::Login(fincore_gateway::wire::Login::new(
            "load1",
            "load1-secret",
            60_000,
            false,
        )));
        match probe.recv() {
            Incoming::Msg(Received { msg: ServerMsg::Logout(909), .. }) => {}
            Incoming::Msg(Received { msg: ServerMsg::LoginAccepted(_), .. }) => break,
            other => panic!("probe: {other:?}"),
        }
        assert!(
            began.elapsed() < 4 * WAIT,
            "the slow session was never disconnected ({rounds} rounds)"
        );
    }
    // The trader's last request is answered, and the active subscriber saw every update.
    let last = command(&mut trader, limit(10, BTC_USD, Side::Buy, MARKER.0, 7, u64::MAX).into());
    assert!(matches!(last[..], [Event::Accepted(_), Event::Balance(_)]), "{last:?}");
    let published = 2 * ORDERS * rounds + 1;
    assert_eq!(reader.join().unwrap(), published);

    // The slow session ends once its backlog is read: a gap-free prefix of the updates,
    // possibly cut inside a frame, then the end of the stream.
    let bytes = slow.bytes_until_closed();
    let mut offset = 0;
    let mut md_seq = 0;
    let mut seq = 2;
    while let fincore_gateway::wire::Frame::Complete(header, body) =
        fincore_gateway::wire::next_frame(&bytes[offset..])
    {
        seq += 1;
        assert_eq!(header.seq, seq, "outbound sequence without a gap");
        let Ok(ServerMsg::MdLevel(level)) = ServerMsg::decode(header.msg_type, body) else {
            panic!("the slow session got {header:?}")
        };
        assert_eq!(level.md_seq, md_seq + 1);
        md_seq = level.md_seq;
        offset += fincore_gateway::wire::HEADER_LEN + body.len();
    }
    assert!(md_seq < published, "the slow session was cut off ({md_seq} of {published})");
    assert!(
        bytes.len() - offset < fincore_gateway::wire::HEADER_LEN + 64,
        "at most one frame cut short"
    );
    server.stop().unwrap();
}

#[test]
fn a_fast_client_pipelining_a_large_batch_is_not_a_slow_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session.outbound_buffer_max = 64 * 1024;
    let server = common::start(&config);
    let mut trader = common::login(server.local_addr(), "load0");
    // 1 000 orders in one write (71 KB): 2 000 replies (about 144 KB) that the client
    // reads as fast as they come.
    let mut batch = Vec::new();
    for coid in 1..=1_000 {
        ClientMsg::NewOrder(limit(10, BTC_USD, Side::Buy, 5_500_000, 1, coid))
            .encode_into(coid, &mut batch);
    }
    trader.send_raw(&batch).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut replies = 0;
    while replies < 2_000 {
        assert!(Instant::now() < deadline, "{replies} replies of 2000 in {WAIT:?}");
        match trader.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(_)) => replies += 1,
            Ok(None) => {}
            Err(e) => panic!("after {replies} of 2000 replies: {e}"),
        }
    }
    server.stop().unwrap();
}

/// A mass cancel of 6 000 orders is one command that makes 18 000 outbound items, more
/// than the gateway routes in one loop iteration (16 384): the rest is set aside and
/// routed in the next ones. The trader still gets every report once and in order, and
/// a market-data subscriber every level update without a gap.
#[test]
fn a_mass_cancel_larger_than_one_routing_round_arrives_whole_and_in_order() {
    const ORDERS: u64 = 6_000;
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let mut watcher = common::login(server.local_addr(), "carol");
    watcher.send(&ClientMsg::Subscribe(BTC_USD)).unwrap();
    let ServerMsg::MdSnapshotEnd(end) = next(&mut watcher).msg else { panic!("empty book") };
    let mut trader = common::login(server.local_addr(), "load0");
    let mut batch = Vec::new();
    for coid in 1..=ORDERS {
        ClientMsg::NewOrder(limit(10, BTC_USD, Side::Buy, 5_500_000, 1, coid))
            .encode_into(coid, &mut batch);
    }
    ClientMsg::MassCancel(MassCancel { account: AccountId(10), instrument: None })
        .encode_into(0, &mut batch);
    trader.send_raw(&batch).unwrap();
    // Per order: Accepted and Balance, then Cancelled and Balance; then MassCancelled.
    let mut received = Vec::new();
    loop {
        let message = next(&mut trader);
        let done = matches!(
            message.msg,
            ServerMsg::ExecReport(ref r) if matches!(r.event, Event::MassCancelled { .. })
        );
        received.push(message);
        if done {
            break;
        }
    }
    assert_eq!(received.len() as u64, 4 * ORDERS + 1);
    common::assert_gap_free(&received, received[0].seq);
    let events = events(&received);
    let mut cancelled = 0;
    for (i, (request_id, event)) in events.iter().enumerate() {
        match (i as u64) < 2 * ORDERS {
            true => assert!(matches!(event, Event::Accepted(_) | Event::Balance(_)), "{event:?}"),
            false => {
                // The mass cancel's own reports: request id 0, in cancel order.
                assert_eq!(*request_id, 0);
                if let Event::Cancelled(c) = event {
                    cancelled += 1;
                    assert_eq!(c.client_order_id, ClientOrderId(cancelled), "oldest first");
                }
            }
        }
    }
    assert_eq!(cancelled, ORDERS);
    let last = events.last().unwrap().1;
    assert_eq!(last, Event::MassCancelled { account: AccountId(10), count: ORDERS as u32 });
    // The subscriber: one level update per order placed and per order cancelled, their
    // market-data sequence numbers consecutive, ending with an empty level.
    let mut md = Vec::new();
    while md.len() < 2 * ORDERS as usize {
        match next(&mut watcher).msg {
            ServerMsg::MdLevel(level) => md.push(level),
            other => panic!("unexpected {other:?}"),
        }
    }
    for (i, level) in md.iter().enumerate() {
        assert_eq!(level.md_seq, end.md_seq + 1 + i as u64, "md gap at update {i}");
    }
    assert_eq!(md.last().map(|l| (l.qty, l.orders)), Some((Qty(0), 0)));
    server.stop().unwrap();
}

// ---------------------------------------------------------------------------------
// Payments over TCP (PROTOCOL.md sections 9, 11 and 13).
// ---------------------------------------------------------------------------------

/// A `Balance` event with `pending` held for outgoing authorizations.
fn pending_balance(account: AccountId, available: i64, pending: i64) -> Event {
    Event::Balance(fincore_engine::BalanceChanged {
        account,
        asset: USD,
        available,
        held: 0,
        pending,
    })
}

fn transfer(debit: AccountId, credit: AccountId, amount: i64, id: u64) -> ClientMsg {
    ClientMsg::Transfer(fincore_engine::Transfer {
        debit,
        credit,
        asset: USD,
        amount,
        client_payment_id: ClientPaymentId(id),
    })
}

fn authorize(
    debit: AccountId,
    credit: AccountId,
    amount: i64,
    id: u64,
    timeout_s: u32,
) -> ClientMsg {
    ClientMsg::Authorize(fincore_engine::Authorize {
        debit,
        credit,
        asset: USD,
        amount,
        client_payment_id: ClientPaymentId(id),
        timeout_s,
    })
}

fn created(info: PaymentInfo) -> Event {
    Event::Payment { action: PaymentAction::Created, info }
}

/// 1 USD in minor units.
const DOLLAR: i64 = 1_000_000;

#[test]
fn payments_between_traders_reach_both_sides_and_only_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut alice = common::login(addr, "alice");
    let mut bob = common::login(addr, "bob");
    let mut carol = common::login(addr, "carol");
    let mut admin = common::login(addr, "admin");
    let first_payment = common::SETUP_PAYMENTS + 1;

    // A transfer: alice sees the payment and her own balance, bob the payment and his
    // (request id 0); nobody else hears of it.
    let since = now_ns();
    let replies = command(&mut alice, transfer(ALICE, BOB, 100 * DOLLAR, 1));
    let at = common::created_at(&replies[0], since);
    let paid = PaymentInfo {
        payment_id: PaymentId(first_payment),
        client_payment_id: ClientPaymentId(1),
        kind: PaymentKind::Transfer,
        debit: ALICE,
        credit: BOB,
        asset: USD,
        amount: 100 * DOLLAR,
        captured: 100 * DOLLAR,
        status: PaymentStatus::Completed,
        created_ns: at,
        deadline_ns: 0,
        resolved_ns: at,
    };
    assert_eq!(replies, [created(paid), balance(ALICE, USD, USD_0 - 100 * DOLLAR, 0)]);
    assert_eq!(unsolicited(&mut bob), [created(paid), balance(BOB, USD, USD_0 + 100 * DOLLAR, 0)]);
    assert_eq!(unsolicited(&mut carol), []);
    assert_eq!(unsolicited(&mut admin), []);

    // The identical transfer again is a retry: the payment as it is, no balance, told
    // to the sender only (nothing happened); the same id with another amount is a
    // conflict, told to the sender only too.
    let duplicate = [Event::Payment { action: PaymentAction::Duplicate, info: paid }];
    assert_eq!(command(&mut alice, transfer(ALICE, BOB, 100 * DOLLAR, 1)), duplicate);
    assert_eq!(unsolicited(&mut bob), []);
    let conflict = rejected(CommandKind::Transfer, ALICE, 1, RejectReason::PaymentIdConflict);
    assert_eq!(command(&mut alice, transfer(ALICE, BOB, 99 * DOLLAR, 1)), [conflict]);

    // Refusals carry the debit account and the client payment id; nothing moves.
    for (message, kind, account, id, reason) in [
        (
            transfer(ALICE, ALICE, DOLLAR, 2),
            CommandKind::Transfer,
            ALICE,
            2,
            RejectReason::SameAccount,
        ),
        (
            transfer(ALICE, AccountId(999), DOLLAR, 2),
            CommandKind::Transfer,
            ALICE,
            2,
            RejectReason::UnknownCreditAccount,
        ),
        (
            transfer(BOB, ALICE, DOLLAR, 2),
            CommandKind::Transfer,
            BOB,
            2,
            RejectReason::AccountNotOwned,
        ),
        (
            transfer(ALICE, BOB, DOLLAR, 0),
            CommandKind::Transfer,
            ALICE,
            0,
            RejectReason::PaymentIdZero,
        ),
        (
            transfer(ALICE, BOB, common::USD_TRANSFER_MAX + 1, 2),
            CommandKind::Transfer,
            ALICE,
            2,
            RejectReason::AboveTransferMax,
        ),
        (
            authorize(ALICE, BOB, 0, 2, 0),
            CommandKind::Authorize,
            ALICE,
            2,
            RejectReason::AmountNotPositive,
        ),
    ] {
        let refused = rejected(kind, account, id, reason);
        assert_eq!(command(&mut alice, message), [refused], "{message:?}");
    }
    assert_eq!(unsolicited(&mut bob), []);

    // An authorization holds the money in alice's `pending`; carol, to be paid, sees
    // it and her (unchanged) balance.
    let since = now_ns();
    let replies = command(&mut alice, authorize(ALICE, CAROL, 1_000 * DOLLAR, 2, 0));
    let at = common::created_at(&replies[0], since);
    let held = PaymentInfo {
        payment_id: PaymentId(first_payment + 1),
        client_payment_id: ClientPaymentId(2),
        kind: PaymentKind::Authorization,
        credit: CAROL,
        amount: 1_000 * DOLLAR,
        captured: 0,
        status: PaymentStatus::Pending,
        created_ns: at,
        resolved_ns: 0,
        ..paid
    };
    let left = USD_0 - 100 * DOLLAR;
    assert_eq!(
        replies,
        [created(held), pending_balance(ALICE, left - 1_000 * DOLLAR, 1_000 * DOLLAR)]
    );
    assert_eq!(unsolicited(&mut carol), [created(held), balance(CAROL, USD, USD_0, 0)]);
    let pending = common::payment_balances(&mut alice, ALICE);
    assert_eq!(pending[0], (left - 1_000 * DOLLAR, 0, 1_000 * DOLLAR));

    // Carol, the credit side, captures 600 by engine id: she gets 600, the other 400
    // go back to alice's available.
    let since = now_ns();
    let capture = ClientMsg::Capture(fincore_gateway::wire::Capture {
        account: CAROL,
        payment: fincore_engine::PaymentRef::Id(held.payment_id),
        amount: 600 * DOLLAR,
    });
    let replies = command(&mut carol, capture);
    let (action, info) = common::payment_of(&replies[0]);
    assert!((since..=now_ns()).contains(&info.resolved_ns), "{info:?}");
    let captured = PaymentInfo {
        captured: 600 * DOLLAR,
        status: PaymentStatus::Completed,
        resolved_ns: info.resolved_ns,
        ..held
    };
    let captured_event = Event::Payment { action: PaymentAction::Captured, info: captured };
    assert_eq!(action, PaymentAction::Captured);
    assert_eq!(replies, [captured_event, balance(CAROL, USD, USD_0 + 600 * DOLLAR, 0)]);
    let left = left - 600 * DOLLAR;
    assert_eq!(unsolicited(&mut alice), [captured_event, balance(ALICE, USD, left, 0)]);
    // Alice repeats the capture, naming the payment by her client id: a duplicate.
    let again = ClientMsg::Capture(fincore_gateway::wire::Capture {
        account: ALICE,
        payment: fincore_engine::PaymentRef::Client(ClientPaymentId(2)),
        amount: 600 * DOLLAR,
    });
    let duplicate = [Event::Payment { action: PaymentAction::Duplicate, info: captured }];
    assert_eq!(command(&mut alice, again), duplicate);
    assert_eq!(unsolicited(&mut carol), []);
    // Capturing more than was authorized, or a settled payment again: refused.
    let other = ClientMsg::Capture(fincore_gateway::wire::Capture {
        account: ALICE,
        payment: fincore_engine::PaymentRef::Client(ClientPaymentId(2)),
        amount: 0,
    });
    let refused = rejected(CommandKind::Capture, ALICE, 2, RejectReason::PaymentNotPending);
    assert_eq!(command(&mut alice, other), [refused]);

    // A void gives the whole hold back; only the debit account's balance moves.
    let replies = command(&mut alice, authorize(ALICE, CAROL, 300 * DOLLAR, 3, 0));
    let (_, voidable) = common::payment_of(&replies[0]);
    assert_eq!(unsolicited(&mut carol).len(), 2);
    let void = ClientMsg::Void(fincore_gateway::wire::Void {
        account: ALICE,
        payment: fincore_engine::PaymentRef::Client(ClientPaymentId(3)),
    });
    let replies = command(&mut alice, void);
    let (action, voided) = common::payment_of(&replies[0]);
    assert_eq!(action, PaymentAction::Voided);
    assert_eq!(
        voided,
        PaymentInfo { status: PaymentStatus::Voided, resolved_ns: voided.resolved_ns, ..voidable }
    );
    assert_eq!(replies[1..], [balance(ALICE, USD, left, 0)]);
    assert_eq!(unsolicited(&mut carol), [replies[0]]);

    // Queries: one payment by client id (the debit side's), or by engine id from the
    // credit side; an account's history, newest first, setup deposits last.
    let by_client = Query::Payment {
        account: ALICE,
        payment: fincore_engine::PaymentRef::Client(ClientPaymentId(2)),
    };
    assert_eq!(common::query(&mut alice, by_client), [Event::PaymentInfo(captured)]);
    let by_id = Query::Payment {
        account: CAROL,
        payment: fincore_engine::PaymentRef::Id(captured.payment_id),
    };
    assert_eq!(common::query(&mut carol, by_id), [Event::PaymentInfo(captured)]);
    let not_debit = Query::Payment {
        account: CAROL,
        payment: fincore_engine::PaymentRef::Client(ClientPaymentId(2)),
    };
    let unknown = rejected(CommandKind::Query, CAROL, 2, RejectReason::UnknownPayment);
    assert_eq!(common::query(&mut carol, not_debit), [unknown]);
    let history = common::query(&mut alice, Query::Payments { account: ALICE, limit: 10 });
    let infos: Vec<PaymentInfo> = history
        .iter()
        .map(|e| match e {
            Event::PaymentInfo(info) => *info,
            other => panic!("history: {other:?}"),
        })
        .collect();
    assert_eq!(infos[..3], [voided, captured, paid]);
    let setup: Vec<(PaymentKind, u64)> =
        infos[3..].iter().map(|p| (p.kind, p.client_payment_id.0)).collect();
    let base = fincore_gateway::config::SETUP_DEPOSIT_ID_BASE;
    let kind = PaymentKind::Deposit;
    assert_eq!(setup, [(kind, base + 3), (kind, base + 2), (kind, base + 1)]);
    let two = common::query(&mut alice, Query::Payments { account: ALICE, limit: 2 });
    assert_eq!(two, [Event::PaymentInfo(voided), Event::PaymentInfo(captured)]);
    // A trader reads only its own accounts' payments.
    let not_owned = rejected(CommandKind::Query, ALICE, 0, RejectReason::AccountNotOwned);
    let query = Query::Payments { account: ALICE, limit: 10 };
    assert_eq!(common::query(&mut bob, query), [not_owned]);

    // The ledger: every dollar accounted for.
    assert_eq!(balances(&mut alice, ALICE)[0], (USD_0 - 700 * DOLLAR, 0));
    assert_eq!(balances(&mut bob, BOB)[0], (USD_0 + 100 * DOLLAR, 0));
    assert_eq!(balances(&mut carol, CAROL)[0], (USD_0 + 600 * DOLLAR, 0));
    assert_eq!(unsolicited(&mut admin), []);
    server.stop().unwrap();
}

#[test]
fn an_idle_server_expires_an_authorization_with_a_tick() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut alice = common::login(addr, "alice");
    let mut bob = common::login(addr, "bob");

    // 3 s: room for the checks below to finish before it expires on a loaded machine.
    let replies = command(&mut alice, authorize(ALICE, BOB, 50 * DOLLAR, 7, 3));
    let (_, held) = common::payment_of(&replies[0]);
    assert_eq!(held.deadline_ns, held.created_ns + 3_000_000_000);
    assert_eq!(replies[1], pending_balance(ALICE, USD_0 - 50 * DOLLAR, 50 * DOLLAR));
    assert_eq!(unsolicited(&mut bob).len(), 2);
    let seq = applied_seq(&mut alice);

    // Nobody sends anything: at the deadline the server journals a Tick, and both sides
    // hear of the expiry (request id 0); the money is alice's again.
    let ServerMsg::ExecReport(expiry) = next(&mut alice).msg else { panic!("a report") };
    assert_eq!((expiry.request_id, expiry.journal_seq), (0, seq + 1));
    let (action, expired) = common::payment_of(&expiry.event);
    assert_eq!(action, PaymentAction::Expired);
    assert!(expired.resolved_ns >= held.deadline_ns, "{expired:?}");
    let resolved_ns = expired.resolved_ns;
    assert_eq!(expired, PaymentInfo { status: PaymentStatus::Expired, resolved_ns, ..held });
    let ServerMsg::ExecReport(restored) = next(&mut alice).msg else { panic!("a report") };
    assert_eq!(restored.event, balance(ALICE, USD, USD_0, 0));
    assert_eq!(unsolicited(&mut alice), []);
    assert_eq!(unsolicited(&mut bob), [expiry.event]);
    assert_eq!(applied_seq(&mut alice), seq + 1, "one Tick journaled");

    // Too late to capture.
    let capture = ClientMsg::Capture(fincore_gateway::wire::Capture {
        account: BOB,
        payment: fincore_engine::PaymentRef::Id(held.payment_id),
        amount: 0,
    });
    let refused = rejected(CommandKind::Capture, BOB, 0, RejectReason::PaymentNotPending);
    assert_eq!(command(&mut bob, capture), [refused]);
    let exit = server.stop().unwrap();
    // The Tick is in the journal: a replay expires the same payment at the same place.
    let bounds = ReplayBounds { no_snapshot: true, ..Default::default() };
    assert_eq!(replay(dir.path(), bounds).unwrap().engine.state_hash(), exit.engine.state_hash);
}

#[test]
fn the_payment_operator_deposits_withdraws_and_reads_but_does_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut payops = common::login(addr, "payops");
    assert_eq!((payops.session().user, payops.session().admin), (UserId(5), false));
    let mut carol = common::login(addr, "carol");

    // Deposits and withdrawals on anyone's account: the operator sees everything its
    // commands cause, the owner the same, unsolicited.
    let deposit = command(&mut payops, ClientMsg::Deposit(external(CAROL, USD, 70 * DOLLAR, 5)));
    let (_, info) = common::payment_of(&deposit[0]);
    assert_eq!(
        (info.kind, info.debit, info.credit),
        (PaymentKind::Deposit, EXTERNAL_ACCOUNT, CAROL)
    );
    assert_eq!(deposit[1], balance(CAROL, USD, USD_0 + 70 * DOLLAR, 0));
    assert_eq!(unsolicited(&mut carol), deposit);
    // Withdrawal ids are the account's own namespace: 5 is free there.
    let withdraw = command(&mut payops, ClientMsg::Withdraw(external(CAROL, USD, 20 * DOLLAR, 5)));
    let (_, info) = common::payment_of(&withdraw[0]);
    assert_eq!(
        (info.kind, info.debit, info.credit),
        (PaymentKind::Withdrawal, CAROL, EXTERNAL_ACCOUNT)
    );
    assert_eq!(withdraw[1], balance(CAROL, USD, USD_0 + 50 * DOLLAR, 0));
    assert_eq!(unsolicited(&mut carol), withdraw);
    // A withdrawal above the asset's transfer_max is refused by the engine.
    let big = ClientMsg::Withdraw(external(CAROL, USD, common::USD_TRANSFER_MAX + 1, 6));
    let refused = rejected(CommandKind::Withdraw, CAROL, 6, RejectReason::AboveTransferMax);
    assert_eq!(command(&mut payops, big), [refused]);

    // It reads every account.
    assert_eq!(balances(&mut payops, CAROL)[0], (USD_0 + 50 * DOLLAR, 0));
    assert_eq!(balances(&mut payops, ALICE)[0], (USD_0, 0));
    let history = common::query(&mut payops, Query::Payments { account: CAROL, limit: 2 });
    assert_eq!(
        history,
        [Event::PaymentInfo(info), Event::PaymentInfo(common::payment_of(&deposit[0]).1)]
    );

    // But it trades and pays for nobody: the engine refuses (202), and the admin
    // messages are session rejects (101).
    let order = ClientMsg::NewOrder(limit(4, BTC_USD, Side::Buy, 6_000_000, 100, 1));
    let refused = rejected(CommandKind::NewOrder, CAROL, 1, RejectReason::AccountNotOwned);
    assert_eq!(command(&mut payops, order), [refused]);
    let refused = rejected(CommandKind::Transfer, CAROL, 9, RejectReason::AccountNotOwned);
    assert_eq!(command(&mut payops, transfer(CAROL, ALICE, DOLLAR, 9)), [refused]);
    for message in [
        ClientMsg::CreateAccount(CreateAccount { account: AccountId(60), owner: UserId(5) }),
        ClientMsg::SetAccountStatus(SetAccountStatus {
            account: CAROL,
            status: AccountStatus::Frozen,
        }),
        ClientMsg::TakeSnapshot,
        ClientMsg::SetAccountBlocked(SetAccountBlocked { account: CAROL, blocked: true }),
    ] {
        let (id, replies) = request(&mut payops, &message);
        let reject = SessionReject {
            reason: SessionReason::NotAdmin.code(),
            ref_type: message.msg_type(),
            ref_request_id: id,
            ref_client_id: 0,
        };
        let got: Vec<ServerMsg> = replies.iter().map(|r| r.msg).collect();
        assert_eq!(got, [ServerMsg::SessionReject(reject)], "{message:?}");
    }
    assert_eq!(unsolicited(&mut carol), []);
    server.stop().unwrap();
}

#[test]
fn payment_limits_credit_and_the_deny_list_are_enforced_and_announced() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(&common::config(dir.path()));
    let addr = server.local_addr();
    let mut admin = common::login(addr, "admin");
    let mut alice = common::login(addr, "alice");
    let mut bob = common::login(addr, "bob");
    let mut carol = common::login(addr, "carol");

    // The deny-list: the account's owner is told; no payment may debit or credit it.
    let block = |blocked| ClientMsg::SetAccountBlocked(SetAccountBlocked { account: BOB, blocked });
    let blocked = [Event::AccountBlocked { account: BOB, blocked: true }];
    assert_eq!(command(&mut admin, block(true)), blocked);
    assert_eq!(unsolicited(&mut bob), blocked);
    assert_eq!(unsolicited(&mut alice), []);
    let refused = rejected(CommandKind::Transfer, ALICE, 1, RejectReason::CreditAccountBlocked);
    assert_eq!(command(&mut alice, transfer(ALICE, BOB, DOLLAR, 1)), [refused]);
    let refused = rejected(CommandKind::Transfer, BOB, 1, RejectReason::AccountBlocked);
    assert_eq!(command(&mut bob, transfer(BOB, ALICE, DOLLAR, 1)), [refused]);
    let refused = rejected(CommandKind::SetAccountBlocked, BOB, 0, RejectReason::StatusUnchanged);
    assert_eq!(command(&mut admin, block(true)), [refused]);
    let unblocked = [Event::AccountBlocked { account: BOB, blocked: false }];
    assert_eq!(command(&mut admin, block(false)), unblocked);
    assert_eq!(unsolicited(&mut bob), unblocked);
    // The refused transfer's id was never used: the same id now goes through.
    assert_eq!(command(&mut alice, transfer(ALICE, BOB, DOLLAR, 1)).len(), 2);
    assert_eq!(unsolicited(&mut bob).len(), 2);

    // An asset's limits: told to the admin only (no account is concerned).
    let usd_limits = |transfer_max, velocity_24h| {
        ClientMsg::SetPaymentLimits(SetPaymentLimits { asset: USD, transfer_max, velocity_24h })
    };
    let set = command(&mut admin, usd_limits(Some(1_000 * DOLLAR), Some(1_500 * DOLLAR)));
    let expected = Event::PaymentLimitsSet {
        asset: USD,
        transfer_max: Some(1_000 * DOLLAR),
        velocity_24h: Some(1_500 * DOLLAR),
    };
    assert_eq!(set, [expected]);
    assert_eq!(unsolicited(&mut alice), []);
    // Alice has sent 1 dollar today: 1 000 + 499 fit the 1 500 of the day, 1 more
    // does not; a single payment above 1 000 never fits.
    let refused = rejected(CommandKind::Transfer, ALICE, 2, RejectReason::AboveTransferMax);
    assert_eq!(command(&mut alice, transfer(ALICE, BOB, 1_000 * DOLLAR + 1, 2)), [refused]);
    assert_eq!(command(&mut alice, transfer(ALICE, BOB, 1_000 * DOLLAR, 2)).len(), 2);
    assert_eq!(command(&mut alice, transfer(ALICE, BOB, 499 * DOLLAR, 3)).len(), 2);
    let refused = rejected(CommandKind::Authorize, ALICE, 4, RejectReason::VelocityLimitExceeded);
    assert_eq!(command(&mut alice, authorize(ALICE, BOB, 1, 4, 0)), [refused]);
    assert_eq!(unsolicited(&mut bob).len(), 4);

    // An account's own limits override the asset's default; its owner is told.
    let alice_limits = ClientMsg::SetAccountLimits(SetAccountLimits {
        account: ALICE,
        asset: USD,
        credit_limit: 0,
        velocity_24h: Some(10_000 * DOLLAR),
    });
    let set = [Event::AccountLimitsSet {
        account: ALICE,
        asset: USD,
        credit_limit: 0,
        velocity_24h: Some(10_000 * DOLLAR),
    }];
    assert_eq!(command(&mut admin, alice_limits), set);
    assert_eq!(unsolicited(&mut alice), set);
    assert_eq!(command(&mut alice, authorize(ALICE, BOB, 1, 4, 0)).len(), 2);

    // Carol's credit line (5 000 USD in the demo): with the asset's limits lifted, she
    // may pay up to 5 000 more than she has, and not a minor unit beyond.
    assert_eq!(command(&mut admin, usd_limits(None, None)).len(), 1);
    let all = USD_0 + common::CAROL_USD_CREDIT;
    let replies = command(&mut carol, transfer(CAROL, ALICE, all, 1));
    assert_eq!(replies[1], balance(CAROL, USD, -common::CAROL_USD_CREDIT, 0));
    let refused = rejected(CommandKind::Transfer, CAROL, 2, RejectReason::InsufficientBalance);
    assert_eq!(command(&mut carol, transfer(CAROL, ALICE, 1, 2)), [refused]);
    // The credit line cannot be cut below what she owes.
    let cut = ClientMsg::SetAccountLimits(SetAccountLimits {
        account: CAROL,
        asset: USD,
        credit_limit: common::CAROL_USD_CREDIT - 1,
        velocity_24h: None,
    });
    let [Event::Rejected(refused)] = command(&mut admin, cut)[..] else { panic!("refused") };
    assert_eq!(
        (refused.kind, refused.account, refused.reason),
        (CommandKind::SetAccountLimits, CAROL, RejectReason::CreditLimitBelowUsage)
    );
    // Trading never uses credit: a buy needs money she has.
    let buy = ClientMsg::NewOrder(limit(4, BTC_USD, Side::Buy, 6_000_000, 1, 1));
    let refused = rejected(CommandKind::NewOrder, CAROL, 1, RejectReason::InsufficientBalance);
    assert_eq!(command(&mut carol, buy), [refused]);
    server.stop().unwrap();
}
