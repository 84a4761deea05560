//! Payment rule tests: transfers, two-phase authorizations (capture, void, expiry),
//! deposits and withdrawals, idempotency by client payment id, and payment risk (credit
//! limits, per-payment maximum, rolling 24-hour velocity, deny-list).
//!
//! The harness here, [`Bank`], is `common::scenario::Scenario` with the clock in the
//! test's hands: expiry and the velocity window are functions of engine time, so these
//! tests stamp commands at exact nanoseconds ([`Bank::at`]). Like `Scenario`, it checks
//! every engine invariant after every command; in addition it checks conservation after
//! every command: per asset, the sum over every account of `available + held + pending`
//! (negative balances on credit included) equals what the test deposited minus what it
//! withdrew, counted by the harness from the commands it sent.
//!
//! Amounts are minor units of USD (6 decimals) unless said otherwise. The four traders
//! of the standard universe start with `START_QUOTE` USD and `START_BASE` coins each.
//! The universe's setup records eight deposits, payment ids 1..=8 (trader k: USD
//! `2k - 1`, coins `2k`, client ids the same numbers in the external namespace), so the
//! first payment of a test has id 9 ([`FIRST_ID`]).
//!
//! Reject reasons are named, never numbered, in these tests: the payment codes are part
//! of the wire protocol and their numbers are pinned in `rules.rs`.

#[allow(dead_code)]
#[path = "common/scenario.rs"]
mod scenario;

use fincore_engine::testkit;
use fincore_engine::*;
use scenario::{
    ADMIN, ALICE, ALICE_ACCOUNT, AUTO_CID, BOB, BOB_ACCOUNT, CAROL, CAROL_ACCOUNT, COIN, DAVE,
    DAVE_ACCOUNT, START_BASE, START_QUOTE, Scenario, USD, buy,
};

const SECOND: u64 = 1_000_000_000;
const HOUR: u64 = 3_600 * SECOND;
/// The velocity window.
const DAY: u64 = 24 * HOUR;

/// Time between two commands the test does not stamp itself.
const STEP_NS: u64 = 1_000;

/// Client payment id placeholder: [`Bank::apply`] replaces it with a fresh one (the same
/// value as `scenario::AUTO_PID`).
const AUTO: u64 = u64::MAX;

/// Fresh client payment ids start here, far above the ids tests spell out.
const FRESH_PID: u64 = 1_000_000;

/// The first payment id after the universe's eight deposits.
const FIRST_ID: u64 = 9;

/// A user id that is never created (the baseline of purity checks).
const NOBODY: UserId = UserId(u32::MAX);

/// A user that does not exist either, for the `UnknownUser` tests.
const STRANGER: UserId = UserId(99);

/// A fifth trader with nothing deposited (created by [`Bank::add_erin`]).
const ERIN: UserId = UserId(10);
const ERIN_ACCOUNT: AccountId = AccountId(10);

/// A payment operator (created by [`Bank::add_operator`]).
const OPERATOR: UserId = UserId(20);

/// Account ids the observation covers (every id these tests create is below).
const OBSERVED_ACCOUNTS: u32 = 16;

// ==== the harness =====================================================================

/// An engine on the standard universe with a clock the test controls.
struct Bank {
    engine: Engine,
    /// Stamp of the next command.
    next_time_ns: u64,
    next_pid: u64,
    /// Per asset: deposited minus withdrawn, from the accepted commands.
    outside: [i128; ASSETS_MAX],
    /// The last command applied (to replay it on a restored copy).
    last_command: Option<Command>,
}

impl Bank {
    /// One instrument, four funded traders, `Scenario::limits()`.
    fn new() -> Bank {
        Bank::with(Scenario::limits())
    }

    fn with(limits: EngineLimits) -> Bank {
        let mut bank = Bank {
            engine: Engine::new(limits),
            next_time_ns: STEP_NS,
            next_pid: FRESH_PID,
            outside: [0; ASSETS_MAX],
            last_command: None,
        };
        for body in testkit::universe(1, 4) {
            bank.admin(body);
        }
        bank
    }

    /// Stamps the next command at exactly `time_ns` (the ones after it follow one
    /// microsecond apart).
    fn at(&mut self, time_ns: u64) {
        self.next_time_ns = time_ns;
    }

    /// Engine time.
    fn now(&self) -> u64 {
        self.engine.time_ns()
    }

    /// Stamps and applies one command; checks every invariant and conservation.
    fn apply(&mut self, user: UserId, body: CommandBody) -> Vec<Event> {
        let body = self.fill_pid(body);
        let time_ns = self.next_time_ns;
        self.next_time_ns = time_ns.saturating_add(STEP_NS);
        let command = Command { seq: self.engine.last_seq() + 1, time_ns, user, body };
        let mut events = Vec::new();
        self.engine.apply(&command, &mut events);
        self.last_command = Some(command);
        if let Err(broken) = self.engine.check_invariants() {
            panic!("invariant broken after {command:?}: {broken}");
        }
        assert!(!events.is_empty(), "every command emits at least one event");
        let created = events
            .iter()
            .any(|e| matches!(e, Event::Payment { action: PaymentAction::Created, .. }));
        match body {
            CommandBody::Deposit { asset, amount, .. } if created => {
                self.outside[asset.0 as usize] += i128::from(amount);
            }
            CommandBody::Withdraw { asset, amount, .. } if created => {
                self.outside[asset.0 as usize] -= i128::from(amount);
            }
            _ => {}
        }
        self.assert_conserved();
        events
    }

    /// Applies a command that must not be rejected.
    fn ok(&mut self, user: UserId, body: CommandBody) -> Vec<Event> {
        let events = self.apply(user, body);
        assert_not_rejected(&events);
        events
    }

    /// Applies an admin command that must not be rejected.
    fn admin(&mut self, body: CommandBody) -> Vec<Event> {
        self.ok(ADMIN, body)
    }

    /// Applies a new payment that must be created, and returns it.
    fn create(&mut self, user: UserId, body: CommandBody) -> PaymentInfo {
        created(&self.ok(user, body))
    }

    /// Asserts that `body` from `user` is refused with exactly one `Rejected` carrying
    /// `reason`, and that it changed nothing (see [`Bank::expect_unchanged`]).
    fn expect_reject(&mut self, user: UserId, body: CommandBody, reason: RejectReason) {
        let body = self.fill_pid(body);
        self.expect_unchanged(user, body, vec![reject_event(&body, reason)]);
    }

    /// Asserts that `body` from `user` emits exactly `expected` and changes nothing but
    /// the sequence number and engine time, checked two ways as `Scenario::expect_reject`
    /// does: the state hash equals that of a clone advanced to the same sequence number
    /// and time by a command from a user that does not exist; and everything readable
    /// (balances with `pending`, open orders, payment histories, the payment count and
    /// the next deadline) is identical before and after.
    fn expect_unchanged(&mut self, user: UserId, body: CommandBody, expected: Vec<Event>) {
        let body = self.fill_pid(body);
        let before = (self.observe(), self.engine.payment_count(), self.engine.next_deadline());
        let mut baseline = self.engine.clone();
        let events = self.apply(user, body);
        assert_eq!(events, expected, "for {body:?}");
        let command = self.last_command.expect("applied");
        let noop = Command {
            seq: command.seq,
            time_ns: command.time_ns,
            user: NOBODY,
            body: CommandBody::CreateUser { user: NOBODY, role: Role::Trader },
        };
        let mut noop_events = Vec::new();
        baseline.apply(&noop, &mut noop_events);
        let unknown_user = |r: &Rejected| r.reason == RejectReason::UnknownUser;
        assert!(matches!(&noop_events[..], [Event::Rejected(r)] if unknown_user(r)));
        assert_eq!(baseline.last_seq(), self.engine.last_seq());
        assert_eq!(baseline.time_ns(), self.engine.time_ns());
        assert_eq!(self.engine.state_hash(), baseline.state_hash(), "hash moved: {body:?}");
        let after = (self.observe(), self.engine.payment_count(), self.engine.next_deadline());
        assert_eq!(after, before, "observable state moved: {body:?}");
    }

    /// Answers `query` as `user`.
    fn query(&self, user: UserId, query: Query) -> Vec<Event> {
        let mut out = Vec::new();
        self.engine.query(user, &query, &mut out);
        out
    }

    /// `(available, held, pending)` of `account` in `asset`, through the Balances query.
    fn balance(&self, account: AccountId, asset: AssetId) -> (i64, i64, i64) {
        let answer = self.query(ADMIN, Query::Balances { account });
        let found = answer.iter().find_map(|event| match event {
            Event::BalanceInfo(b) if b.asset == asset => Some((b.available, b.held, b.pending)),
            _ => None,
        });
        found.unwrap_or_else(|| panic!("no balance of {asset:?} in {answer:?}"))
    }

    /// The sum of `available + held + pending` of `asset` over every account, read
    /// through Balances queries.
    fn total(&self, asset: AssetId) -> i128 {
        let mut sum = 0;
        for id in 0..self.engine.limits().accounts_max {
            for event in self.query(ADMIN, Query::Balances { account: AccountId(id) }) {
                if let Event::BalanceInfo(b) = event
                    && b.asset == asset
                {
                    sum += i128::from(b.available) + i128::from(b.held);
                    sum += i128::from(b.pending);
                }
            }
        }
        sum
    }

    /// Conservation: every asset's balances sum to deposits minus withdrawals, which is
    /// also the engine's supply (minus the external account's balance).
    fn assert_conserved(&self) {
        for index in 0..ASSETS_MAX {
            let asset = AssetId(index as u16);
            let Some(info) = self.engine.asset_info(asset) else { continue };
            let outside = self.outside[index];
            assert_eq!(self.total(asset), outside, "asset {index}: balances vs money in");
            assert_eq!(i128::from(info.supply), outside, "asset {index}: supply vs money in");
        }
    }

    /// Everything readable about accounts `0..OBSERVED_ACCOUNTS`.
    fn observe(&self) -> Vec<Event> {
        observe(&self.engine)
    }

    /// `account`'s payments, newest first, at most `limit`, read by `user`.
    fn history(&self, user: UserId, account: AccountId, limit: u16) -> Vec<PaymentInfo> {
        let answer = self.query(user, Query::Payments { account, limit });
        let Some((Event::QueryDone { items }, infos)) = answer.split_last() else {
            panic!("no QueryDone: {answer:?}");
        };
        let infos: Vec<PaymentInfo> = infos
            .iter()
            .map(|e| match e {
                Event::PaymentInfo(info) => *info,
                other => panic!("not a PaymentInfo: {other:?}"),
            })
            .collect();
        assert_eq!(*items as usize, infos.len());
        infos
    }

    /// The ids of `account`'s payments, newest first.
    fn history_ids(&self, account: AccountId, limit: u16) -> Vec<u64> {
        self.history(ADMIN, account, limit).iter().map(|p| p.payment_id.0).collect()
    }

    /// The `Payment` query's answer.
    fn payment(&self, user: UserId, account: AccountId, payment: PaymentRef) -> Vec<Event> {
        self.query(user, Query::Payment { account, payment })
    }

    /// Snapshots the engine and continues on the restored copy.
    fn restore(&mut self) {
        let restored = Engine::from_snapshot(&self.engine.snapshot()).expect("restores");
        assert_eq!(restored.state_hash(), self.engine.state_hash());
        assert_eq!(observe(&restored), self.observe());
        self.engine = restored;
    }

    fn add_trader(&mut self, user: UserId, account: AccountId) {
        self.admin(CommandBody::CreateUser { user, role: Role::Trader });
        self.admin(CommandBody::CreateAccount { account, owner: user });
    }

    /// Erin: a trader whose account holds nothing.
    fn add_erin(&mut self) {
        self.add_trader(ERIN, ERIN_ACCOUNT);
    }

    fn add_operator(&mut self) {
        self.admin(CommandBody::CreateUser { user: OPERATOR, role: Role::Operator });
    }

    /// Opens `account` for `owner` and closes it again (it is empty).
    fn closed_account(&mut self, account: AccountId, owner: UserId) {
        self.admin(CommandBody::CreateAccount { account, owner });
        self.admin(status(account, AccountStatus::Closed));
    }

    /// Replaces the placeholder client ids ([`AUTO`], `AUTO_CID`) with fresh ones.
    fn fill_pid(&mut self, body: CommandBody) -> CommandBody {
        let mut next = self.next_pid;
        let mut fresh = |id: &mut ClientPaymentId| {
            if id.0 == AUTO {
                *id = ClientPaymentId(next);
                next += 1;
            }
        };
        let mut body = body;
        match &mut body {
            CommandBody::Deposit { client_payment_id, .. }
            | CommandBody::Withdraw { client_payment_id, .. } => fresh(client_payment_id),
            CommandBody::Transfer(t) => fresh(&mut t.client_payment_id),
            CommandBody::Authorize(a) => fresh(&mut a.client_payment_id),
            // `scenario::buy` leaves the client order id to the harness (`AUTO_CID`).
            CommandBody::NewOrder(order) if order.client_order_id == AUTO_CID => {
                order.client_order_id = ClientOrderId(next);
                next += 1;
            }
            _ => {}
        }
        self.next_pid = next;
        body
    }
}

/// Everything readable about accounts `0..OBSERVED_ACCOUNTS` of `engine`: balances,
/// open orders and payment histories (a missing account answers a reject, which is part
/// of the observation too).
fn observe(engine: &Engine) -> Vec<Event> {
    let mut all = Vec::new();
    for id in 0..OBSERVED_ACCOUNTS {
        let account = AccountId(id);
        engine.query(ADMIN, &Query::Balances { account }, &mut all);
        engine.query(ADMIN, &Query::OpenOrders { account }, &mut all);
        engine.query(ADMIN, &Query::Payments { account, limit: PAYMENTS_PAGE_MAX }, &mut all);
    }
    all
}

// ==== command and event builders ======================================================

fn transfer(debit: AccountId, credit: AccountId, amount: i64, id: u64) -> CommandBody {
    let client_payment_id = ClientPaymentId(id);
    CommandBody::Transfer(Transfer { debit, credit, asset: USD, amount, client_payment_id })
}

fn authorize(
    debit: AccountId,
    credit: AccountId,
    amount: i64,
    id: u64,
    timeout_s: u32,
) -> CommandBody {
    let client_payment_id = ClientPaymentId(id);
    let a = Authorize { debit, credit, asset: USD, amount, client_payment_id, timeout_s };
    CommandBody::Authorize(a)
}

