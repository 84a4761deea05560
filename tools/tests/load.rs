//! `fincore load` against a real `fincore serve` (the embedded demo, ephemeral port,
//! fresh data directory): every command sent is acknowledged, the counts add up, the
//! JSON carries the documented fields, and the ack log has one line per acknowledged
//! command whose journal sequence numbers `fincore journal dump` confirms exist.

mod common;

use common::{BIN, Server};
use serde_json::Value;
use std::process::Command;

/// `fincore load --addr <server> ARGS --json`: its JSON summary.
fn load(server: &Server, args: &[&str]) -> Value {
    let mut command = Command::new(BIN);
    command.args(["load", "--addr", &server.addr, "--json"]).args(args);
    let output = command.output().unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    serde_json::from_str(out.lines().last().expect("a JSON line")).expect("JSON")
}
fn count(summary: &Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or_else(|| panic!("{field} in {summary}"))
}

#[test]
fn every_command_is_acknowledged_and_logged() {
    let server = Server::start();
    let ack_log = server.dir.join("acks.log");
    let summary = load(
        &server,
        &[
            "--rate",
            "2000",
            "--duration",
            "2",
            "--sessions",
            "2",
            "--ack-log",
            ack_log.to_str().unwrap(),
        ],
    );
    let sent = count(&summary, "sent");
    assert!((3_000..=4_100).contains(&sent), "about 2 s x 2 000/s: {summary}");
    assert_eq!(count(&summary, "acked"), sent, "{summary}");
    assert_eq!(count(&summary, "errors"), 0, "{summary}");
    assert_eq!(count(&summary, "unanswered"), 0, "{summary}");
    assert_eq!(count(&summary, "accepted") + count(&summary, "rejected"), sent, "{summary}");
    assert!(count(&summary, "fills") > 0, "the trading mix crosses: {summary}");
    for field in ["offered_rate", "achieved_rate", "p50_us", "p99_us", "p999_us", "max_us"] {
        assert!(summary[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {summary}");
    }
    assert!(summary["p50_us"].as_f64() <= summary["p99_us"].as_f64(), "{summary}");

    // One line per acknowledged command: account, client id, journal sequence, outcome.
    let text = std::fs::read_to_string(&ack_log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, sent);
    let mut seqs = Vec::new();
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert!(["10", "11"].contains(&fields[0]), "{line}");
        fields[1].parse::<u64>().unwrap();
        let outcome = fields[3];
        assert!(outcome == "accepted" || outcome.starts_with("rejected:"), "{line}");
        seqs.push(fields[2].parse::<u64>().unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len() as u64, sent, "each command has its own journal sequence");
    // The setup is journaled first, so every acknowledged command comes after it.
    assert!(seqs[0] > 1, "{}", seqs[0]);
}

#[test]
fn payments_and_mixed_workloads_run_clean() {
    let server = Server::start();
    for mix in ["payments", "mixed"] {
        let summary = load(&server, &["--mix", mix, "--rate", "2000", "--duration", "1"]);
        let sent = count(&summary, "sent");
        assert!(sent > 1_000, "{summary}");
        assert_eq!(count(&summary, "acked"), sent, "{summary}");
        assert_eq!(count(&summary, "errors"), 0, "{summary}");
        if mix == "payments" {
            // Small amounts between funded accounts, inside every limit: nothing refused.
            assert_eq!(count(&summary, "rejected"), 0, "{summary}");
        }
    }
}

#[test]
fn bad_arguments_are_refused() {
    let output = Command::new(BIN).args(["load", "--rate", "fast"]).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("--rate"), "{err}");
    let output =
        Command::new(BIN).args(["load", "--mix", "payments", "--sessions", "1"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8(output.stderr).unwrap().contains("two sessions"));
}
