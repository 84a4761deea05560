//! The README's quick start, run as a person would: `fincore serve` (the embedded demo
//! configuration, on an ephemeral port of 127.0.0.1), `fincore client` orders that
//! cross, a balance in text and JSON, then SIGINT: a clean exit whose last line carries
//! the state hash, which `fincore replay` of the data directory reproduces. And every
//! client example the README shows, run in order, prints what the README says.

mod common;

use common::{BIN, Server};
use std::process::Command;

fn fincore(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[test]
fn serve_client_cross_and_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let addr = server.addr.clone();
    let client = |args: &[&str]| {
        let mut all = vec!["client", "--addr", &addr];
        all.extend_from_slice(args);
        fincore(&all)
    };

    let (ok, out, err) = client(&["order", "buy", "BTC-USD", "0.01", "60000", "--id", "1"]);
    assert!(ok, "{err}");
    assert!(out.contains("accepted: order 1 (client id 1) buy 0.0100 BTC-USD @ 60000.00"), "{out}");
    let (ok, out, err) =
        client(&["--user", "bob", "order", "sell", "BTC-USD", "0.004", "59990", "--id", "7"]);
    assert!(ok, "{err}");
    assert!(out.contains("fill: trade 1 0.0040 BTC-USD @ 60000.00"), "{out}");
    // Bob's copy of the fill hides alice's side.
    let bobs = "(maker not shown; taker order 2 account 3, fee 0.120000 USD)";
    assert!(out.contains(bobs), "{out}");

    // Alice paid 0.004 x 60 000 = 240 USD plus the 1 bp maker fee (0.024) from her
    // 600.30 hold; the rest of the hold covers the 0.006 still resting.
    let (ok, out, _) = client(&["--json", "balance"]);
    assert!(ok);
    let usd: serde_json::Value = out
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|v| v["asset"] == "USD")
        .unwrap();
    assert_eq!(usd["available"], "999399.796000");
    assert_eq!(usd["held"], "360.180000");

    // Refusals exit non-zero with the reason.
    let (ok, _, err) = client(&["order", "buy", "BTC-USD", "0.01", "60000.005"]);
    assert!(!ok && err.contains("PriceOffTick (402)"), "{err}");
    let (ok, out, _) = client(&["deposit", "2", "USD", "10"]);
    assert!(!ok && out.contains("NotAdmin (101)"), "{out}");
    let (ok, _, err) = client(&["--secret", "wrong", "balance"]);
    assert!(!ok && err.contains("LoginFailed (906)"), "{err}");

    let last = server.stop();
    let field = |line: &str, key: &str| {
        line.split(&format!("{key}="))
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let (hash, seq) = (field(&last, "state_hash"), field(&last, "seq"));

    let (ok, out, err) = fincore(&["replay", "--data", data, "--no-snapshot"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("state_hash={hash} seq={seq}")), "{out}");

    // A restart recovers the same state.
    let server = Server::start_in(dir.path(), &[]);
    let recovered = server.seen.iter().find(|l| l.contains("recovered")).unwrap();
    assert!(recovered.contains(&format!("state_hash={hash}")), "{recovered}");
    let addr = server.addr.clone();
    let (ok, out, _) = fincore(&["client", "--addr", &addr, "orders"]);
    assert!(ok);
    assert!(out.contains("order 1 (client id 1) buy 0.0060 BTC-USD @ 60000.00, filled 0.0040"));
    server.stop();
}

/// Every `$ fincore client ...` example in README.md, run in order against a fresh
/// server, prints exactly what the README shows (stdout, then stderr).
#[test]
fn readme_examples_match_a_fresh_server() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let server = Server::start();
    let mut examples = 0;
    for block in readme.split("```text\n").skip(1) {
        let block = block.split("```").next().expect("a closed block");
        let mut lines = block.lines().peekable();
        while let Some(line) = lines.next() {
            let command = line.strip_prefix("$ fincore client ").expect("a client command");
            let mut expected = Vec::new();
            while let Some(output) = lines.next_if(|l| !l.starts_with("$ ")) {
                expected.push(output);
            }
            let mut args = vec!["client", "--addr", server.addr.as_str()];
            args.extend(command.split_whitespace());
            let (_, out, err) = fincore(&args);
            let printed = format!("{out}{err}");
            let printed: Vec<&str> = printed.lines().collect();
            assert_eq!(printed, expected, "README example `fincore client {command}`");
            examples += 1;
        }
    }
    assert!(examples >= 10, "only {examples} README examples found");
    server.stop();
}