fn deposit(account: AccountId, asset: AssetId, amount: i64, id: u64) -> CommandBody {
    CommandBody::Deposit { account, asset, amount, client_payment_id: ClientPaymentId(id) }
}

fn withdraw(account: AccountId, asset: AssetId, amount: i64, id: u64) -> CommandBody {
    CommandBody::Withdraw { account, asset, amount, client_payment_id: ClientPaymentId(id) }
}

/// The same payment command in another asset.
fn in_asset(body: CommandBody, asset: AssetId) -> CommandBody {
    match body {
        CommandBody::Transfer(t) => CommandBody::Transfer(Transfer { asset, ..t }),
        CommandBody::Authorize(a) => CommandBody::Authorize(Authorize { asset, ..a }),
        CommandBody::Deposit { account, amount, client_payment_id, .. } => {
            CommandBody::Deposit { account, asset, amount, client_payment_id }
        }
        CommandBody::Withdraw { account, amount, client_payment_id, .. } => {
            CommandBody::Withdraw { account, asset, amount, client_payment_id }
        }
        other => panic!("not a new payment: {other:?}"),
    }
}

fn capture(account: AccountId, payment: PaymentRef, amount: i64) -> CommandBody {
    CommandBody::Capture { account, payment, amount }
}

fn void(account: AccountId, payment: PaymentRef) -> CommandBody {
    CommandBody::Void { account, payment }
}

fn by_id(id: u64) -> PaymentRef {
    PaymentRef::Id(PaymentId(id))
}

fn by_client(id: u64) -> PaymentRef {
    PaymentRef::Client(ClientPaymentId(id))
}

fn id_of(info: &PaymentInfo) -> PaymentRef {
    PaymentRef::Id(info.payment_id)
}

fn payment_limits(asset: AssetId, transfer_max: Option<i64>, velocity: Option<i64>) -> CommandBody {
    CommandBody::SetPaymentLimits { asset, transfer_max, velocity_24h: velocity }
}

fn account_limits(
    account: AccountId,
    asset: AssetId,
    credit_limit: i64,
    velocity: Option<i64>,
) -> CommandBody {
    CommandBody::SetAccountLimits { account, asset, credit_limit, velocity_24h: velocity }
}

fn block(account: AccountId, blocked: bool) -> CommandBody {
    CommandBody::SetAccountBlocked { account, blocked }
}

fn status(account: AccountId, status: AccountStatus) -> CommandBody {
    CommandBody::SetAccountStatus { account, status }
}

fn bal(account: AccountId, asset: AssetId, available: i64, held: i64, pending: i64) -> Event {
    Event::Balance(BalanceChanged { account, asset, available, held, pending })
}

fn payment_event(action: PaymentAction, info: PaymentInfo) -> Event {
    Event::Payment { action, info }
}

/// The payment a command created: its first event must be `Payment` (`Created`).
fn created(events: &[Event]) -> PaymentInfo {
    match events.first() {
        Some(Event::Payment { action: PaymentAction::Created, info }) => *info,
        _ => panic!("no Payment(Created) first: {events:?}"),
    }
}

/// The `Rejected` event `body` gets for `reason`.
fn reject_event(body: &CommandBody, reason: RejectReason) -> Event {
    let (account, client_id) = body.reject_context();
    Event::Rejected(Rejected { kind: body.kind(), account, client_id, reason })
}

fn query_reject(account: AccountId, client_id: u64, reason: RejectReason) -> Vec<Event> {
    let kind = CommandKind::Query;
    vec![Event::Rejected(Rejected { kind, account, client_id, reason })]
}

fn info_answer(info: PaymentInfo) -> Vec<Event> {
    vec![Event::PaymentInfo(info), Event::QueryDone { items: 1 }]
}

fn assert_not_rejected(events: &[Event]) {
    let rejected = events.iter().any(|e| matches!(e, Event::Rejected(_)));
    assert!(!rejected, "rejected: {events:?}");
}

// ==== reject reasons ==================================================================

/// The reasons that exist for payments only; each has a test below (as do the reused
/// ones: `UnknownUser`, `NotAdmin`, `UnknownAccount`, `AccountClosed`, `AccountNotOwned`,
/// `AccountFrozen`, `ArithmeticOverflow`, `InsufficientBalance`, `UnknownAsset`,
/// `InvalidDefinition`, `AmountNotPositive`, `StatusUnchanged`).
const PAYMENT_REASONS: &[RejectReason] = &[
    RejectReason::AccountBlocked,
    RejectReason::PaymentIdZero,
    RejectReason::SameAccount,
    RejectReason::UnknownCreditAccount,
    RejectReason::CreditAccountClosed,
    RejectReason::CreditAccountBlocked,
    RejectReason::AboveTransferMax,
    RejectReason::VelocityLimitExceeded,
    RejectReason::PaymentIdConflict,
    RejectReason::UnknownPayment,
    RejectReason::PaymentNotPending,
    RejectReason::CaptureAboveAuthorized,
    RejectReason::PaymentsFull,
    RejectReason::CreditLimitBelowUsage,
];

#[test]
fn every_payment_reject_reason_has_a_test_here() {
    // The payment reasons are the ones after `AccountInUse` (the last setup reason),
    // plus `AccountBlocked` among the account reasons. A new one fails this test until
    // it is listed above and tested below.
    let after_setup =
        RejectReason::ALL.iter().copied().skip_while(|&r| r != RejectReason::AccountInUse).skip(1);
    let expected: Vec<RejectReason> =
        std::iter::once(RejectReason::AccountBlocked).chain(after_setup).collect();
    assert_eq!(PAYMENT_REASONS, &expected[..]);
}

#[test]
fn reject_unknown_user_for_every_payment_command_and_query() {
    let mut s = Bank::new();
    let pending = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 1, 0));
    let bodies = [
        transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7),
        authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7, 5),
        capture(ALICE_ACCOUNT, id_of(&pending), 0),
        void(ALICE_ACCOUNT, by_client(1)),
        deposit(ALICE_ACCOUNT, USD, 100, 7),
        withdraw(ALICE_ACCOUNT, USD, 100, 7),
        payment_limits(USD, Some(1), None),
        account_limits(ALICE_ACCOUNT, USD, 1, None),
        block(ALICE_ACCOUNT, true),
        CommandBody::Tick,
        // Precedence: who is acting comes first, whatever else is wrong.
        transfer(AccountId(9), AccountId(9), 0, 0),
    ];
    for body in bodies {
        s.expect_reject(STRANGER, body, RejectReason::UnknownUser);
    }
    let history = Query::Payments { account: ALICE_ACCOUNT, limit: 10 };
    let answer = s.query(STRANGER, history);
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, 0, RejectReason::UnknownUser));
    let answer = s.payment(STRANGER, ALICE_ACCOUNT, by_client(1));
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, 1, RejectReason::UnknownUser));
}

#[test]
fn reject_not_admin_for_external_payments_and_limits() {
    let mut s = Bank::new();
    s.add_operator();
    // A trader can neither fund nor drain its own account, nor set any limit or tick.
    for body in [
        deposit(ALICE_ACCOUNT, USD, 1, AUTO),
        withdraw(ALICE_ACCOUNT, USD, 1, AUTO),
        payment_limits(USD, Some(1_000), None),
        account_limits(ALICE_ACCOUNT, USD, 1_000, None),
        block(BOB_ACCOUNT, true),
        CommandBody::Tick,
        // Precedence: the role comes before the account (unknown) and the amount (0).
        deposit(AccountId(9), USD, 0, AUTO),
    ] {
        s.expect_reject(ALICE, body, RejectReason::NotAdmin);
    }
    // The operator deposits and withdraws, but is no admin.
    for body in [
        payment_limits(USD, Some(1_000), None),
        account_limits(ALICE_ACCOUNT, USD, 1_000, None),
        block(ALICE_ACCOUNT, true),
        CommandBody::Tick,
    ] {
        s.expect_reject(OPERATOR, body, RejectReason::NotAdmin);
    }
}

#[test]
fn reject_unknown_account_on_either_end_of_the_command() {
    let mut s = Bank::new();
    let nowhere = AccountId(9);
    for (user, body) in [
        (ALICE, transfer(nowhere, BOB_ACCOUNT, 100, AUTO)),
        (ALICE, authorize(nowhere, BOB_ACCOUNT, 100, AUTO, 0)),
        (ALICE, capture(nowhere, by_id(1), 0)),
        (ALICE, void(nowhere, by_id(1))),
        (ADMIN, deposit(nowhere, USD, 100, AUTO)),
        (ADMIN, withdraw(nowhere, USD, 100, AUTO)),
        (ADMIN, account_limits(nowhere, USD, 0, Some(5))),
        (ADMIN, block(nowhere, true)),
        // The external account is no account a command can name.
        (ALICE, transfer(EXTERNAL_ACCOUNT, BOB_ACCOUNT, 100, AUTO)),
        (ADMIN, deposit(EXTERNAL_ACCOUNT, USD, 100, AUTO)),
        (ADMIN, withdraw(EXTERNAL_ACCOUNT, USD, 100, AUTO)),
        // Precedence: the account before the client id (0) and the amount (0).
        (ALICE, transfer(nowhere, BOB_ACCOUNT, 0, 0)),
    ] {
        s.expect_reject(user, body, RejectReason::UnknownAccount);
    }
    let answer = s.payment(ADMIN, nowhere, by_id(1));
    assert_eq!(answer, query_reject(nowhere, 0, RejectReason::UnknownAccount));
}

#[test]
fn reject_account_closed_debit_and_deposit_to_it() {
    let mut s = Bank::new();
    let spare = AccountId(5);
    s.closed_account(spare, ALICE);
    for (user, body) in [
        (ALICE, transfer(spare, BOB_ACCOUNT, 100, AUTO)),
        (ALICE, authorize(spare, BOB_ACCOUNT, 100, AUTO, 0)),
        (ADMIN, deposit(spare, USD, 100, AUTO)),
        (ADMIN, withdraw(spare, USD, 100, AUTO)),
        (ADMIN, account_limits(spare, USD, 100, None)),
        (ADMIN, block(spare, true)),
        // Precedence: a closed debit account beats an unknown credit account.
        (ALICE, transfer(spare, AccountId(9), 100, AUTO)),
    ] {
        s.expect_reject(user, body, RejectReason::AccountClosed);
    }
    // Precedence: ownership and the client id are checked before the account's status.
    s.expect_reject(BOB, transfer(spare, BOB_ACCOUNT, 100, AUTO), RejectReason::AccountNotOwned);
    s.expect_reject(ALICE, transfer(spare, BOB_ACCOUNT, 100, 0), RejectReason::PaymentIdZero);
}

#[test]
fn reject_account_not_owned_even_for_an_admin() {
    let mut s = Bank::new();
    s.add_operator();
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, 100, 1, 0));
    // Only the debit account's owner pays from it: no admin or operator override.
    for user in [BOB, ADMIN, OPERATOR] {
        let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO);
        s.expect_reject(user, body, RejectReason::AccountNotOwned);
        let body = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 0);
        s.expect_reject(user, body, RejectReason::AccountNotOwned);
        // Captures and voids name an account of the acting user.
        let body = capture(ALICE_ACCOUNT, id_of(&held), 0);
        s.expect_reject(user, body, RejectReason::AccountNotOwned);
        s.expect_reject(user, void(CAROL_ACCOUNT, id_of(&held)), RejectReason::AccountNotOwned);
    }
    // Precedence: ownership before the client id (0) and the amount (0).
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 0, 0);
    s.expect_reject(BOB, body, RejectReason::AccountNotOwned);
    // A trader cannot read another's payments.
    let answer = s.query(BOB, Query::Payments { account: ALICE_ACCOUNT, limit: 5 });
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, 0, RejectReason::AccountNotOwned));
    let answer = s.payment(BOB, ALICE_ACCOUNT, id_of(&held));
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, 0, RejectReason::AccountNotOwned));
}

#[test]
fn reject_account_frozen_debit_but_a_frozen_account_still_receives() {
    let mut s = Bank::new();
    // Authorized before the freeze: the hold stays, but nobody can capture it while the
    // account is frozen (a capture sends from it), neither side's owner.
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, 300, 1, 0));
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Frozen));
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 0)),
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 100, AUTO)),
        // Precedence: frozen before blocked credit / unknown credit.
        (ALICE, transfer(ALICE_ACCOUNT, AccountId(9), 100, AUTO)),
        (ALICE, capture(ALICE_ACCOUNT, id_of(&held), 0)),
        (CAROL, capture(CAROL_ACCOUNT, id_of(&held), 100)),
    ] {
        s.expect_reject(user, body, RejectReason::AccountFrozen);
    }
    // A frozen account receives a transfer and a deposit.
    let events = s.ok(BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 1_000, AUTO));
    let alice = START_QUOTE - 300 + 1_000;
    assert_eq!(
        events[1..],
        [bal(BOB_ACCOUNT, USD, START_QUOTE - 1_000, 0, 0), bal(ALICE_ACCOUNT, USD, alice, 0, 300)]
    );
    let events = s.admin(deposit(ALICE_ACCOUNT, USD, 2_000, AUTO));
    assert_eq!(events[1..], [bal(ALICE_ACCOUNT, USD, alice + 2_000, 0, 300)]);
    // Unfrozen, the authorization is captured, and Carol is paid.
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Active));
    let events = s.ok(CAROL, capture(CAROL_ACCOUNT, id_of(&held), 0));
    assert_eq!(
        events[1..],
        [
            bal(ALICE_ACCOUNT, USD, alice + 2_000, 0, 0),
            bal(CAROL_ACCOUNT, USD, START_QUOTE + 300, 0, 0)
        ]
    );
}

#[test]
fn reject_account_blocked_debit_and_deposit_to_it() {
    let mut s = Bank::new();
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 300, 1, 0));
    let events = s.admin(block(ALICE_ACCOUNT, true));
    assert_eq!(events, vec![Event::AccountBlocked { account: ALICE_ACCOUNT, blocked: true }]);
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 0)),
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 100, AUTO)),
        (ADMIN, deposit(ALICE_ACCOUNT, USD, 100, AUTO)),
        // A blocked debit cannot be captured from, by either side.
        (ALICE, capture(ALICE_ACCOUNT, id_of(&held), 0)),
        (BOB, capture(BOB_ACCOUNT, id_of(&held), 100)),
        // Precedence: blocked before same account, amount 0, blocked credit.
        (ALICE, transfer(ALICE_ACCOUNT, ALICE_ACCOUNT, 100, AUTO)),
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 0, AUTO)),
    ] {
        s.expect_reject(user, body, RejectReason::AccountBlocked);
    }
    // A blocked account cannot receive either (the credit side's reason).
    let body = transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 100, AUTO);
    s.expect_reject(BOB, body, RejectReason::CreditAccountBlocked);
    // A void moves no money between accounts: it releases the hold even while blocked.
    let events = s.ok(ALICE, void(ALICE_ACCOUNT, id_of(&held)));
    assert_eq!(events[1..], [bal(ALICE_ACCOUNT, USD, START_QUOTE, 0, 0)]);
    // Off the list, it pays again.
    s.admin(block(ALICE_ACCOUNT, false));
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO));
}

