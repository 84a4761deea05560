//! The Python example client (`docs/examples/fincore_client.py`, written from
//! `docs/PROTOCOL.md` alone) against a live `fincore serve`: an order, a crossing order
//! that fills, a payment and its idempotent retry, and a refused login, each checked
//! field by field. The script is the proof that the protocol document is enough to write
//! a client without reading Rust, so a protocol change that leaves the document (and
//! the script) behind fails here.
//!
//! Needs `python3` on the PATH. Without it the test says so and passes, unless
//! `FINCORE_REQUIRE_PYTHON` is set (`.ci/run` sets it), in which case it fails.

mod common;

use common::{BIN, Server};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/fincore_client.py");

/// Runs the script against `port`; returns (exit success, stdout, stderr). Fails the
/// test if the script takes longer than 60 s (it waits for answers without a limit of
/// its own) or reports a gap in the server's message sequence numbers.
fn script(port: &str, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(["--port", port])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdout = read_all(child.stdout.take().expect("piped"));
    let stderr = read_all(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the script's status") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill the script");
            child.wait().expect("reap the script");
            let out = stdout.join().expect("stdout");
            panic!("the script ran for more than 60 s: {args:?}\n{out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (stdout.join().expect("stdout"), stderr.join().expect("stderr"));
    assert!(!out.contains("!! expected seq"), "a gap in the server's sequence numbers:\n{out}");
    (status.success(), out, err)
}

/// Reads `pipe` to its end on a thread (so that neither of a child's pipes fills up).
fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).expect("utf-8 output");
        text
    })
}

#[test]
fn the_python_example_client_trades_pays_and_is_refused_as_documented() {
    if !common::python_available("the Python example client") {
        return;
    }
    let server = Server::start();
    let port = server.addr.rsplit(':').next().expect("host:port").to_string();

    // Alice bids 0.01 BTC at 60 000: 100 lots at 6 000 000 ticks, holding the notional
    // plus the 5 bp taker fee in USD minor units.
    let alice_bid = ["--user", "alice", "--account", "2", "--symbol", "BTC-USD"];
    let order = ["--side", "buy", "--price", "60000.00", "--qty", "0.01"];
    let (ok, out, err) =
        script(&port, &[&alice_bid[..], &order, &["--client-order-id", "11"]].concat());
    assert!(ok, "{out}\n{err}");
    let accepted = "Accepted {order_id=1, account=2, instrument=0, client_order_id=11, side=Buy, \
                    price=6000000, qty=100, hold=600300000}";
    assert!(out.contains(accepted), "{out}");
    assert!(
        out.contains(
            "Balance {account=2, asset=0, available=999399700000, held=600300000, pending=0}"
        ),
        "{out}"
    );
    assert!(out.contains("Logout {'reason': 'ClientLogout (0)'}"), "{out}");

    // Bob sells 0.004 at 59 990: it trades at alice's price, and bob's copy of the fill
    // hides the maker's side (zeros).
    let bob_ask = ["--user", "bob", "--account", "3", "--side", "sell", "--price", "59990.00"];
    let (ok, out, err) =
        script(&port, &[&bob_ask[..], &["--qty", "0.004", "--client-order-id", "7"]].concat());
    assert!(ok, "{out}\n{err}");
    let fill = "Fill {instrument=0, trade_id=1, price=6000000, qty=40, taker_side=Sell, \
                maker_order=0, taker_order=2, maker_account=0, taker_account=3, \
                maker_client_id=0, taker_client_id=7, maker_fee=0, taker_fee=120000, \
                maker_remaining=0, taker_remaining=0}";
    assert!(out.contains(fill), "{out}");

    // A transfer, then the same request again: answered as a duplicate with the first
    // one's payment id, not applied twice; the payment query finds that payment; alice's
    // USD went down once.
    let pay = ["pay", "--user", "alice", "--account", "2", "--to", "3", "--asset", "USD"];
    let (ok, out, err) =
        script(&port, &[&pay[..], &["--amount", "250.00", "--payment-id", "5"]].concat());
    assert!(ok, "{out}\n{err}");
    let created = out.lines().find(|l| l.contains("Payment {action=Created,")).expect(&out);
    let duplicate = out.lines().find(|l| l.contains("Payment {action=Duplicate,")).expect(&out);
    for line in [created, duplicate] {
        let fields = "client_payment_id=5, kind=Transfer, debit=2, credit=3, asset=0, \
                      amount=250000000, captured=250000000, status=Completed";
        assert!(line.contains(fields), "{line}");
    }
    let id = |line: &str| {
        line.split("payment_id=").nth(1).map(|s| s.split(',').next().unwrap().to_string())
    };
    assert_eq!(id(created), id(duplicate));
    let queried = out.lines().find(|l| l.contains("PaymentInfo {")).expect(&out);
    assert!(queried.contains("client_payment_id=5"), "{queried}");
    assert_eq!(id(queried), id(created));
    // 999 399.70 USD before, then 240.024 paid for the fill (maker fee 1 bp), 250 paid
    // away once: the hold of the 0.006 BTC still bid stays at 360.18.
    let balances =
        "BalanceInfo {account=2, asset=0, available=999149796000, held=360180000, pending=0}";
    assert!(out.contains(balances), "{out}");

    // A wrong secret: the documented rejection, and a failing exit.
    let wrong = ["--user", "alice", "--secret", "wrong"];
    let (ok, out, _) = script(&port, &wrong);
    assert!(!ok, "{out}");
    assert!(out.contains("LoginRejected {'reason': 'LoginFailed (906)'}"), "{out}");

    // The Rust client reads the same balance back from the server.
    let output = Command::new(BIN)
        .args(["client", "--addr", &server.addr, "--json", "balance"])
        .output()
        .expect("fincore client runs");
    assert!(output.status.success());
    let usd = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|balance| balance["asset"] == "USD")
        .expect("a USD balance");
    assert_eq!(usd["available"], "999149.796000");
    assert_eq!(usd["held"], "360.180000");
}
