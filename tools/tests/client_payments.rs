//! The payment commands of `fincore client`, run as a person would against a real
//! `fincore serve` (the embedded demo configuration, on an ephemeral port, in a fresh
//! data directory per test): transfers and their idempotency, authorizations captured,
//! voided and expired, the payment history, refusals and their exit codes, operator
//! deposits and the deny-list. Assertions are on the printed text and on `--json`.
//!
//! Demo facts used throughout: alice is user 2 and owns account 2, bob 3/3, carol 4/4,
//! payops (5) is a payment operator, admin (1) an admin; every trader's account starts
//! with 1 000 000 USD (6 decimals); USD allows at most 250 000 per payment. Traders only
//! see their own accounts' balances: a payment's reply shows the payer's balance, not
//! the payee's.

mod common;

use common::{BIN, Server};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// What one `fincore` run printed, and how it exited.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    /// Panics with everything printed unless the run exited 0.
    fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.out,
            self.err
        );
        self
    }

    /// Panics unless the run failed as a refusal does (exit 1, "refused" on stderr) and
    /// printed `reason` (e.g. `PaymentIdConflict (1007)`) on stdout.
    fn refused(self, reason: &str) -> Run {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit 1\nstdout:\n{}\nstderr:\n{}",
            self.out,
            self.err
        );
        assert!(self.out.contains(reason), "no {reason:?} in stdout:\n{}", self.out);
        assert!(self.err.contains("refused"), "stderr:\n{}", self.err);
        self
    }

    /// The stdout lines, each parsed as one JSON object.
    fn json(&self) -> Vec<Value> {
        self.out
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// The only JSON object printed.
    fn one(&self) -> Value {
        let mut objects = self.json();
        assert_eq!(objects.len(), 1, "{}", self.out);
        objects.remove(0)
    }

    fn lines(&self) -> Vec<&str> {
        self.out.lines().collect()
    }
}

/// The client side of the tests, on the shared server harness.
trait Cli {
    fn client(&self, args: &[&str]) -> Run;
    fn usd(&self, user: &str) -> Value;
    fn assert_usd(&self, user: &str, available: &str, pending: &str);
}

impl Cli for Server {
    /// `fincore client --addr <server> ARGS` (alice unless ARGS say `--user`).
    fn client(&self, args: &[&str]) -> Run {
        let output =
            Command::new(BIN).args(["client", "--addr", &self.addr]).args(args).output().unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        Run { code: output.status.code(), out: text(output.stdout), err: text(output.stderr) }
    }

    /// `user`'s USD balance as JSON (`balance_info`).
    fn usd(&self, user: &str) -> Value {
        let run = self.client(&["--user", user, "--json", "balance"]).ok();
        run.json().into_iter().find(|v| v["asset"] == "USD").unwrap()
    }

    /// Asserts `user`'s USD available and pending amounts.
    fn assert_usd(&self, user: &str, available: &str, pending: &str) {
        let usd = self.usd(user);
        assert_eq!(usd["type"], "balance_info", "{usd}");
        assert_eq!(usd["available"], available, "{user}: {usd}");
        assert_eq!(usd["held"], "0.000000", "{user}: {usd}");
        assert_eq!(usd["pending"], pending, "{user}: {usd}");
    }
}

/// The `payment` object of a command's JSON reply, checked to be the first one.
fn payment_reply(run: &Run, action: &str) -> Value {
    let objects = run.json();
    let payment = objects.first().unwrap_or_else(|| panic!("no reply: {}", run.err)).clone();
    assert_eq!(payment["type"], "payment", "{}", run.out);
    assert_eq!(payment["action"], action, "{}", run.out);
    payment
}

/// A payment id from JSON.
fn id_of(payment: &Value) -> String {
    payment["payment_id"].as_u64().unwrap_or_else(|| panic!("no payment_id: {payment}")).to_string()
}