#[test]
fn reject_arithmetic_overflow_of_an_authorization_deadline() {
    let mut s = Bank::new();
    // Half a second before the end of time: a one-second timeout cannot be represented.
    s.at(u64::MAX - SECOND / 2);
    for timeout_s in [1, u32::MAX] {
        let body = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, timeout_s);
        s.expect_reject(ALICE, body, RejectReason::ArithmeticOverflow);
    }
    // Precedence: the deadline is the very last check; funds come first.
    let body = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, START_QUOTE + 1, AUTO, 1);
    s.expect_reject(ALICE, body, RejectReason::InsufficientBalance);
    // Without a timeout there is no deadline to compute.
    let info = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 0));
    assert_eq!((info.status, info.deadline_ns), (PaymentStatus::Pending, 0));
    assert_eq!(s.engine.next_deadline(), None);
}

#[test]
fn reject_arithmetic_overflow_of_supply_plus_credit_limits() {
    let mut s = Bank::new();
    let supply = 4 * START_QUOTE;
    let room = i64::MAX - supply;
    s.expect_reject(
        ADMIN,
        deposit(ALICE_ACCOUNT, USD, room + 1, AUTO),
        RejectReason::ArithmeticOverflow,
    );
    // A credit limit takes room: every balance stays within supply + credit limits.
    s.admin(account_limits(BOB_ACCOUNT, USD, 1_000, None));
    let body = deposit(ALICE_ACCOUNT, USD, room - 1_000 + 1, AUTO);
    s.expect_reject(ADMIN, body, RejectReason::ArithmeticOverflow);
    s.admin(deposit(ALICE_ACCOUNT, USD, room - 1_000, AUTO));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD).0, START_QUOTE + room - 1_000);
    s.expect_reject(ADMIN, deposit(CAROL_ACCOUNT, USD, 1, AUTO), RejectReason::ArithmeticOverflow);
    // And a credit limit needs room too.
    let body = account_limits(CAROL_ACCOUNT, USD, 1, None);
    s.expect_reject(ADMIN, body, RejectReason::ArithmeticOverflow);
    let body = account_limits(BOB_ACCOUNT, USD, 1_001, None);
    s.expect_reject(ADMIN, body, RejectReason::ArithmeticOverflow);
    // Bob's limit back to 0 frees its room for Carol's.
    s.admin(account_limits(BOB_ACCOUNT, USD, 0, None));
    s.admin(account_limits(CAROL_ACCOUNT, USD, 1_000, None));
    // A withdrawal frees room for a deposit; other assets have their own bound.
    s.admin(withdraw(ALICE_ACCOUNT, USD, 5, AUTO));
    s.admin(deposit(DAVE_ACCOUNT, USD, 5, AUTO));
    s.admin(deposit(DAVE_ACCOUNT, COIN, 5, AUTO));
}

#[test]
fn reject_insufficient_balance_and_exactly_enough_passes() {
    let mut s = Bank::new();
    let too_much = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, START_QUOTE + 1, AUTO);
    s.expect_reject(ALICE, too_much, RejectReason::InsufficientBalance);
    let body = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, START_QUOTE + 1, AUTO, 0);
    s.expect_reject(ALICE, body, RejectReason::InsufficientBalance);
    let body = withdraw(ALICE_ACCOUNT, USD, START_QUOTE + 1, AUTO);
    s.expect_reject(ADMIN, body, RejectReason::InsufficientBalance);
    // Precedence: funds before velocity (both would fail).
    s.admin(payment_limits(USD, None, Some(10)));
    s.expect_reject(ALICE, too_much, RejectReason::InsufficientBalance);
    s.admin(payment_limits(USD, None, None));
    // Exactly everything passes, and leaves nothing.
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, START_QUOTE, AUTO));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (0, 0, 0));
    s.expect_reject(
        ALICE,
        transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1, AUTO),
        RejectReason::InsufficientBalance,
    );
    // Money held by a resting order cannot be paid away.
    let bid = buy(BOB_ACCOUNT, 10_000, 1_000);
    s.ok(BOB, CommandBody::NewOrder(bid));
    let (available, held, _) = s.balance(BOB_ACCOUNT, USD);
    assert_eq!(held, 100_050_000);
    let body = transfer(BOB_ACCOUNT, CAROL_ACCOUNT, available + 1, AUTO);
    s.expect_reject(BOB, body, RejectReason::InsufficientBalance);
    s.ok(BOB, transfer(BOB_ACCOUNT, CAROL_ACCOUNT, available, AUTO));
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (0, held, 0));
}

#[test]
fn reject_unknown_asset() {
    let mut s = Bank::new();
    let nothing = AssetId(9);
    for (user, body) in [
        (ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO), nothing)),
        (ALICE, in_asset(authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 5), nothing)),
        (ADMIN, deposit(ALICE_ACCOUNT, nothing, 100, AUTO)),
        (ADMIN, withdraw(ALICE_ACCOUNT, nothing, 100, AUTO)),
        // Beyond the asset table.
        (ADMIN, deposit(ALICE_ACCOUNT, AssetId(ASSETS_MAX as u16), 100, AUTO)),
        (ADMIN, payment_limits(nothing, Some(1), None)),
        (ADMIN, account_limits(ALICE_ACCOUNT, nothing, 1, None)),
        // Precedence: the asset before the amount (0) and the limits (invalid).
        (ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 0, AUTO), nothing)),
        (ADMIN, payment_limits(nothing, Some(0), Some(-1))),
    ] {
        s.expect_reject(user, body, RejectReason::UnknownAsset);
    }
    // Precedence: the credit account before the asset.
    let body = in_asset(transfer(ALICE_ACCOUNT, AccountId(9), 100, AUTO), nothing);
    s.expect_reject(ALICE, body, RejectReason::UnknownCreditAccount);
}

#[test]
fn reject_invalid_definition_of_payment_limits() {
    let mut s = Bank::new();
    for body in [
        payment_limits(USD, Some(0), None),
        payment_limits(USD, Some(-5), None),
        payment_limits(USD, None, Some(0)),
        payment_limits(USD, Some(10), Some(-1)),
        account_limits(ALICE_ACCOUNT, USD, -1, None),
        account_limits(ALICE_ACCOUNT, USD, 0, Some(0)),
        account_limits(ALICE_ACCOUNT, USD, 10, Some(-3)),
    ] {
        s.expect_reject(ADMIN, body, RejectReason::InvalidDefinition);
    }
    // The smallest valid ones pass and are reported as set.
    let events = s.admin(payment_limits(USD, Some(1), Some(1)));
    let set = Event::PaymentLimitsSet { asset: USD, transfer_max: Some(1), velocity_24h: Some(1) };
    assert_eq!(events, vec![set]);
    let events = s.admin(account_limits(ALICE_ACCOUNT, USD, 0, Some(1)));
    let set = Event::AccountLimitsSet {
        account: ALICE_ACCOUNT,
        asset: USD,
        credit_limit: 0,
        velocity_24h: Some(1),
    };
    assert_eq!(events, vec![set]);
}

#[test]
fn reject_amount_not_positive() {
    let mut s = Bank::new();
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 1, 0));
    let moved = s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 2));
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 0, AUTO)),
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, -1, AUTO)),
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, i64::MIN, AUTO)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 0, AUTO, 0)),
        (ADMIN, deposit(ALICE_ACCOUNT, USD, 0, AUTO)),
        (ADMIN, deposit(ALICE_ACCOUNT, USD, -100, AUTO)),
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 0, AUTO)),
        // A capture of 0 means "all of it"; below zero is refused.
        (ALICE, capture(ALICE_ACCOUNT, id_of(&held), -1)),
        (BOB, capture(BOB_ACCOUNT, id_of(&held), i64::MIN)),
        // Precedence: the capture amount before the payment's kind.
        (ALICE, capture(ALICE_ACCOUNT, id_of(&moved), -1)),
    ] {
        s.expect_reject(user, body, RejectReason::AmountNotPositive);
    }
    // Precedence: the amount before the per-payment maximum and a full table.
    s.admin(payment_limits(USD, Some(10), None));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, -100, AUTO);
    s.expect_reject(ALICE, body, RejectReason::AmountNotPositive);
}

#[test]
fn reject_status_unchanged_for_the_deny_list() {
    let mut s = Bank::new();
    s.expect_reject(ADMIN, block(ALICE_ACCOUNT, false), RejectReason::StatusUnchanged);
    s.admin(block(ALICE_ACCOUNT, true));
    s.expect_reject(ADMIN, block(ALICE_ACCOUNT, true), RejectReason::StatusUnchanged);
    let events = s.admin(block(ALICE_ACCOUNT, false));
    assert_eq!(events, vec![Event::AccountBlocked { account: ALICE_ACCOUNT, blocked: false }]);
}

#[test]
fn reject_payment_id_zero() {
    let mut s = Bank::new();
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 0)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 0, 5)),
        (ADMIN, deposit(ALICE_ACCOUNT, USD, 100, 0)),
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 100, 0)),
        // Precedence: the id before the same account and the amount.
        (ALICE, transfer(ALICE_ACCOUNT, ALICE_ACCOUNT, 0, 0)),
    ] {
        s.expect_reject(user, body, RejectReason::PaymentIdZero);
    }
    // Precedence: the id before the account's status (frozen, blocked).
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Frozen));
    s.admin(block(ALICE_ACCOUNT, true));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 0);
    s.expect_reject(ALICE, body, RejectReason::PaymentIdZero);
}

#[test]
fn reject_same_account() {
    let mut s = Bank::new();
    for body in [
        transfer(ALICE_ACCOUNT, ALICE_ACCOUNT, 100, AUTO),
        authorize(ALICE_ACCOUNT, ALICE_ACCOUNT, 100, AUTO, 0),
        // Precedence: before the asset (unknown) and the amount (0).
        in_asset(transfer(ALICE_ACCOUNT, ALICE_ACCOUNT, 0, AUTO), AssetId(9)),
    ] {
        s.expect_reject(ALICE, body, RejectReason::SameAccount);
    }
}

#[test]
fn reject_unknown_credit_account() {
    let mut s = Bank::new();
    for body in [
        transfer(ALICE_ACCOUNT, AccountId(9), 100, AUTO),
        authorize(ALICE_ACCOUNT, AccountId(9), 100, AUTO, 0),
        // Money only leaves to the external account by a withdrawal.
        transfer(ALICE_ACCOUNT, EXTERNAL_ACCOUNT, 100, AUTO),
        authorize(ALICE_ACCOUNT, EXTERNAL_ACCOUNT, 100, AUTO, 0),
        // Precedence: before the amount (0).
        transfer(ALICE_ACCOUNT, AccountId(9), 0, AUTO),
    ] {
        s.expect_reject(ALICE, body, RejectReason::UnknownCreditAccount);
    }
}

#[test]
fn reject_credit_account_closed_on_payment_and_on_capture() {
    let mut s = Bank::new();
    let (closed, payee) = (AccountId(5), AccountId(6));
    s.closed_account(closed, BOB);
    s.admin(CommandBody::CreateAccount { account: payee, owner: CAROL });
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, payee, 700, 1, 0));
    s.admin(status(payee, AccountStatus::Closed));
    for body in [
        transfer(ALICE_ACCOUNT, closed, 100, AUTO),
        authorize(ALICE_ACCOUNT, closed, 100, AUTO, 0),
        capture(ALICE_ACCOUNT, id_of(&held), 0),
        // Precedence: the credit account before the amount (0).
        transfer(ALICE_ACCOUNT, closed, 0, AUTO),
    ] {
        s.expect_reject(ALICE, body, RejectReason::CreditAccountClosed);
    }
    // The hold can still be voided.
    let events = s.ok(ALICE, void(ALICE_ACCOUNT, id_of(&held)));
    assert_eq!(events[1..], [bal(ALICE_ACCOUNT, USD, START_QUOTE, 0, 0)]);
}

#[test]
fn reject_credit_account_blocked_on_payment_and_on_capture() {
    let mut s = Bank::new();
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 700, 1, 0));
    s.admin(block(BOB_ACCOUNT, true));
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 0)),
        (ALICE, capture(ALICE_ACCOUNT, id_of(&held), 0)),
        (BOB, capture(BOB_ACCOUNT, id_of(&held), 0)),
        // Precedence: the credit account before the asset (unknown).
        (ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO), AssetId(9))),
    ] {
        s.expect_reject(user, body, RejectReason::CreditAccountBlocked);
    }
    s.admin(block(BOB_ACCOUNT, false));
    let events = s.ok(BOB, capture(BOB_ACCOUNT, id_of(&held), 0));
    assert_eq!(
        events[1..],
        [
            bal(ALICE_ACCOUNT, USD, START_QUOTE - 700, 0, 0),
            bal(BOB_ACCOUNT, USD, START_QUOTE + 700, 0, 0)
        ]
    );
}

#[test]
fn reject_above_transfer_max_and_exactly_the_max_passes() {
    let mut s = Bank::new();
    s.add_erin();
    s.admin(payment_limits(USD, Some(1_000), None));
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_001, AUTO)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_001, AUTO, 0)),
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 1_001, AUTO)),
        // Precedence: the maximum before the funds (Erin has nothing).
        (ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 1_001, AUTO)),
    ] {
        s.expect_reject(user, body, RejectReason::AboveTransferMax);
    }
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, AUTO));
    s.ok(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, AUTO, 0));
    s.admin(withdraw(ALICE_ACCOUNT, USD, 1_000, AUTO));
    // Deposits are not limited, and the limit is the asset's only.
    s.admin(deposit(ERIN_ACCOUNT, USD, 1_000_000, AUTO));
    s.ok(ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000_000, AUTO), COIN));
    // Lifted, it no longer applies.
    s.admin(payment_limits(USD, None, None));
    s.ok(ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 1_000_000, AUTO));
}

#[test]
fn reject_velocity_limit_exceeded() {
    let mut s = Bank::new();
    s.admin(payment_limits(USD, None, Some(1_000)));
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 600, AUTO));
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 401, AUTO)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 401, AUTO, 0)),
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 401, AUTO)),
    ] {
        s.expect_reject(user, body, RejectReason::VelocityLimitExceeded);
    }
    // Up to the limit inclusive.
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 400, AUTO));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    // Other assets and other accounts have their own headroom.
    s.ok(ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 5_000, AUTO), COIN));
    s.ok(BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 1_000, AUTO));
}

#[test]
fn reject_payment_id_conflict_for_any_other_field() {
    let mut s = Bank::new();
    s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7));
    s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 8, 5));
    s.create(ADMIN, deposit(ALICE_ACCOUNT, USD, 100, 500));
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 101, 7)),
        (ALICE, transfer(ALICE_ACCOUNT, CAROL_ACCOUNT, 100, 7)),
        (ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7), COIN)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7, 0)),
        // Withdrawals share the account's namespace.
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 100, 7)),
        // An authorization differs by its timeout too.
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 8, 6)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 8, 0)),
        (ALICE, authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, 100, 8, 5)),
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 8)),
        // Every deposit shares the external account's namespace, across assets and
        // credit accounts.
        (ADMIN, deposit(ALICE_ACCOUNT, COIN, 100, 500)),
        (ADMIN, deposit(BOB_ACCOUNT, USD, 100, 500)),
        (ADMIN, deposit(ALICE_ACCOUNT, USD, 99, 500)),
        // Precedence: idempotency before the amount (0) and the asset (unknown) checks.
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 0, 7)),
        (ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7), AssetId(9))),
    ] {
        s.expect_reject(user, body, RejectReason::PaymentIdConflict);
    }
    // Precedence: idempotency before the account's status: frozen and blocked, a
    // conflicting retry is still a conflict (an exact one is still a duplicate, below).
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Frozen));
    s.admin(block(ALICE_ACCOUNT, true));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 101, 7);
    s.expect_reject(ALICE, body, RejectReason::PaymentIdConflict);
}

#[test]
fn reject_unknown_payment_by_id_by_client_id_and_of_other_accounts() {
    let mut s = Bank::new();
    let bob_to_carol = s.create(BOB, authorize(BOB_ACCOUNT, CAROL_ACCOUNT, 100, 3, 0));
    s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 42, 0));
    for (user, body) in [
        (ALICE, capture(ALICE_ACCOUNT, by_id(999), 0)),
        (ALICE, capture(ALICE_ACCOUNT, by_client(999), 0)),
        (ALICE, void(ALICE_ACCOUNT, by_id(999))),
        (ALICE, void(ALICE_ACCOUNT, by_client(999))),
        (ALICE, void(ALICE_ACCOUNT, by_id(0))),
        (ALICE, void(ALICE_ACCOUNT, by_id(u64::MAX))),
        // A payment between two other accounts.
        (ALICE, capture(ALICE_ACCOUNT, id_of(&bob_to_carol), 0)),
        (ALICE, void(ALICE_ACCOUNT, id_of(&bob_to_carol))),
        // Client ids are the debit account's: Bob (the payee) cannot name Alice's 42,
        // and Alice's own client id 3 is not Bob's 3.
        (BOB, capture(BOB_ACCOUNT, by_client(42), 0)),
        (ALICE, void(ALICE_ACCOUNT, by_client(3))),
        // Precedence: the payment before the amount (negative).
        (ALICE, capture(ALICE_ACCOUNT, by_id(999), -1)),
    ] {
        s.expect_reject(user, body, RejectReason::UnknownPayment);
    }
    // The queries answer the same.
    let answer = s.payment(ALICE, ALICE_ACCOUNT, by_id(999));
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, 0, RejectReason::UnknownPayment));
    let answer = s.payment(ALICE, ALICE_ACCOUNT, id_of(&bob_to_carol));
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, 0, RejectReason::UnknownPayment));
    let answer = s.payment(BOB, BOB_ACCOUNT, by_client(42));
    assert_eq!(answer, query_reject(BOB_ACCOUNT, 42, RejectReason::UnknownPayment));
}

/// Deposits are keyed by client id in the external account's namespace; admins and
/// operators (who make them) find them there, traders get `UnknownAccount` as before.
#[test]
fn a_deposit_is_found_by_client_id_on_the_external_account() {
    let mut s = Bank::new();
    s.add_operator();
    let made = s.create(OPERATOR, deposit(ALICE_ACCOUNT, USD, 500, 42));
    for user in [OPERATOR, ADMIN] {
        let answer = s.payment(user, EXTERNAL_ACCOUNT, by_client(42));
        assert_eq!(answer, vec![Event::PaymentInfo(made), Event::QueryDone { items: 1 }]);
        let answer = s.payment(user, EXTERNAL_ACCOUNT, id_of(&made));
        assert_eq!(answer, vec![Event::PaymentInfo(made), Event::QueryDone { items: 1 }]);
        let answer = s.payment(user, EXTERNAL_ACCOUNT, by_client(43));
        assert_eq!(answer, query_reject(EXTERNAL_ACCOUNT, 43, RejectReason::UnknownPayment));
    }
    // The client id is not the credit account's; a trader cannot read the external one.
    let answer = s.payment(ALICE, ALICE_ACCOUNT, by_client(42));
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, 42, RejectReason::UnknownPayment));
    let answer = s.payment(ALICE, EXTERNAL_ACCOUNT, by_client(42));
    assert_eq!(answer, query_reject(EXTERNAL_ACCOUNT, 42, RejectReason::UnknownAccount));
}

#[test]
fn reject_payment_not_pending() {
    let mut s = Bank::new();
    let moved = s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 1));
    let voided = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 200, 2, 0));
    s.ok(ALICE, void(ALICE_ACCOUNT, id_of(&voided)));
    let captured = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 300, 3, 0));
    s.ok(BOB, capture(BOB_ACCOUNT, id_of(&captured), 120));
    let start = s.now();
    let expired = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 400, 4, 5));
    s.at(start + 10 * SECOND);
    s.admin(CommandBody::Tick);
    for (user, body) in [
        // Not an authorization: a transfer, a deposit (universe payment 1).
        (ALICE, capture(ALICE_ACCOUNT, id_of(&moved), 0)),
        (BOB, void(BOB_ACCOUNT, id_of(&moved))),
        (ALICE, capture(ALICE_ACCOUNT, by_id(1), 0)),
        (ALICE, void(ALICE_ACCOUNT, by_id(1))),
        // Voided: no capture (a void again is a duplicate).
        (ALICE, capture(ALICE_ACCOUNT, id_of(&voided), 0)),
        (BOB, capture(BOB_ACCOUNT, id_of(&voided), 200)),
        // Captured with another amount (the same amount is a duplicate), or voided.
        (ALICE, capture(ALICE_ACCOUNT, id_of(&captured), 0)),
        (ALICE, capture(ALICE_ACCOUNT, id_of(&captured), 121)),
        (ALICE, void(ALICE_ACCOUNT, id_of(&captured))),
        // Expired: neither.
        (ALICE, capture(ALICE_ACCOUNT, id_of(&expired), 0)),
        (ALICE, capture(ALICE_ACCOUNT, by_client(4), 400)),
        (BOB, void(BOB_ACCOUNT, id_of(&expired))),
        // Precedence: not pending before capture above the authorized amount.
        (ALICE, capture(ALICE_ACCOUNT, id_of(&voided), 201)),
        (ALICE, capture(ALICE_ACCOUNT, id_of(&moved), 101)),
    ] {
        s.expect_reject(user, body, RejectReason::PaymentNotPending);
    }
}

#[test]
fn reject_capture_above_authorized() {
    let mut s = Bank::new();
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, 1, 0));
    let body = capture(ALICE_ACCOUNT, id_of(&held), 1_001);
    s.expect_reject(ALICE, body, RejectReason::CaptureAboveAuthorized);
    let body = capture(BOB_ACCOUNT, id_of(&held), i64::MAX);
    s.expect_reject(BOB, body, RejectReason::CaptureAboveAuthorized);
    // Precedence: above authorized before a blocked credit account.
    s.admin(block(BOB_ACCOUNT, true));
    let body = capture(ALICE_ACCOUNT, id_of(&held), 1_001);
    s.expect_reject(ALICE, body, RejectReason::CaptureAboveAuthorized);
    s.admin(block(BOB_ACCOUNT, false));
    // Exactly the authorized amount passes.
    let events = s.ok(ALICE, capture(ALICE_ACCOUNT, id_of(&held), 1_000));
    assert_eq!(
        events[1..],
        [
            bal(ALICE_ACCOUNT, USD, START_QUOTE - 1_000, 0, 0),
            bal(BOB_ACCOUNT, USD, START_QUOTE + 1_000, 0, 0)
        ]
    );
}

#[test]
fn reject_payments_full_but_retries_and_captures_still_work() {
    // The universe records 8 deposits; two more fit.
    let limits = EngineLimits { payments_max: 10, ..Scenario::limits() };
    let mut s = Bank::with(limits);
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 500, 1, 0));
    let moved = s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 2));
    assert_eq!(s.engine.payment_count(), 10);
    for (user, body) in [
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO)),
        (ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 0)),
        (ADMIN, deposit(ALICE_ACCOUNT, USD, 100, AUTO)),
        (ADMIN, withdraw(ALICE_ACCOUNT, USD, 100, AUTO)),
        // Precedence: a full table before the funds.
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 2 * START_QUOTE, AUTO)),
    ] {
        s.expect_reject(user, body, RejectReason::PaymentsFull);
    }
    // Precedence: the per-payment maximum before a full table.
    s.admin(payment_limits(USD, Some(1_000), None));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_001, AUTO);
    s.expect_reject(ALICE, body, RejectReason::AboveTransferMax);
    // A retry needs no new record: still a duplicate. A capture neither.
    let retry = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 2);
    s.expect_unchanged(ALICE, retry, vec![payment_event(PaymentAction::Duplicate, moved)]);
    let events = s.ok(BOB, capture(BOB_ACCOUNT, id_of(&held), 0));
    assert!(matches!(events[0], Event::Payment { action: PaymentAction::Captured, .. }));
    assert_eq!(s.engine.payment_count(), 10);
}

#[test]
fn reject_credit_limit_below_usage() {
    let mut s = Bank::new();
    s.add_erin();
    s.admin(account_limits(ERIN_ACCOUNT, USD, 1_000, None));
    s.ok(ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 600, AUTO));
    assert_eq!(s.balance(ERIN_ACCOUNT, USD), (-600, 0, 0));
    for body in [
        account_limits(ERIN_ACCOUNT, USD, 599, None),
        account_limits(ERIN_ACCOUNT, USD, 0, None),
        account_limits(ERIN_ACCOUNT, USD, 0, Some(1_000)),
    ] {
        s.expect_reject(ADMIN, body, RejectReason::CreditLimitBelowUsage);
    }
    // Precedence: an invalid limit before one below usage.
    let body = account_limits(ERIN_ACCOUNT, USD, -1, None);
    s.expect_reject(ADMIN, body, RejectReason::InvalidDefinition);
    // Exactly what is owed is fine: no more can be paid.
    s.admin(account_limits(ERIN_ACCOUNT, USD, 600, None));
    let body = transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 1, AUTO);
    s.expect_reject(ERIN, body, RejectReason::InsufficientBalance);
    // Repaid, the limit can go to zero.
    s.admin(deposit(ERIN_ACCOUNT, USD, 600, AUTO));
    s.admin(account_limits(ERIN_ACCOUNT, USD, 0, None));
}

/// Where two things are wrong, the check that comes first in the documented order
/// (`payments.rs`, `check_new_payment`; PROTOCOL.md section 13) decides. Many of the
/// tests above end with one such case; these are the ones where that order is not the
/// numeric order of the codes.
#[test]
fn payment_checks_run_in_the_documented_order() {
    let mut s = Bank::new();
    s.add_erin();
    s.closed_account(AccountId(5), ALICE);
    s.admin(payment_limits(USD, Some(1_000), Some(1_500)));
    s.admin(account_limits(ERIN_ACCOUNT, USD, 0, Some(100)));
    s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, 7));
    let cases = [
        // The client id (zero) before the debit account's status (closed).
        (ALICE, transfer(AccountId(5), BOB_ACCOUNT, 100, 0), RejectReason::PaymentIdZero),
        // Idempotency before the ledger: the conflict is reported, not the velocity
        // limit the new amount would pass (1 000 + 900 > 1 500).
        (ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 900, 7), RejectReason::PaymentIdConflict),
        // The debit account's status before the same-account check.
        (ALICE, transfer(AccountId(5), AccountId(5), 100, AUTO), RejectReason::AccountClosed),
        // The credit account before the asset, the asset before the amount.
        (
            ALICE,
            transfer(ALICE_ACCOUNT, AccountId(9), -1, AUTO),
            RejectReason::UnknownCreditAccount,
        ),
        (
            ALICE,
            in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, -1, AUTO), AssetId(9)),
            RejectReason::UnknownAsset,
        ),
        // The per-payment maximum before the funds and the velocity limit.
        (ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 1_001, AUTO), RejectReason::AboveTransferMax),
        // The funds before the velocity limit (Erin's own: 100).
        (ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 600, AUTO), RejectReason::InsufficientBalance),
        // The velocity limit (1 000 used of 1 500) last among the ledger checks.
        (
            ALICE,
            transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 501, AUTO),
            RejectReason::VelocityLimitExceeded,
        ),
    ];
    for (user, body, reason) in cases {
        s.expect_reject(user, body, reason);
    }
    // The same request without its faults passes.
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 500, AUTO));
}

// ==== transfers and the payment queries ===============================================