#[test]
fn transfer_is_idempotent_by_client_payment_id() {
    let server = Server::start();

    let run = server.client(&["pay", "3", "USD", "25.50", "--id", "7"]).ok();
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{}", run.out);
    let created = lines[0];
    let id = created
        .strip_prefix("payment: payment ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{created}"));
    assert_eq!(
        created,
        format!(
            "payment: payment {id} (client id 7) transfer 25.500000 USD account 2 -> account 3: completed"
        )
    );
    assert_eq!(
        lines[1],
        "balance: account 2 available 999974.500000 USD held 0.000000 USD pending 0.000000 USD"
    );
    // The payee's balance is bob's business: alice's reply does not show it.
    assert!(!run.out.contains("account 3 available"), "{}", run.out);
    server.assert_usd("alice", "999974.500000", "0.000000");
    server.assert_usd("bob", "1000025.500000", "0.000000");

    // The identical command again: a duplicate, exit 0, nothing moved.
    let run = server.client(&["pay", "3", "USD", "25.50", "--id", "7"]).ok();
    assert_eq!(
        run.lines(),
        [format!(
            "duplicate (already done, nothing moved): payment {id} (client id 7) transfer 25.500000 USD account 2 -> account 3: completed"
        )]
    );
    // The same amount written differently is the same payment.
    let run = server.client(&["--json", "pay", "3", "USD", "25.5", "--id", "7"]).ok();
    let duplicate = run.one();
    assert_eq!(duplicate["type"], "payment");
    assert_eq!(duplicate["action"], "duplicate");
    assert_eq!(id_of(&duplicate), id);
    assert_eq!(duplicate["client_payment_id"], 7);
    assert_eq!(duplicate["kind"], "transfer");
    assert_eq!(duplicate["status"], "completed");
    assert_eq!(duplicate["amount"], "25.500000");
    assert_eq!(duplicate["amount_raw"], 25_500_000);
    assert_eq!(duplicate["captured"], "25.500000");
    assert_eq!((duplicate["debit"].clone(), duplicate["credit"].clone()), (2.into(), 3.into()));
    server.assert_usd("alice", "999974.500000", "0.000000");
    server.assert_usd("bob", "1000025.500000", "0.000000");

    // The same id for a different payment is refused, and moves nothing.
    server
        .client(&["pay", "3", "USD", "26", "--id", "7"])
        .refused("rejected: PaymentIdConflict (1007) (command transfer, account 2, client id 7)");
    let run = server.client(&["--json", "pay", "4", "USD", "25.50", "--id", "7"]).refused("1007");
    let rejected = run.one();
    assert_eq!(rejected["type"], "rejected");
    assert_eq!(rejected["reason"], 1007);
    assert_eq!(rejected["kind"], "transfer");
    assert_eq!(rejected["client_id"], 7);
    server.assert_usd("alice", "999974.500000", "0.000000");
    server.assert_usd("bob", "1000025.500000", "0.000000");
    server.assert_usd("carol", "1000000.000000", "0.000000");

    // Client payment ids belong to the paying account: bob's 7 is a new payment.
    let run = server.client(&["--user", "bob", "--json", "pay", "2", "USD", "0.5", "--id", "7"]);
    let created = payment_reply(&run.ok(), "created");
    assert_ne!(id_of(&created), id);
    assert_eq!((created["debit"].clone(), created["credit"].clone()), (3.into(), 2.into()));
    server.assert_usd("alice", "999975.000000", "0.000000");
    server.assert_usd("bob", "1000025.000000", "0.000000");
}