#[test]
fn transfer_moves_money_both_ways_and_reports_payment_then_debit_then_credit() {
    let mut s = Bank::new();
    let events = s.apply(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 250_000, 7));
    let now = s.now();
    let to_bob = PaymentInfo {
        payment_id: PaymentId(FIRST_ID),
        client_payment_id: ClientPaymentId(7),
        kind: PaymentKind::Transfer,
        debit: ALICE_ACCOUNT,
        credit: BOB_ACCOUNT,
        asset: USD,
        amount: 250_000,
        captured: 250_000,
        status: PaymentStatus::Completed,
        created_ns: now,
        deadline_ns: 0,
        resolved_ns: now,
    };
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Created, to_bob),
            bal(ALICE_ACCOUNT, USD, START_QUOTE - 250_000, 0, 0),
            bal(BOB_ACCOUNT, USD, START_QUOTE + 250_000, 0, 0),
        ]
    );
    // Back the other way, with the same client id: Bob's namespace, a new payment.
    let events = s.apply(BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 50_000, 7));
    let now = s.now();
    let to_alice = PaymentInfo {
        payment_id: PaymentId(FIRST_ID + 1),
        debit: BOB_ACCOUNT,
        credit: ALICE_ACCOUNT,
        amount: 50_000,
        captured: 50_000,
        created_ns: now,
        resolved_ns: now,
        ..to_bob
    };
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Created, to_alice),
            bal(BOB_ACCOUNT, USD, START_QUOTE + 200_000, 0, 0),
            bal(ALICE_ACCOUNT, USD, START_QUOTE - 200_000, 0, 0),
        ]
    );
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 200_000, 0, 0));
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE + 200_000, 0, 0));
    // Coins move in their own asset only.
    let events = s.apply(CAROL, in_asset(transfer(CAROL_ACCOUNT, DAVE_ACCOUNT, 5, 1), COIN));
    assert_eq!(
        events[1..],
        [
            bal(CAROL_ACCOUNT, COIN, START_BASE - 5, 0, 0),
            bal(DAVE_ACCOUNT, COIN, START_BASE + 5, 0, 0)
        ]
    );
    assert_eq!(s.balance(CAROL_ACCOUNT, USD), (START_QUOTE, 0, 0));
}

#[test]
fn payment_query_by_id_from_either_side_and_by_client_id_from_the_debit_side() {
    let mut s = Bank::new();
    s.add_operator();
    let to_bob = s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 250_000, 7));
    let to_alice = s.create(BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 50_000, 7));
    // By engine id, from either side.
    assert_eq!(s.payment(ALICE, ALICE_ACCOUNT, id_of(&to_bob)), info_answer(to_bob));
    assert_eq!(s.payment(BOB, BOB_ACCOUNT, id_of(&to_bob)), info_answer(to_bob));
    // By client id: the debit account's namespace.
    assert_eq!(s.payment(ALICE, ALICE_ACCOUNT, by_client(7)), info_answer(to_bob));
    assert_eq!(s.payment(BOB, BOB_ACCOUNT, by_client(7)), info_answer(to_alice));
    // Admins and operators read any account.
    assert_eq!(s.payment(ADMIN, BOB_ACCOUNT, by_client(7)), info_answer(to_alice));
    assert_eq!(s.payment(OPERATOR, ALICE_ACCOUNT, by_client(7)), info_answer(to_bob));
    // A deposit is in the external namespace: Alice finds it by id, not by client id.
    let deposit_1 = s.payment(ALICE, ALICE_ACCOUNT, by_id(1));
    let Some(Event::PaymentInfo(first)) = deposit_1.first() else { panic!("{deposit_1:?}") };
    assert_eq!(
        (first.kind, first.debit, first.credit),
        (PaymentKind::Deposit, EXTERNAL_ACCOUNT, ALICE_ACCOUNT)
    );
    let setup_id = (1 << 62) + 1;
    assert_eq!((first.amount, first.client_payment_id), (START_QUOTE, ClientPaymentId(setup_id)));
    let answer = s.payment(ALICE, ALICE_ACCOUNT, by_client(setup_id));
    assert_eq!(answer, query_reject(ALICE_ACCOUNT, setup_id, RejectReason::UnknownPayment));
}

#[test]
fn payments_history_is_newest_first_on_both_sides_with_deposits_and_withdrawals() {
    let mut s = Bank::new();
    let first = FIRST_ID;
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, AUTO)); // first
    s.ok(BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 300, AUTO)); // first + 1
    s.admin(deposit(ALICE_ACCOUNT, COIN, 5, AUTO)); // first + 2
    s.admin(withdraw(ALICE_ACCOUNT, USD, 7, AUTO)); // first + 3
    s.ok(CAROL, authorize(CAROL_ACCOUNT, BOB_ACCOUNT, 9, AUTO, 0)); // first + 4
    // Alice: her four payments, then her two setup deposits (USD 1, coins 2).
    let all = vec![first + 3, first + 2, first + 1, first, 2, 1];
    assert_eq!(s.history_ids(ALICE_ACCOUNT, PAYMENTS_PAGE_MAX), all);
    assert_eq!(s.history_ids(ALICE_ACCOUNT, 3), all[..3]);
    assert_eq!(s.history_ids(ALICE_ACCOUNT, 0), Vec::<u64>::new());
    // Bob: both transfers (each on the other side), Carol's authorization to him.
    let bob = vec![first + 4, first + 1, first, 4, 3];
    assert_eq!(s.history_ids(BOB_ACCOUNT, u16::MAX), bob);
    assert_eq!(s.history_ids(CAROL_ACCOUNT, 10), vec![first + 4, 6, 5]);
    assert_eq!(s.history_ids(DAVE_ACCOUNT, 10), vec![8, 7]);
    // The entries are the payments as they are now; the account reads its own.
    let history = s.history(ALICE, ALICE_ACCOUNT, 2);
    assert_eq!(history[0].kind, PaymentKind::Withdrawal);
    assert_eq!((history[0].debit, history[0].credit), (ALICE_ACCOUNT, EXTERNAL_ACCOUNT));
    assert_eq!(history[1].kind, PaymentKind::Deposit);
    assert_eq!((history[1].asset, history[1].amount), (COIN, 5));
    s.ok(BOB, capture(BOB_ACCOUNT, by_id(first + 4), 4));
    let newest = s.history(BOB, BOB_ACCOUNT, 1)[0];
    assert_eq!((newest.status, newest.captured), (PaymentStatus::Completed, 4));
}

// ==== authorizations ==================================================================

#[test]
fn authorization_holds_then_capture_pays_part_and_releases_the_rest_conserving_money() {
    let mut s = Bank::new();
    // What the test itself has put in minus taken out, per asset.
    let mut usd_in = 4 * i128::from(START_QUOTE);
    assert_eq!(s.total(USD), usd_in);

    // Authorize: the amount moves from Alice's available to her pending.
    let events = s.apply(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000_000, 11, 0));
    let t1 = s.now();
    let pending = PaymentInfo {
        payment_id: PaymentId(FIRST_ID),
        client_payment_id: ClientPaymentId(11),
        kind: PaymentKind::Authorization,
        debit: ALICE_ACCOUNT,
        credit: BOB_ACCOUNT,
        asset: USD,
        amount: 1_000_000,
        captured: 0,
        status: PaymentStatus::Pending,
        created_ns: t1,
        deadline_ns: 0,
        resolved_ns: 0,
    };
    let alice = START_QUOTE - 1_000_000;
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Created, pending),
            bal(ALICE_ACCOUNT, USD, alice, 0, 1_000_000),
            bal(BOB_ACCOUNT, USD, START_QUOTE, 0, 0),
        ]
    );
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (alice, 0, 1_000_000));
    assert_eq!(s.total(USD), usd_in);

    // The held money is not spendable, withdrawable or authorizable again.
    let body = transfer(ALICE_ACCOUNT, CAROL_ACCOUNT, alice + 1, AUTO);
    s.expect_reject(ALICE, body, RejectReason::InsufficientBalance);
    let body = withdraw(ALICE_ACCOUNT, USD, alice + 1, AUTO);
    s.expect_reject(ADMIN, body, RejectReason::InsufficientBalance);
    let body = authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, alice + 1, AUTO, 0);
    s.expect_reject(ALICE, body, RejectReason::InsufficientBalance);

    // Orders hold from available too; available, held and pending all count.
    let bid = buy(ALICE_ACCOUNT, 10_000, 1_000);
    s.ok(ALICE, CommandBody::NewOrder(bid));
    let held = 100_050_000;
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (alice - held, held, 1_000_000));
    assert_eq!(s.total(USD), usd_in);

    // Partial capture by client id: 400 000 to Bob, 600 000 back to Alice.
    let events = s.apply(ALICE, capture(ALICE_ACCOUNT, by_client(11), 400_000));
    let t2 = s.now();
    let captured = PaymentInfo {
        captured: 400_000,
        status: PaymentStatus::Completed,
        resolved_ns: t2,
        ..pending
    };
    let alice = START_QUOTE - 400_000 - held;
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Captured, captured),
            bal(ALICE_ACCOUNT, USD, alice, held, 0),
            bal(BOB_ACCOUNT, USD, START_QUOTE + 400_000, 0, 0),
        ]
    );
    assert_eq!(s.payment(ALICE, ALICE_ACCOUNT, by_client(11)), info_answer(captured));
    assert_eq!(s.total(USD), usd_in);

    // Money in and out in between.
    s.admin(deposit(CAROL_ACCOUNT, USD, 5_000_000, AUTO));
    usd_in += 5_000_000;
    s.admin(withdraw(DAVE_ACCOUNT, USD, 2_000_000, AUTO));
    usd_in -= 2_000_000;
    assert_eq!(s.total(USD), usd_in);

    // Capture of 0 takes all of it; here by the payee, by engine id.
    let whole = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 300_000, 12, 0));
    assert_eq!(s.total(USD), usd_in);
    let events = s.apply(BOB, capture(BOB_ACCOUNT, id_of(&whole), 0));
    let all = PaymentInfo {
        captured: 300_000,
        status: PaymentStatus::Completed,
        resolved_ns: s.now(),
        ..whole
    };
    let alice = alice - 300_000;
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Captured, all),
            bal(ALICE_ACCOUNT, USD, alice, held, 0),
            bal(BOB_ACCOUNT, USD, START_QUOTE + 700_000, 0, 0),
        ]
    );
    assert_eq!(s.total(USD), usd_in);

    // A void releases everything; Bob gets nothing.
    let voided = s.create(ALICE, authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, 200_000, 13, 0));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (alice - 200_000, held, 200_000));
    assert_eq!(s.total(USD), usd_in);
    let events = s.apply(CAROL, void(CAROL_ACCOUNT, id_of(&voided)));
    let released = PaymentInfo { status: PaymentStatus::Voided, resolved_ns: s.now(), ..voided };
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Voided, released),
            bal(ALICE_ACCOUNT, USD, alice, held, 0),
        ]
    );
    assert_eq!(s.balance(CAROL_ACCOUNT, USD), (START_QUOTE + 5_000_000, 0, 0));
    assert_eq!(s.total(USD), usd_in);
    assert_eq!(s.total(COIN), 4 * i128::from(START_BASE));
}

// ==== expiry ==========================================================================

#[test]
fn authorization_expires_at_exactly_its_deadline_before_the_command_runs() {
    let mut s = Bank::new();
    let t = 1_000 * SECOND;
    s.at(t);
    let info = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 500, 21, 5));
    let deadline = t + 5 * SECOND;
    assert_eq!((info.created_ns, info.deadline_ns), (t, deadline));
    assert_eq!(s.engine.next_deadline(), Some(deadline));

    // One nanosecond before: a rejected command and a tick change nothing.
    s.at(deadline - 1);
    let body = transfer(BOB_ACCOUNT, CAROL_ACCOUNT, 0, AUTO);
    s.expect_reject(BOB, body, RejectReason::AmountNotPositive);
    s.at(deadline - 1);
    assert_eq!(s.admin(CommandBody::Tick), vec![Event::Ticked { time_ns: deadline - 1 }]);
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 500, 0, 500));
    assert_eq!(s.payment(ALICE, ALICE_ACCOUNT, by_client(21)), info_answer(info));

    // At the deadline, Bob's rejected command expires Alice's hold first.
    s.at(deadline);
    let body = transfer(BOB_ACCOUNT, CAROL_ACCOUNT, 0, 99);
    let events = s.apply(BOB, body);
    let expired = PaymentInfo { status: PaymentStatus::Expired, resolved_ns: deadline, ..info };
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Expired, expired),
            bal(ALICE_ACCOUNT, USD, START_QUOTE, 0, 0),
            reject_event(&body, RejectReason::AmountNotPositive),
        ]
    );
    assert_eq!(s.engine.next_deadline(), None);
    assert_eq!(s.payment(ALICE, ALICE_ACCOUNT, by_client(21)), info_answer(expired));
    assert_eq!(s.history(ALICE, ALICE_ACCOUNT, 1), vec![expired]);
}

#[test]
fn tick_or_any_user_command_at_the_deadline_expires_first() {
    let mut s = Bank::new();
    let t = 50 * SECOND;
    s.at(t);
    let info = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 500, 1, 5));
    s.at(t + 5 * SECOND);
    let expired =
        PaymentInfo { status: PaymentStatus::Expired, resolved_ns: t + 5 * SECOND, ..info };
    assert_eq!(
        s.admin(CommandBody::Tick),
        vec![
            payment_event(PaymentAction::Expired, expired),
            bal(ALICE_ACCOUNT, USD, START_QUOTE, 0, 0),
            Event::Ticked { time_ns: t + 5 * SECOND },
        ]
    );
    // Even a command from a user that does not exist.
    let t = 100 * SECOND;
    s.at(t);
    let info = s.create(BOB, authorize(BOB_ACCOUNT, ALICE_ACCOUNT, 700, 1, 1));
    s.at(t + SECOND + 1);
    let body = CommandBody::Tick;
    let expired =
        PaymentInfo { status: PaymentStatus::Expired, resolved_ns: t + SECOND + 1, ..info };
    assert_eq!(
        s.apply(STRANGER, body),
        vec![
            payment_event(PaymentAction::Expired, expired),
            bal(BOB_ACCOUNT, USD, START_QUOTE, 0, 0),
            reject_event(&body, RejectReason::UnknownUser),
        ]
    );
}

#[test]
fn authorizations_expire_in_deadline_order_then_payment_id_order() {
    let mut s = Bank::new();
    let t = 100 * SECOND;
    s.at(t);
    let bob = s.create(BOB, authorize(BOB_ACCOUNT, CAROL_ACCOUNT, 1_000, 1, 10));
    s.at(t + 5 * SECOND);
    let alice = s.create(ALICE, authorize(ALICE_ACCOUNT, DAVE_ACCOUNT, 2_000, 1, 5));
    s.at(t + 6 * SECOND);
    let carol = s.create(CAROL, authorize(CAROL_ACCOUNT, ALICE_ACCOUNT, 3_000, 1, 1));
    assert_eq!(bob.deadline_ns, alice.deadline_ns);
    assert!(bob.payment_id < alice.payment_id && alice.payment_id < carol.payment_id);
    assert_eq!(s.engine.next_deadline(), Some(t + 7 * SECOND));
    let now = t + 10 * SECOND;
    s.at(now);
    let events = s.apply(DAVE, transfer(DAVE_ACCOUNT, ALICE_ACCOUNT, 4_000, 1));
    let expired = |p: PaymentInfo| {
        payment_event(
            PaymentAction::Expired,
            PaymentInfo { status: PaymentStatus::Expired, resolved_ns: now, ..p },
        )
    };
    let transfer = created(&events[6..]);
    assert_eq!(
        events,
        vec![
            // Carol's deadline came first; Bob's and Alice's are equal: by payment id.
            expired(carol),
            bal(CAROL_ACCOUNT, USD, START_QUOTE, 0, 0),
            expired(bob),
            bal(BOB_ACCOUNT, USD, START_QUOTE, 0, 0),
            expired(alice),
            bal(ALICE_ACCOUNT, USD, START_QUOTE, 0, 0),
            // Then the command itself.
            payment_event(PaymentAction::Created, transfer),
            bal(DAVE_ACCOUNT, USD, START_QUOTE - 4_000, 0, 0),
            bal(ALICE_ACCOUNT, USD, START_QUOTE + 4_000, 0, 0),
        ]
    );
    assert_eq!(transfer.payment_id, PaymentId(carol.payment_id.0 + 1));
    assert_eq!(s.engine.next_deadline(), None);
}

#[test]
fn capture_at_the_deadline_is_too_late_and_one_nanosecond_before_is_not() {
    let mut s = Bank::new();
    let t = 10 * SECOND;
    s.at(t);
    let late = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 700, 31, 5));
    s.at(t + 5 * SECOND);
    let body = capture(ALICE_ACCOUNT, by_client(31), 0);
    let events = s.apply(ALICE, body);
    let expired =
        PaymentInfo { status: PaymentStatus::Expired, resolved_ns: t + 5 * SECOND, ..late };
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Expired, expired),
            bal(ALICE_ACCOUNT, USD, START_QUOTE, 0, 0),
            reject_event(&body, RejectReason::PaymentNotPending),
        ]
    );
    s.expect_reject(BOB, void(BOB_ACCOUNT, id_of(&late)), RejectReason::PaymentNotPending);
    s.expect_reject(ALICE, body, RejectReason::PaymentNotPending);

    let t = 20 * SECOND;
    s.at(t);
    let timely = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 800, 32, 5));
    s.at(t + 5 * SECOND - 1);
    let events = s.ok(BOB, capture(BOB_ACCOUNT, id_of(&timely), 0));
    let done = PaymentInfo {
        status: PaymentStatus::Completed,
        captured: 800,
        resolved_ns: t + 5 * SECOND - 1,
        ..timely
    };
    assert_eq!(events[0], payment_event(PaymentAction::Captured, done));
    assert_eq!(s.engine.next_deadline(), None);
    // Its old deadline passing changes nothing.
    s.at(t + 6 * SECOND);
    assert_eq!(s.admin(CommandBody::Tick), vec![Event::Ticked { time_ns: t + 6 * SECOND }]);
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE + 800, 0, 0));
}

#[test]
fn next_deadline_is_the_earliest_pending_deadline() {
    let mut s = Bank::new();
    assert_eq!(s.engine.next_deadline(), None);
    let t = 1_000 * SECOND;
    s.at(t);
    let first = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 1, 30));
    assert_eq!(s.engine.next_deadline(), Some(t + 30 * SECOND));
    s.at(t + SECOND);
    let second = s.create(BOB, authorize(BOB_ACCOUNT, ALICE_ACCOUNT, 100, 1, 10));
    assert_eq!(s.engine.next_deadline(), Some(t + 11 * SECOND));
    s.create(CAROL, authorize(CAROL_ACCOUNT, ALICE_ACCOUNT, 100, 1, 0));
    assert_eq!(s.engine.next_deadline(), Some(t + 11 * SECOND));
    s.ok(BOB, void(BOB_ACCOUNT, id_of(&second)));
    assert_eq!(s.engine.next_deadline(), Some(t + 30 * SECOND));
    s.ok(BOB, capture(BOB_ACCOUNT, id_of(&first), 0));
    assert_eq!(s.engine.next_deadline(), None);
    let t = 2_000 * SECOND;
    s.at(t);
    s.create(DAVE, authorize(DAVE_ACCOUNT, ALICE_ACCOUNT, 100, 1, 5));
    assert_eq!(s.engine.next_deadline(), Some(t + 5 * SECOND));
    s.at(t + 5 * SECOND);
    let events = s.admin(CommandBody::Tick);
    assert!(matches!(events[0], Event::Payment { action: PaymentAction::Expired, .. }));
    assert_eq!(s.engine.next_deadline(), None);
}

#[test]
fn a_resolved_authorization_below_the_first_deadline_never_expires() {
    // The deadline heap keeps a resolved authorization's entry until it reaches the
    // top; it must then be dropped, not expired, and must not hide the next one.
    let mut s = Bank::new();
    let t = 3_000 * SECOND;
    s.at(t);
    let first = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 1, 10));
    let middle = s.create(BOB, authorize(BOB_ACCOUNT, CAROL_ACCOUNT, 200, 1, 20));
    let last = s.create(CAROL, authorize(CAROL_ACCOUNT, DAVE_ACCOUNT, 300, 1, 30));
    s.ok(BOB, void(BOB_ACCOUNT, id_of(&middle)));
    assert_eq!(s.engine.next_deadline(), Some(first.deadline_ns));
    s.at(first.deadline_ns);
    let events = s.admin(CommandBody::Tick);
    assert!(matches!(events[0], Event::Payment { action: PaymentAction::Expired, info }
        if info.payment_id == first.payment_id));
    assert_eq!(events.len(), 3, "only the first expires: {events:?}");
    assert_eq!(s.engine.next_deadline(), Some(last.deadline_ns));
    s.at(middle.deadline_ns);
    assert_eq!(s.admin(CommandBody::Tick), vec![Event::Ticked { time_ns: middle.deadline_ns }]);
    assert_eq!(s.balance(BOB_ACCOUNT, USD), (START_QUOTE, 0, 0));
    s.at(last.deadline_ns);
    let events = s.admin(CommandBody::Tick);
    assert!(matches!(events[0], Event::Payment { action: PaymentAction::Expired, info }
        if info.payment_id == last.payment_id));
    assert_eq!(s.engine.next_deadline(), None);
}

#[test]
fn resolved_authorizations_do_not_pile_up_behind_a_pending_one() {
    // One authorization stays pending with the earliest deadline; 300 later ones are
    // captured at once. Their heap entries sit below the pending one, and the
    // invariants checked after every command bound them (at most twice the pending
    // ones plus a slack), so they must be swept out, and nothing else may change.
    let mut s = Bank::new();
    let t = 5_000 * SECOND;
    s.at(t);
    let first = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 1, 60));
    for n in 0..300 {
        let later = s.create(BOB, authorize(BOB_ACCOUNT, CAROL_ACCOUNT, 10, 10 + n, 3_600));
        s.ok(CAROL, capture(CAROL_ACCOUNT, id_of(&later), 0));
        assert_eq!(s.engine.next_deadline(), Some(first.deadline_ns));
    }
    assert_eq!(s.balance(CAROL_ACCOUNT, USD), (START_QUOTE + 3_000, 0, 0));
    s.at(first.deadline_ns);
    let events = s.admin(CommandBody::Tick);
    assert!(matches!(events[0], Event::Payment { action: PaymentAction::Expired, info }
        if info.payment_id == first.payment_id));
    assert_eq!(s.engine.next_deadline(), None);
    s.at(first.deadline_ns + 3_600 * SECOND);
    let time_ns = first.deadline_ns + 3_600 * SECOND;
    assert_eq!(s.admin(CommandBody::Tick), vec![Event::Ticked { time_ns }]);
}

#[test]
fn authorization_without_timeout_never_expires() {
    let mut s = Bank::new();
    let info = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 500, 1, 0));
    assert_eq!(info.deadline_ns, 0);
    assert_eq!(s.engine.next_deadline(), None);
    let later = s.now() + 3_650 * DAY;
    s.at(later);
    assert_eq!(s.admin(CommandBody::Tick), vec![Event::Ticked { time_ns: later }]);
    assert_eq!(s.payment(ALICE, ALICE_ACCOUNT, id_of(&info)), info_answer(info));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 500, 0, 500));
    let events = s.ok(BOB, capture(BOB_ACCOUNT, id_of(&info), 0));
    assert_eq!(
        events[1..],
        [
            bal(ALICE_ACCOUNT, USD, START_QUOTE - 500, 0, 0),
            bal(BOB_ACCOUNT, USD, START_QUOTE + 500, 0, 0)
        ]
    );
}

/// `u64::MAX` doubles as "no deadline" in `PaymentBook::next_deadline`, so a deadline of
/// exactly `u64::MAX` (reachable: authorize at `u64::MAX - 1 s` with a 1 s timeout, which
/// passes the overflow check) is reported as none.
#[test]
fn next_deadline_reports_a_deadline_at_the_largest_engine_time() {
    let mut s = Bank::new();
    s.at(u64::MAX - SECOND);
    let info = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 500, 1, 1));
    assert_eq!(info.deadline_ns, u64::MAX);
    assert_eq!(s.engine.next_deadline(), Some(u64::MAX));
}

/// `Engine::apply` runs `expire_due` when `next_deadline <= time`; with no deadline
/// `next_deadline` is `u64::MAX`, so a command stamped `u64::MAX` enters the loop with
/// an empty deadline heap and panics ("next_deadline is set"), pending authorizations or
/// not.
#[test]
fn a_command_at_the_largest_engine_time_runs_and_expires_what_is_due() {
    // Nothing pending at all.
    let mut s = Bank::new();
    s.at(u64::MAX);
    assert_eq!(s.admin(CommandBody::Tick), vec![Event::Ticked { time_ns: u64::MAX }]);
    // An authorization due exactly then.
    let mut s = Bank::new();
    s.at(u64::MAX - SECOND);
    let info = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 500, 1, 1));
    s.at(u64::MAX);
    let expired = PaymentInfo { status: PaymentStatus::Expired, resolved_ns: u64::MAX, ..info };
    assert_eq!(
        s.admin(CommandBody::Tick),
        vec![
            payment_event(PaymentAction::Expired, expired),
            bal(ALICE_ACCOUNT, USD, START_QUOTE, 0, 0),
            Event::Ticked { time_ns: u64::MAX },
        ]
    );
    // And again with nothing due.
    s.at(u64::MAX);
    assert_eq!(s.admin(CommandBody::Tick), vec![Event::Ticked { time_ns: u64::MAX }]);
}

// ==== idempotency =====================================================================

#[test]
fn retry_with_the_same_fields_is_a_duplicate_that_changes_nothing() {
    let mut s = Bank::new();
    let moved = s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7));
    let duplicate = |info| vec![payment_event(PaymentAction::Duplicate, info)];
    let retry = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7);
    s.expect_unchanged(ALICE, retry, duplicate(moved));
    // Later, and after other payments, still the same answer.
    s.ok(ALICE, transfer(ALICE_ACCOUNT, CAROL_ACCOUNT, 100, 8));
    s.expect_unchanged(ALICE, retry, duplicate(moved));
    // A deposit and a withdrawal.
    let funded = s.create(ADMIN, deposit(DAVE_ACCOUNT, COIN, 55, 500));
    s.expect_unchanged(ADMIN, deposit(DAVE_ACCOUNT, COIN, 55, 500), duplicate(funded));
    let drained = s.create(ADMIN, withdraw(DAVE_ACCOUNT, USD, 66, 500));
    s.expect_unchanged(ADMIN, withdraw(DAVE_ACCOUNT, USD, 66, 500), duplicate(drained));
    // The answer is the payment as it is now: an authorization captured since.
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, 9, 30));
    let retry = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, 9, 30);
    s.expect_unchanged(ALICE, retry, duplicate(held));
    let events = s.ok(BOB, capture(BOB_ACCOUNT, id_of(&held), 250));
    let Event::Payment { info: captured, .. } = events[0] else { panic!("{events:?}") };
    assert_eq!((captured.status, captured.captured), (PaymentStatus::Completed, 250));
    s.expect_unchanged(ALICE, retry, duplicate(captured));
    // Capture retries with the same amount, from either side, by id or client id.
    s.expect_unchanged(BOB, capture(BOB_ACCOUNT, id_of(&held), 250), duplicate(captured));
    s.expect_unchanged(ALICE, capture(ALICE_ACCOUNT, by_client(9), 250), duplicate(captured));
    // A full capture's retry with 0 ("all") or the amount itself.
    let whole = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 400, 10, 0));
    let events = s.ok(ALICE, capture(ALICE_ACCOUNT, id_of(&whole), 0));
    let Event::Payment { info: all, .. } = events[0] else { panic!("{events:?}") };
    s.expect_unchanged(ALICE, capture(ALICE_ACCOUNT, id_of(&whole), 0), duplicate(all));
    s.expect_unchanged(BOB, capture(BOB_ACCOUNT, id_of(&whole), 400), duplicate(all));
    // Void retries.
    let released = s.create(ALICE, authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, 300, 11, 0));
    let events = s.ok(CAROL, void(CAROL_ACCOUNT, id_of(&released)));
    let Event::Payment { info: voided, .. } = events[0] else { panic!("{events:?}") };
    s.expect_unchanged(CAROL, void(CAROL_ACCOUNT, id_of(&released)), duplicate(voided));
    s.expect_unchanged(ALICE, void(ALICE_ACCOUNT, by_client(11)), duplicate(voided));
    // An expired authorization's retry is not a new hold.
    let t = s.now() + SECOND;
    s.at(t);
    let lapsed = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 200, 12, 1));
    s.at(t + SECOND);
    s.admin(CommandBody::Tick);
    let expired = PaymentInfo { status: PaymentStatus::Expired, resolved_ns: t + SECOND, ..lapsed };
    let retry = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 200, 12, 1);
    s.expect_unchanged(ALICE, retry, duplicate(expired));
    // A retry passes even where a new payment could not: frozen and blocked debit.
    s.admin(status(ALICE_ACCOUNT, AccountStatus::Frozen));
    s.admin(block(ALICE_ACCOUNT, true));
    let retry = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7);
    s.expect_unchanged(ALICE, retry, duplicate(moved));
}