#[test]
fn authorization_captured_in_part_voided_and_listed() {
    let server = Server::start();

    // Authorize 100: alice's money moves from available to pending.
    let run =
        server.client(&["--json", "authorize", "3", "USD", "100", "--timeout", "600", "--id", "8"]);
    let run = run.ok();
    let auth = payment_reply(&run, "created");
    let id = id_of(&auth);
    assert_eq!(auth["kind"], "authorization");
    assert_eq!(auth["status"], "pending");
    assert_eq!(auth["client_payment_id"], 8);
    assert_eq!(auth["amount"], "100.000000");
    assert_eq!(auth["captured"], "0.000000");
    assert_eq!(auth["asset"], "USD");
    assert_eq!((auth["debit"].clone(), auth["credit"].clone()), (2.into(), 3.into()));
    let (created, deadline) = (auth["created_ns"].as_u64(), auth["deadline_ns"].as_u64());
    assert_eq!(deadline.unwrap() - created.unwrap(), 600_000_000_000, "{auth}");
    let balance = &run.json()[1];
    assert_eq!(balance["type"], "balance");
    assert_eq!(balance["account"], 2);
    assert_eq!(balance["available"], "999900.000000");
    assert_eq!(balance["pending"], "100.000000");
    let run = server.client(&["balance"]).ok();
    assert_eq!(
        run.lines()[0],
        "balance: account 2 available 999900.000000 USD held 0.000000 USD pending 100.000000 USD"
    );
    server.assert_usd("bob", "1000000.000000", "0.000000");

    // Bob, the payee, captures 40 by payment id; the other 60 go back to alice.
    let run = server.client(&["--user", "bob", "capture", &id, "--amount", "40"]).ok();
    assert_eq!(
        run.lines(),
        [
            format!(
                "captured: payment {id} (client id 8) authorization 100.000000 USD account 2 -> account 3: completed, captured 40.000000 USD"
            ),
            "balance: account 3 available 1000040.000000 USD held 0.000000 USD pending 0.000000 USD"
                .to_string(),
        ]
    );
    server.assert_usd("alice", "999960.000000", "0.000000");
    server.assert_usd("bob", "1000040.000000", "0.000000");
    // Capturing the same amount again is a duplicate.
    let run = server.client(&["--user", "bob", "--json", "capture", &id, "--amount", "40"]).ok();
    let duplicate = run.one();
    assert_eq!(duplicate["action"], "duplicate");
    assert_eq!(duplicate["captured"], "40.000000");
    server.assert_usd("bob", "1000040.000000", "0.000000");

    // Alice sees it completed, by payment id and by her client id.
    let run = server.client(&["payment", &id]).ok();
    assert_eq!(
        run.lines(),
        [format!(
            "payment {id} (client id 8) authorization 100.000000 USD account 2 -> account 3: completed, captured 40.000000 USD"
        )]
    );
    let info = server.client(&["--json", "payment", "8", "--client"]).ok().one();
    assert_eq!(info["type"], "payment_info");
    assert_eq!(id_of(&info), id);
    assert_eq!(info["status"], "completed");
    assert_eq!(info["amount"], "100.000000");
    assert_eq!(info["captured"], "40.000000");
    assert_eq!(info["captured_raw"], 40_000_000);
    assert!(info["resolved_ns"].as_u64().unwrap() >= created.unwrap(), "{info}");

    // Too late to void.
    server
        .client(&["void", &id])
        .refused("rejected: PaymentNotPending (1009) (command void, account 2)");
    let run = server.client(&["--json", "--user", "bob", "void", &id]).refused("1009");
    assert_eq!(run.one()["reason"], 1009);
    server.assert_usd("alice", "999960.000000", "0.000000");

    // A second authorization, voided by alice's client id: the hold is released.
    let run = server.client(&["authorize", "3", "USD", "30", "--id", "9"]).ok();
    assert!(run.out.contains("authorization 30.000000 USD account 2 -> account 3: pending"));
    assert!(
        run.out.contains("available 999930.000000 USD held 0.000000 USD pending 30.000000 USD")
    );
    let run = server.client(&["void", "--client", "9"]).ok();
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{}", run.out);
    assert!(lines[0].starts_with("voided: payment "), "{}", run.out);
    assert!(
        lines[0]
            .ends_with("(client id 9) authorization 30.000000 USD account 2 -> account 3: voided"),
        "{}",
        run.out
    );
    assert_eq!(
        lines[1],
        "balance: account 2 available 999960.000000 USD held 0.000000 USD pending 0.000000 USD"
    );
    let voided =
        payment_reply(&server.client(&["--json", "void", "--client", "9"]).ok(), "duplicate");
    assert_eq!(voided["status"], "voided");
    assert_eq!(voided["captured"], "0.000000");
    server.assert_usd("alice", "999960.000000", "0.000000");
    server.assert_usd("bob", "1000040.000000", "0.000000");
    let voided_id = id_of(&voided);

    // History, newest first, for either side.
    for user in ["alice", "bob"] {
        let run = server.client(&["--user", user, "--json", "payments", "--limit", "2"]).ok();
        let listed = run.json();
        let ids: Vec<String> = listed.iter().map(id_of).collect();
        assert_eq!(ids, [voided_id.clone(), id.clone()], "{user}: {}", run.out);
        assert!(listed[0]["payment_id"].as_u64() > listed[1]["payment_id"].as_u64());
        assert!(listed.iter().all(|p| p["type"] == "payment_info"), "{}", run.out);
        assert_eq!(listed[0]["status"], "voided");
        assert_eq!(listed[1]["status"], "completed");
        assert_eq!(listed[1]["captured"], "40.000000");
    }
    let run = server.client(&["payments", "--limit", "2"]).ok();
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{}", run.out);
    assert!(lines[0].starts_with(&format!("payment {voided_id} (client id 9) ")), "{}", run.out);
    assert!(lines[1].starts_with(&format!("payment {id} (client id 8) ")), "{}", run.out);
    // Without a limit the history reaches back to the setup deposits (USD, BTC, ETH).
    let all = server.client(&["--json", "payments"]).ok().json();
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all[2..].iter().all(|p| p["kind"] == "deposit" && p["debit"].is_null()), "{all:?}");
}