#[test]
fn client_payment_ids_are_scoped_to_the_debit_account_and_deposits_share_one_scope() {
    let mut s = Bank::new();
    let alice = s.create(ALICE, transfer(ALICE_ACCOUNT, CAROL_ACCOUNT, 100, 77));
    let bob = s.create(BOB, transfer(BOB_ACCOUNT, CAROL_ACCOUNT, 100, 77));
    assert_ne!(alice.payment_id, bob.payment_id);
    assert_eq!(s.balance(CAROL_ACCOUNT, USD), (START_QUOTE + 200, 0, 0));
    // A withdrawal from Bob is in Bob's scope, not the deposits'.
    let out = s.create(ADMIN, withdraw(BOB_ACCOUNT, USD, 5, 500));
    let into = s.create(ADMIN, deposit(BOB_ACCOUNT, USD, 5, 500));
    assert_eq!((out.debit, into.debit), (BOB_ACCOUNT, EXTERNAL_ACCOUNT));
    // Deposits of every asset to every account share the external scope.
    let body = in_asset(deposit(BOB_ACCOUNT, USD, 5, 500), COIN);
    s.expect_reject(ADMIN, body, RejectReason::PaymentIdConflict);
    let body = deposit(CAROL_ACCOUNT, USD, 5, 500);
    s.expect_reject(ADMIN, body, RejectReason::PaymentIdConflict);
    // The universe's setup deposits used 2^62 + 1 and up there.
    let body = deposit(ALICE_ACCOUNT, COIN, 1, (1 << 62) + 2);
    s.expect_reject(ADMIN, body, RejectReason::PaymentIdConflict);
}

/// Clients usually number payments upwards, but nothing requires it: ids may arrive in
/// any order, with gaps, and every one is remembered for good (across a restore too).
#[test]
fn client_ids_in_any_order_and_with_gaps_are_all_remembered() {
    let mut s = Bank::new();
    // Ascending with gaps (3, 6, ..., 600), then ids below the largest so far, above it,
    // and below it again, interleaved.
    let ids: Vec<u64> = (1..=200)
        .map(|k| 3 * k)
        .chain([1, 2, 301, 1_000, 4, 599, 700, 5, u64::MAX - 1, 1_001, 999])
        .collect();
    let amount = |id: u64| (id % 1_000) as i64 + 1;
    let mut made = Vec::new();
    for &id in &ids {
        let info = s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, amount(id), id));
        assert_eq!(info.client_payment_id, ClientPaymentId(id));
        made.push(info);
    }
    // The same for deposits, in the external namespace (the setup used 2^62 + 1 and up).
    let deposit_ids = [100, 50, 200, 9, 150, 10];
    let mut deposits = Vec::new();
    for &id in &deposit_ids {
        deposits.push(s.create(ADMIN, deposit(CAROL_ACCOUNT, COIN, amount(id), id)));
    }
    let check = |s: &mut Bank| {
        for info in &made {
            let id = info.client_payment_id.0;
            let retry = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, amount(id), id);
            assert_eq!(s.apply(ALICE, retry), vec![payment_event(PaymentAction::Duplicate, *info)]);
            let other = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, amount(id) + 1, id);
            let events = s.apply(ALICE, other);
            assert_eq!(events, vec![reject_event(&other, RejectReason::PaymentIdConflict)]);
            let answer = s.payment(ALICE, ALICE_ACCOUNT, PaymentRef::Client(ClientPaymentId(id)));
            assert_eq!(answer, info_answer(*info));
        }
        for info in &deposits {
            let id = info.client_payment_id.0;
            let retry = deposit(CAROL_ACCOUNT, COIN, amount(id), id);
            assert_eq!(s.apply(ADMIN, retry), vec![payment_event(PaymentAction::Duplicate, *info)]);
        }
        // Ids never used, between and around the used ones, are unknown.
        for id in [7, 8, 302, 598, 601, 998, 1_002, u64::MAX - 2] {
            let answer = s.payment(ALICE, ALICE_ACCOUNT, by_client(id));
            assert_eq!(answer, query_reject(ALICE_ACCOUNT, id, RejectReason::UnknownPayment));
        }
    };
    check(&mut s);
    s.restore();
    check(&mut s);
    // Unused ids are still free, below, between and above the used ones.
    for id in [7, 302, 1_002] {
        s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1, id));
    }
    s.create(ADMIN, deposit(CAROL_ACCOUNT, COIN, 1, 11));
    // And other accounts' namespaces are untouched by Alice's.
    for &id in &ids[..5] {
        s.create(BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 1, id));
    }
    let expected = ids.len() + deposit_ids.len() + 4 + 5 + 8;
    assert_eq!(s.engine.payment_count(), expected);
}

#[test]
fn a_refused_payment_does_not_use_its_client_id() {
    let mut s = Bank::new();
    s.add_erin();
    let body = transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 100, 42);
    s.expect_reject(ERIN, body, RejectReason::InsufficientBalance);
    assert_eq!(
        s.payment(ERIN, ERIN_ACCOUNT, by_client(42)),
        query_reject(ERIN_ACCOUNT, 42, RejectReason::UnknownPayment)
    );
    s.admin(deposit(ERIN_ACCOUNT, USD, 100, AUTO));
    let info = s.create(ERIN, body);
    assert_eq!(info.client_payment_id, ClientPaymentId(42));
    assert_eq!(s.balance(ERIN_ACCOUNT, USD), (0, 0, 0));
    let duplicate = vec![payment_event(PaymentAction::Duplicate, info)];
    s.expect_unchanged(ERIN, body, duplicate);
}

#[test]
fn retries_after_a_snapshot_restore_are_still_duplicates() {
    let mut s = Bank::new();
    let moved = s.create(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7));
    let funded = s.create(ADMIN, deposit(CAROL_ACCOUNT, USD, 300, 900));
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, 8, 60));
    let events = s.ok(BOB, capture(BOB_ACCOUNT, id_of(&held), 600));
    let Event::Payment { info: captured, .. } = events[0] else { panic!("{events:?}") };
    let released = s.create(ALICE, authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, 50, 9, 0));
    let events = s.ok(ALICE, void(ALICE_ACCOUNT, id_of(&released)));
    let Event::Payment { info: voided, .. } = events[0] else { panic!("{events:?}") };
    s.restore();
    let duplicate = |info| vec![payment_event(PaymentAction::Duplicate, info)];
    let retry = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 7);
    s.expect_unchanged(ALICE, retry, duplicate(moved));
    s.expect_unchanged(ADMIN, deposit(CAROL_ACCOUNT, USD, 300, 900), duplicate(funded));
    let retry = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, 8, 60);
    s.expect_unchanged(ALICE, retry, duplicate(captured));
    s.expect_unchanged(ALICE, capture(ALICE_ACCOUNT, by_client(8), 600), duplicate(captured));
    s.expect_unchanged(ALICE, void(ALICE_ACCOUNT, by_client(9)), duplicate(voided));
    // And conflicts are still conflicts.
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 101, 7);
    s.expect_reject(ALICE, body, RejectReason::PaymentIdConflict);
}

// ==== velocity ========================================================================

#[test]
fn velocity_counts_a_debit_until_one_nanosecond_before_24_hours_and_not_at_24_hours() {
    let mut s = Bank::new();
    s.admin(payment_limits(USD, None, Some(1_000)));
    let t0 = 10 * SECOND;
    s.at(t0);
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 600, AUTO));
    // 24 h - 1 ns later, the 600 still counts: 401 is too much, 400 exactly fills it.
    s.at(t0 + DAY - 1);
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 401, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    s.at(t0 + DAY - 1);
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 400, AUTO));
    s.at(t0 + DAY - 1);
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    // At exactly 24 h the 600 stops counting; the 400 still counts.
    s.at(t0 + DAY);
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 600, AUTO));
    s.at(t0 + DAY);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    // The 400 leaves at t0 + 2 d - 1 ns.
    s.at(t0 + 2 * DAY - 2);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    s.at(t0 + 2 * DAY - 1);
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 400, AUTO));
    assert_eq!(s.balance(ALICE_ACCOUNT, USD), (START_QUOTE - 2_000, 0, 0));
}

/// Near the end of time the window must not saturate: a debit at `u64::MAX - 1` still
/// counts at `u64::MAX`.
#[test]
fn velocity_window_is_exact_at_the_largest_engine_time() {
    let mut s = Bank::new();
    s.admin(payment_limits(USD, None, Some(100)));
    s.at(u64::MAX - 1);
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 60, AUTO));
    s.at(u64::MAX);
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 60, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    s.at(u64::MAX);
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 40, AUTO));
}

#[test]
fn velocity_counts_pending_authorizations_in_full_until_void_or_expiry() {
    let mut s = Bank::new();
    s.admin(payment_limits(USD, None, Some(1_000)));
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 700, 1, 0));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 301, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    let body = authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 301, AUTO, 0);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    // Pending counts however old it is.
    s.at(s.now() + 2 * DAY);
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 301, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    // A void gives all of it back.
    s.ok(ALICE, void(ALICE_ACCOUNT, id_of(&held)));
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, AUTO));

    // An expiry too (Carol: 900 held for 5 s).
    let t = s.now() + SECOND;
    s.at(t);
    s.create(CAROL, authorize(CAROL_ACCOUNT, BOB_ACCOUNT, 900, 1, 5));
    let body = transfer(CAROL_ACCOUNT, BOB_ACCOUNT, 101, AUTO);
    s.at(t + 5 * SECOND - 1);
    s.expect_reject(CAROL, body, RejectReason::VelocityLimitExceeded);
    s.at(t + 5 * SECOND);
    let events = s.ok(CAROL, transfer(CAROL_ACCOUNT, BOB_ACCOUNT, 1_000, AUTO));
    assert!(matches!(events[0], Event::Payment { action: PaymentAction::Expired, .. }));
    assert!(matches!(events[2], Event::Payment { action: PaymentAction::Created, .. }));
}

#[test]
fn velocity_counts_a_capture_at_capture_time_and_only_what_was_captured() {
    let mut s = Bank::new();
    s.admin(payment_limits(USD, None, Some(1_000)));
    let t1 = 10 * SECOND;
    s.at(t1);
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 700, 1, 0));
    let t2 = t1 + HOUR;
    s.at(t2);
    s.ok(BOB, capture(BOB_ACCOUNT, id_of(&held), 500));
    // The released 200 does not count; the captured 500 does.
    let over = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 501, AUTO);
    s.expect_reject(ALICE, over, RejectReason::VelocityLimitExceeded);
    // From the capture, not from the authorization: still counting 24 h after it.
    s.at(t1 + DAY);
    s.expect_reject(ALICE, over, RejectReason::VelocityLimitExceeded);
    s.at(t2 + DAY - 1);
    s.expect_reject(ALICE, over, RejectReason::VelocityLimitExceeded);
    s.at(t2 + DAY);
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000, AUTO));
}

#[test]
fn velocity_counts_withdrawals_but_not_deposits_or_incoming_payments() {
    let mut s = Bank::new();
    s.admin(payment_limits(USD, None, Some(1_000)));
    s.admin(withdraw(ALICE_ACCOUNT, USD, 600, AUTO));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 401, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    let body = withdraw(ALICE_ACCOUNT, USD, 401, AUTO);
    s.expect_reject(ADMIN, body, RejectReason::VelocityLimitExceeded);
    s.admin(withdraw(ALICE_ACCOUNT, USD, 400, AUTO));
    // Deposits are no one's outgoing payment: any size, and no headroom used.
    s.admin(deposit(BOB_ACCOUNT, USD, 1_000_000, AUTO));
    s.ok(BOB, transfer(BOB_ACCOUNT, CAROL_ACCOUNT, 1_000, AUTO));
    // Receiving does not use (or give) headroom: Carol still has all of hers.
    s.ok(CAROL, transfer(CAROL_ACCOUNT, DAVE_ACCOUNT, 1_000, AUTO));
    let body = transfer(CAROL_ACCOUNT, DAVE_ACCOUNT, 1, AUTO);
    s.expect_reject(CAROL, body, RejectReason::VelocityLimitExceeded);
}

#[test]
fn velocity_account_limit_overrides_the_asset_default_both_ways() {
    let mut s = Bank::new();
    s.admin(payment_limits(USD, None, Some(1_000)));
    s.admin(account_limits(ALICE_ACCOUNT, USD, 0, Some(5_000)));
    s.admin(account_limits(CAROL_ACCOUNT, USD, 0, Some(100)));
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 5_000, AUTO));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    let body = transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 1_001, AUTO);
    s.expect_reject(BOB, body, RejectReason::VelocityLimitExceeded);
    let body = transfer(CAROL_ACCOUNT, ALICE_ACCOUNT, 101, AUTO);
    s.expect_reject(CAROL, body, RejectReason::VelocityLimitExceeded);
    s.ok(CAROL, transfer(CAROL_ACCOUNT, ALICE_ACCOUNT, 100, AUTO));
    // Back to the default (None): Carol's 100 of 1 000 used.
    s.admin(account_limits(CAROL_ACCOUNT, USD, 0, None));
    s.ok(CAROL, transfer(CAROL_ACCOUNT, ALICE_ACCOUNT, 900, AUTO));
    // An override with no asset default; the default lifted leaves only overrides.
    s.admin(payment_limits(USD, None, None));
    s.ok(BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 50_000, AUTO));
    let body = transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1, AUTO);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    // Limits are per asset: coins are free.
    s.ok(ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1_000_000, AUTO), COIN));
}

// ==== credit ==========================================================================

#[test]
fn credit_limit_lets_payments_go_exactly_that_far_below_zero() {
    let mut s = Bank::new();
    s.add_erin();
    let events = s.admin(account_limits(ERIN_ACCOUNT, USD, 1_000, None));
    assert_eq!(
        events,
        vec![Event::AccountLimitsSet {
            account: ERIN_ACCOUNT,
            asset: USD,
            credit_limit: 1_000,
            velocity_24h: None,
        }]
    );
    let body = transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 1_001, AUTO);
    s.expect_reject(ERIN, body, RejectReason::InsufficientBalance);
    s.ok(ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 700, AUTO));
    let events = s.ok(ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 300, AUTO));
    assert_eq!(events[1], bal(ERIN_ACCOUNT, USD, -1_000, 0, 0));
    let body = transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 1, AUTO);
    s.expect_reject(ERIN, body, RejectReason::InsufficientBalance);
    let body = withdraw(ERIN_ACCOUNT, USD, 1, AUTO);
    s.expect_reject(ADMIN, body, RejectReason::InsufficientBalance);
    // The debt is in the sums: conservation with a negative balance.
    assert_eq!(s.balance(ERIN_ACCOUNT, USD), (-1_000, 0, 0));
    assert_eq!(s.total(USD), 4 * i128::from(START_QUOTE));
    // Credit is per asset.
    let body = in_asset(transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 1, AUTO), COIN);
    s.expect_reject(ERIN, body, RejectReason::InsufficientBalance);
    // Raised, and with a deposit: available + limit is what can be paid.
    s.admin(account_limits(ERIN_ACCOUNT, USD, 5_000, None));
    s.admin(deposit(ERIN_ACCOUNT, USD, 3_000, AUTO));
    let body = authorize(ERIN_ACCOUNT, BOB_ACCOUNT, 7_001, AUTO, 0);
    s.expect_reject(ERIN, body, RejectReason::InsufficientBalance);
    let held = s.create(ERIN, authorize(ERIN_ACCOUNT, BOB_ACCOUNT, 7_000, AUTO, 0));
    assert_eq!(s.balance(ERIN_ACCOUNT, USD), (-5_000, 0, 7_000));
    assert_eq!(s.total(USD), 4 * i128::from(START_QUOTE) + 3_000);
    s.ok(BOB, capture(BOB_ACCOUNT, id_of(&held), 6_000));
    assert_eq!(s.balance(ERIN_ACCOUNT, USD), (-4_000, 0, 0));
    assert_eq!(s.total(USD), 4 * i128::from(START_QUOTE) + 3_000);
}