#[test]
fn refusals_print_the_reason_and_exit_non_zero() {
    let server = Server::start();

    // Above the per-payment maximum; the maximum itself is allowed.
    server
        .client(&["pay", "3", "USD", "250000.000001", "--id", "1"])
        .refused("rejected: AboveTransferMax (1005) (command transfer, account 2, client id 1)");
    let run = server.client(&["--json", "pay", "3", "USD", "250001", "--id", "1"]).refused("1005");
    assert_eq!(
        run.one()["reason_name"].as_str().map(|s| s.contains("AboveTransferMax")),
        Some(true)
    );
    // A refused payment is not recorded: its id is free for the corrected retry.
    let run = server.client(&["--json", "pay", "3", "USD", "250000", "--id", "1"]).ok();
    assert_eq!(payment_reply(&run, "created")["amount"], "250000.000000");
    server.assert_usd("alice", "750000.000000", "0.000000");

    // Paying from someone else's account, or to oneself.
    server
        .client(&["--account", "3", "pay", "4", "USD", "1", "--id", "2"])
        .refused("rejected: AccountNotOwned (202) (command transfer, account 3, client id 2)");
    server
        .client(&["pay", "2", "USD", "1", "--id", "3"])
        .refused("rejected: SameAccount (1001) (command transfer, account 2, client id 3)");
    // Unknown payments cannot be captured or shown.
    server.client(&["capture", "999999"]).refused("UnknownPayment (1008)");
    let run = server.client(&["payment", "999999"]);
    assert_eq!(run.code, Some(1), "{}", run.err);
    // The reason is printed once, with the answer; the exit message only says refused.
    assert!(run.out.contains("UnknownPayment (1008)"), "{}", run.out);
    assert_eq!(run.err.trim(), "fincore: refused", "{}", run.err);

    // A trader may not deposit: the session refuses it before the engine sees it.
    let run = server
        .client(&["deposit", "2", "USD", "10", "--id", "4"])
        .refused("refused: NotAdmin (101)");
    assert_eq!(run.lines().len(), 1, "{}", run.out);
    let run = server.client(&["--json", "withdraw", "2", "USD", "10", "--id", "4"]).refused("101");
    let reject = run.one();
    assert_eq!(reject["type"], "session_reject");
    assert_eq!(reject["reason"], 101);

    // Finer than the asset's minor unit: refused by the client, nothing sent.
    let too_fine: [&[&str]; 3] = [
        &["pay", "3", "USD", "0.0000001"],
        &["authorize", "3", "USD", "1.0000005"],
        &["--json", "pay", "3", "BTC", "0.000000001"],
    ];
    for args in too_fine {
        let run = server.client(args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.err);
        assert!(
            run.err.contains("has more decimal places than the asset's"),
            "{args:?}: {}",
            run.err
        );
        assert!(run.out.is_empty(), "{args:?}: {}", run.out);
    }

    // Nothing above moved money but the 250 000.
    server.assert_usd("alice", "750000.000000", "0.000000");
    server.assert_usd("bob", "1250000.000000", "0.000000");
    server.assert_usd("carol", "1000000.000000", "0.000000");
    let history = server.client(&["--json", "payments"]).ok().json();
    assert_eq!(history.len(), 4, "the 250 000 and the three setup deposits: {history:?}");
}

#[test]
fn deny_list_blocks_and_unblocks_payments() {
    let server = Server::start();

    // Only an admin manages the deny-list.
    server.client(&["block", "3"]).refused("NotAdmin (101)");
    let run = server.client(&["--user", "admin", "block", "3"]).ok();
    assert_eq!(run.lines(), ["account 3 is on the deny-list"]);
    server.client(&["--user", "admin", "block", "3"]).refused("StatusUnchanged (805)");

    // Neither to nor from a blocked account.
    server.client(&["pay", "3", "USD", "1", "--id", "20"]).refused(
        "rejected: CreditAccountBlocked (1004) (command transfer, account 2, client id 20)",
    );
    server
        .client(&["authorize", "3", "USD", "1", "--id", "21"])
        .refused("CreditAccountBlocked (1004)");
    server
        .client(&["--user", "bob", "pay", "2", "USD", "1", "--id", "20"])
        .refused("rejected: AccountBlocked (");
    server.assert_usd("alice", "1000000.000000", "0.000000");
    server.assert_usd("bob", "1000000.000000", "0.000000");

    let run = server.client(&["--user", "admin", "--json", "unblock", "3"]).ok();
    assert_eq!(run.lines().len(), 1, "{}", run.out);
    let run = server.client(&["pay", "3", "USD", "1", "--id", "20"]).ok();
    assert!(
        run.out.contains("(client id 20) transfer 1.000000 USD account 2 -> account 3: completed")
    );
    server.assert_usd("alice", "999999.000000", "0.000000");
    server.assert_usd("bob", "1000001.000000", "0.000000");
}

#[test]
fn operator_deposits_and_withdraws() {
    let server = Server::start();

    let run = server
        .client(&["--user", "payops", "--json", "deposit", "4", "USD", "10", "--id", "5"])
        .ok();
    let deposit = payment_reply(&run, "created");
    let id = id_of(&deposit);
    assert_eq!(deposit["kind"], "deposit");
    assert_eq!(deposit["debit"], Value::Null, "the external account: {deposit}");
    assert_eq!(deposit["credit"], 4);
    assert_eq!(deposit["asset"], "USD");
    assert_eq!(deposit["amount"], "10.000000");
    assert_eq!(deposit["status"], "completed");
    assert_eq!(deposit["client_payment_id"], 5);
    // An operator sees the effect on the account it deposited into.
    let balance = &run.json()[1];
    assert_eq!(
        (balance["type"].clone(), balance["account"].clone(), balance["available"].clone()),
        ("balance".into(), 4.into(), "1000010.000000".into())
    );
    server.assert_usd("carol", "1000010.000000", "0.000000");

    // Again: a duplicate. Deposits share one namespace of ids, whatever the account.
    let run = server.client(&["--user", "payops", "deposit", "4", "USD", "10", "--id", "5"]).ok();
    assert_eq!(
        run.lines(),
        [format!(
            "duplicate (already done, nothing moved): payment {id} (client id 5) deposit 10.000000 USD external -> account 4: completed"
        )]
    );
    server
        .client(&["--user", "payops", "deposit", "2", "USD", "10", "--id", "5"])
        .refused("PaymentIdConflict (1007)");
    server.assert_usd("carol", "1000010.000000", "0.000000");
    server.assert_usd("alice", "1000000.000000", "0.000000");

    // A withdrawal credits the external account.
    let run =
        server.client(&["--user", "payops", "withdraw", "4", "USD", "3.25", "--id", "6"]).ok();
    let lines = run.lines();
    assert!(
        lines[0]
            .ends_with("(client id 6) withdrawal 3.250000 USD account 4 -> external: completed"),
        "{}",
        run.out
    );
    assert_eq!(
        lines[1],
        "balance: account 4 available 1000006.750000 USD held 0.000000 USD pending 0.000000 USD"
    );
    let latest =
        server.client(&["--user", "carol", "--json", "payments", "--limit", "2"]).ok().json();
    assert_eq!(latest[0]["kind"], "withdrawal");
    assert_eq!(latest[0]["credit"], Value::Null);
    assert_eq!(id_of(&latest[1]), id);

    // An admin may deposit too.
    let run = server.client(&["--user", "admin", "deposit", "2", "USD", "1", "--id", "6"]).ok();
    assert!(
        run.out.contains("deposit 1.000000 USD external -> account 2: completed"),
        "{}",
        run.out
    );
    server.assert_usd("alice", "1000001.000000", "0.000000");
}