#[test]
fn trading_never_uses_credit() {
    let mut s = Bank::new();
    s.add_erin();
    // 200 USD, and a credit limit of 1 000 USD.
    s.admin(deposit(ERIN_ACCOUNT, USD, 200_000_000, AUTO));
    s.admin(account_limits(ERIN_ACCOUNT, USD, 1_000_000_000, None));
    // Two coins at 100.00 hold 200 USD + 5 bp = 200.1 USD: more than available, far
    // less than available + credit.
    let order = CommandBody::NewOrder(buy(ERIN_ACCOUNT, 10_000, 2_000));
    s.expect_reject(ERIN, order, RejectReason::InsufficientBalance);
    // One coin (100.05 USD) fits in the positive balance.
    s.ok(ERIN, CommandBody::NewOrder(buy(ERIN_ACCOUNT, 10_000, 1_000)));
    // Payments may use the credit; then no order fits at all.
    s.ok(ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 99_950_000 + 500_000_000, AUTO));
    assert_eq!(s.balance(ERIN_ACCOUNT, USD), (-500_000_000, 100_050_000, 0));
    let order = CommandBody::NewOrder(buy(ERIN_ACCOUNT, 10_000, 1));
    s.expect_reject(ERIN, order, RejectReason::InsufficientBalance);
}

// ==== the operator role ===============================================================

#[test]
fn operator_moves_money_in_and_out_and_reads_any_account_but_nothing_more() {
    let mut s = Bank::new();
    s.add_operator();
    let events = s.ok(OPERATOR, deposit(ALICE_ACCOUNT, USD, 1_000, 31));
    let now = s.now();
    let deposited = PaymentInfo {
        payment_id: PaymentId(FIRST_ID),
        client_payment_id: ClientPaymentId(31),
        kind: PaymentKind::Deposit,
        debit: EXTERNAL_ACCOUNT,
        credit: ALICE_ACCOUNT,
        asset: USD,
        amount: 1_000,
        captured: 1_000,
        status: PaymentStatus::Completed,
        created_ns: now,
        deadline_ns: 0,
        resolved_ns: now,
    };
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Created, deposited),
            bal(ALICE_ACCOUNT, USD, START_QUOTE + 1_000, 0, 0),
        ]
    );
    let events = s.ok(OPERATOR, withdraw(BOB_ACCOUNT, COIN, 400, 31));
    let now = s.now();
    let withdrawn = PaymentInfo {
        payment_id: PaymentId(FIRST_ID + 1),
        kind: PaymentKind::Withdrawal,
        debit: BOB_ACCOUNT,
        credit: EXTERNAL_ACCOUNT,
        asset: COIN,
        amount: 400,
        captured: 400,
        created_ns: now,
        resolved_ns: now,
        ..deposited
    };
    assert_eq!(
        events,
        vec![
            payment_event(PaymentAction::Created, withdrawn),
            bal(BOB_ACCOUNT, COIN, START_BASE - 400, 0, 0),
        ]
    );
    // Reads any account's balances and payments.
    let answer = s.query(OPERATOR, Query::Balances { account: BOB_ACCOUNT });
    assert_eq!(
        answer,
        vec![
            Event::BalanceInfo(BalanceChanged {
                account: BOB_ACCOUNT,
                asset: USD,
                available: START_QUOTE,
                held: 0,
                pending: 0
            }),
            Event::BalanceInfo(BalanceChanged {
                account: BOB_ACCOUNT,
                asset: COIN,
                available: START_BASE - 400,
                held: 0,
                pending: 0
            }),
            Event::QueryDone { items: 2 },
        ]
    );
    assert_eq!(s.history(OPERATOR, BOB_ACCOUNT, 1), vec![withdrawn]);
    assert_eq!(s.payment(OPERATOR, ALICE_ACCOUNT, id_of(&deposited)), info_answer(deposited));
    // But is no admin and owns none of these accounts.
    let held = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, 1, 0));
    for (body, reason) in [
        (
            CommandBody::CreateAccount { account: AccountId(7), owner: OPERATOR },
            RejectReason::NotAdmin,
        ),
        (CommandBody::CreateUser { user: UserId(30), role: Role::Trader }, RejectReason::NotAdmin),
        (status(ALICE_ACCOUNT, AccountStatus::Frozen), RejectReason::NotAdmin),
        (transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO), RejectReason::AccountNotOwned),
        (authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 100, AUTO, 0), RejectReason::AccountNotOwned),
        (capture(ALICE_ACCOUNT, id_of(&held), 0), RejectReason::AccountNotOwned),
        (void(BOB_ACCOUNT, id_of(&held)), RejectReason::AccountNotOwned),
    ] {
        s.expect_reject(OPERATOR, body, reason);
    }
}

// ==== snapshots =======================================================================

#[test]
fn snapshot_round_trip_mid_flight_gives_the_same_hash_and_the_same_future() {
    let mut s = Bank::new();
    s.add_erin();
    let t0 = 1_000 * SECOND;
    s.at(t0);
    s.admin(payment_limits(USD, Some(10_000_000), Some(50_000_000)));
    s.admin(account_limits(ALICE_ACCOUNT, USD, 0, Some(100_000_000)));
    s.admin(account_limits(ERIN_ACCOUNT, USD, 5_000_000, None));
    s.ok(ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 3_000_000, 1));
    s.admin(block(DAVE_ACCOUNT, true));
    s.ok(ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 2_000_000, 1));
    let first = s.create(ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 4_000_000, 2, 30));
    s.create(CAROL, authorize(CAROL_ACCOUNT, ALICE_ACCOUNT, 1_000_000, 1, 60));
    s.create(BOB, authorize(BOB_ACCOUNT, CAROL_ACCOUNT, 500_000, 1, 0));
    let part = s.create(ALICE, authorize(ALICE_ACCOUNT, CAROL_ACCOUNT, 100, 3, 10));
    s.ok(CAROL, capture(CAROL_ACCOUNT, id_of(&part), 50));
    let gone = s.create(BOB, authorize(BOB_ACCOUNT, ALICE_ACCOUNT, 200, 2, 10));
    s.ok(BOB, void(BOB_ACCOUNT, id_of(&gone)));
    s.ok(CAROL, in_asset(transfer(CAROL_ACCOUNT, ERIN_ACCOUNT, 77, 2), COIN));
    assert_eq!(s.engine.next_deadline(), Some(first.deadline_ns));

    let bytes = s.engine.snapshot();
    let mut copy = Engine::from_snapshot(&bytes).expect("restores");
    assert_eq!(copy.state_hash(), s.engine.state_hash());
    assert_eq!(copy.snapshot(), bytes);
    assert_eq!(observe(&copy), s.observe());
    assert_eq!(copy.next_deadline(), s.engine.next_deadline());
    assert_eq!(copy.payment_count(), s.engine.payment_count());

    let d1 = first.deadline_ns;
    let follow: Vec<(u64, UserId, CommandBody)> = vec![
        // A duplicate, a refusal on credit, on the deny-list, on velocity.
        (t0 + 10 * SECOND, ALICE, authorize(ALICE_ACCOUNT, BOB_ACCOUNT, 4_000_000, 2, 30)),
        (t0 + 11 * SECOND, ERIN, transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 2_000_001, 2)),
        (t0 + 12 * SECOND, DAVE, transfer(DAVE_ACCOUNT, ALICE_ACCOUNT, 10, 1)),
        // Bob: 500 000 pending of his 50 000 000 a day.
        (t0 + 13 * SECOND, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 10_000_000, 11)),
        (t0 + 14 * SECOND, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 10_000_000, 12)),
        (t0 + 15 * SECOND, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 10_000_000, 13)),
        (t0 + 16 * SECOND, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 10_000_000, 14)),
        (t0 + 17 * SECOND, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 10_000_000, 15)),
        (t0 + 18 * SECOND, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 9_500_000, 16)),
        (t0 + 19 * SECOND, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 1, 17)),
        (t0 + 20 * SECOND, ALICE, transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 10_000_001, 18)),
        // One nanosecond before the first deadline, then at it: the expiry (then a
        // refusal: Bob's day is used up).
        (d1 - 1, ADMIN, CommandBody::Tick),
        (d1, BOB, transfer(BOB_ACCOUNT, CAROL_ACCOUNT, 1, 20)),
        (d1 + 1, CAROL, capture(CAROL_ACCOUNT, by_client(1), 0)),
        (d1 + 2, ADMIN, block(DAVE_ACCOUNT, false)),
        (d1 + 3, DAVE, transfer(DAVE_ACCOUNT, ALICE_ACCOUNT, 10, 1)),
        (d1 + 4, ALICE, capture(ALICE_ACCOUNT, id_of(&first), 0)),
        // A day later the windows have emptied.
        (t0 + DAY + HOUR, BOB, transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 10_000_000, 21)),
        (t0 + DAY + HOUR + 1, BOB, void(BOB_ACCOUNT, by_client(1))),
        (t0 + DAY + HOUR + 2, ADMIN, CommandBody::Tick),
    ];
    let mut expiries = 0;
    for (time_ns, user, body) in follow {
        s.at(time_ns);
        let expected = s.apply(user, body);
        let command = s.last_command.expect("applied");
        let mut actual = Vec::new();
        copy.apply(&command, &mut actual);
        assert_eq!(actual, expected, "events of {command:?}");
        assert_eq!(copy.state_hash(), s.engine.state_hash(), "hash after {command:?}");
        copy.check_invariants().unwrap();
        let expired =
            |e: &Event| matches!(e, Event::Payment { action: PaymentAction::Expired, .. });
        expiries += expected.iter().filter(|e| expired(e)).count();
    }
    // The future replayed covered: the expiry at d1, every kind of refusal above.
    assert_eq!(expiries, 1);
    assert_eq!(copy.snapshot(), s.engine.snapshot());
    assert_eq!(observe(&copy), s.observe());
}

// ==== regressions from review ==========================================================

/// A fresh asset (id 9, 2 decimals) with nothing in it yet.
fn fresh_asset(s: &mut Bank) -> AssetId {
    let asset = AssetId(9);
    let symbol = Symbol::new("EUR").unwrap();
    s.admin(CommandBody::CreateAsset { asset, symbol, scale: 2 });
    asset
}

/// The same money moving back and forth within a day: the velocity window's sum of
/// debits passes i64::MAX and must neither overflow nor wrap (it is kept in i128).
#[test]
fn a_day_of_debits_may_add_up_beyond_i64() {
    let mut s = Bank::new();
    let eur = fresh_asset(&mut s);
    s.admin(deposit(ALICE_ACCOUNT, eur, i64::MAX, 70));
    for id in 1..=3 {
        s.ok(ALICE, in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, i64::MAX, id), eur));
        s.ok(BOB, in_asset(transfer(BOB_ACCOUNT, ALICE_ACCOUNT, i64::MAX, id), eur));
    }
    // A limit set now sees the whole day: three times i64::MAX already went out.
    s.admin(account_limits(ALICE_ACCOUNT, eur, 0, Some(i64::MAX)));
    let body = in_asset(transfer(ALICE_ACCOUNT, BOB_ACCOUNT, 1, 4), eur);
    s.expect_reject(ALICE, body, RejectReason::VelocityLimitExceeded);
    s.restore();
}

/// Withdrawals on credit make the supply negative; limits can still be set, and the
/// state still snapshots.
#[test]
fn supply_below_zero_through_credit_is_a_valid_state() {
    let mut s = Bank::new();
    let eur = fresh_asset(&mut s);
    s.admin(account_limits(ALICE_ACCOUNT, eur, 100, None));
    s.admin(withdraw(ALICE_ACCOUNT, eur, 100, 1));
    s.admin(account_limits(BOB_ACCOUNT, eur, 1, None));
    // Supply + credit limits must stay within i64: -100 + 100 + 1 leaves room for
    // exactly i64::MAX - 1 more.
    s.expect_reject(
        ADMIN,
        deposit(BOB_ACCOUNT, eur, i64::MAX, 2),
        RejectReason::ArithmeticOverflow,
    );
    s.admin(deposit(BOB_ACCOUNT, eur, i64::MAX - 1, 3));
    s.restore();
}

/// A closed account leaves no payment limits or velocity window behind, so its state
/// snapshots and its credit limit no longer counts against the asset's bound.
#[test]
fn closing_an_account_drops_its_payment_limits_and_window() {
    let mut s = Bank::new();
    let eur = fresh_asset(&mut s);
    s.add_erin();
    s.admin(account_limits(ERIN_ACCOUNT, eur, 100, Some(50)));
    s.admin(deposit(ERIN_ACCOUNT, eur, 10, 1));
    s.ok(ERIN, in_asset(transfer(ERIN_ACCOUNT, BOB_ACCOUNT, 10, 1), eur));
    s.admin(status(ERIN_ACCOUNT, AccountStatus::Closed));
    s.restore();
    // The whole i64 range is available again to deposits in the asset (10 went in).
    s.admin(deposit(BOB_ACCOUNT, eur, i64::MAX - 10, 2));
    s.restore();
    // Its debit stays in the velocity log (in no account's sum) until it is a day old,
    // then leaves like any other; both states snapshot.
    let day_later = s.now() + DAY;
    s.at(day_later);
    s.ok(BOB, in_asset(transfer(BOB_ACCOUNT, ALICE_ACCOUNT, 5, 1), eur));
    s.restore();
}