#[test]
fn authorization_expires_on_an_idle_server() {
    let server = Server::start();

    // 3 s: room for the next client process to see it pending on a loaded machine.
    let run =
        server.client(&["--json", "authorize", "3", "USD", "5", "--timeout", "3", "--id", "11"]);
    let run = run.ok();
    let auth = payment_reply(&run, "created");
    let id = id_of(&auth);
    let created = auth["created_ns"].as_u64().unwrap();
    let deadline = auth["deadline_ns"].as_u64().unwrap();
    assert_eq!(deadline - created, 3_000_000_000, "{auth}");
    let seq = run.json()[0]["journal_seq"].as_u64().unwrap();
    server.assert_usd("alice", "999995.000000", "5.000000");

    // Nothing but queries from here on: the server must journal the expiry by itself.
    std::thread::sleep(Duration::from_millis(3500));
    let give_up = Instant::now() + Duration::from_secs(10);
    let info = loop {
        let info = server.client(&["--json", "payment", &id]).ok().one();
        if info["status"] != "pending" || Instant::now() > give_up {
            break info;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(info["status"], "expired", "{info}");
    assert_eq!(info["captured"], "0.000000");
    assert!(info["resolved_ns"].as_u64().unwrap() >= deadline, "{info}");
    let run = server.client(&["payment", "11", "--client"]).ok();
    assert_eq!(
        run.lines(),
        [format!(
            "payment {id} (client id 11) authorization 5.000000 USD account 2 -> account 3: expired"
        )]
    );
    server.assert_usd("alice", "1000000.000000", "0.000000");
    server.assert_usd("bob", "1000000.000000", "0.000000");
    // An expired authorization can be neither captured nor voided.
    server.client(&["--user", "bob", "capture", &id]).refused("PaymentNotPending (1009)");
    server.client(&["void", "--client", "11"]).refused("PaymentNotPending (1009)");

    // The expiry is the journaled Tick right after the authorization, by the system user.
    let data = server.dir.to_str().unwrap();
    let from = (seq + 1).to_string();
    let output = Command::new(BIN)
        .args(["journal", "dump", "--json", "--data", data, "--from", &from, "--limit", "1"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["command"]["kind"], "tick", "{record}");
    assert_eq!(record["user"], 0, "{record}");
    assert!(record["time_ns"].as_u64().unwrap() >= deadline, "{record}");
}

/// `capture --amount 0` should be refused, not read as "capture everything" (0 is the
/// wire's "all").
#[test]
fn capture_of_zero_is_refused() {
    let server = Server::start();
    server.client(&["authorize", "3", "USD", "10", "--id", "1"]).ok();
    let run = server.client(&["capture", "1", "--client", "--amount", "0"]);
    assert_ne!(run.code, Some(0), "{}", run.out);
    let info = server.client(&["--json", "payment", "1", "--client"]).ok().one();
    assert_eq!(info["status"], "pending", "{info}");
    server.assert_usd("bob", "1000000.000000", "0.000000");
}
