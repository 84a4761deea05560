//! Crash recovery under load: `fincore serve` is killed with SIGKILL at seeded random
//! moments while `fincore load --ack-log` drives it, then restarted on the same data
//! directory, five times; finally `fincore replay --check-acks` proves from the journal
//! that every acknowledged command is there with its sequence and outcome, nothing was
//! accepted twice and every invariant (conservation among them) holds, and the replayed
//! state hash equals the one the last server reported at its clean stop. Both
//! durability modes. A kill -9 loses no page cache, so in `fsync` mode each kill is
//! also made an OS crash: the server logs (`--synced-log`) every sequence it has put on
//! the device, and after the kill everything past the last one is wiped from the
//! journal, but for a seeded number of bytes of the next record (a torn write). Every
//! command acknowledged in `fsync` mode must survive that.

mod common;

use common::faults::{Loss, lose_unsynced};
use common::{BIN, Server};
use fincore_engine::testkit::Rng;
use std::process::{Command, Stdio};
use std::time::Duration;

const ROUNDS: u32 = 5;

/// Kills the server `ROUNDS` times under load; with `os_crash`, each kill also loses
/// what was not synced. Returns what the simulated OS crashes lost in all.
fn crash_and_recover(durability: &str, os_crash: bool, seed: u64) -> Loss {
    let data = tempfile::tempdir().unwrap();
    let acks = data.path().join("acks.log");
    let synced_log = data.path().join("synced.log");
    let mut flags = vec!["--durability", durability];
    if os_crash {
        flags.extend(["--synced-log", synced_log.to_str().unwrap()]);
    }
    let mut rng = Rng::new(seed);
    let mut lost = Loss::default();
    for round in 0..ROUNDS {
        let server = Server::start_in(data.path(), &flags);
        let mut load = Command::new(BIN)
            .args(["load", "--addr", &server.addr, "--rate", "10000", "--duration", "3"])
            .args(["--sessions", "2", "--mix", "mixed", "--seed", &round.to_string()])
            .arg("--ack-log")
            .arg(&acks)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Somewhere in the first 2.5 s of load (seeded, so a failure can be rerun).
        let after = Duration::from_millis(300 + rng.below(2_200));
        std::thread::sleep(after);
        server.crash();
        let status = load.wait().unwrap();
        assert!(!status.success(), "round {round}: the load tool reports the lost server");
        if os_crash {
            let log = std::fs::read_to_string(&synced_log).unwrap();
            // The highest sequence known to be on the device. Not the last line: the
            // flusher and the engine thread (at a roll-over) both append, so lines can
            // arrive out of order.
            let synced: u64 = log.lines().map(|line| line.parse::<u64>().unwrap()).max().unwrap();
            let torn = rng.below(400) as usize;
            let loss = lose_unsynced(&data.path().join("journal"), synced, torn);
            lost.bytes_lost += loss.bytes_lost;
            lost.bytes_kept += loss.bytes_kept;
        }
    }
    let stopped = Server::start_in(data.path(), &flags).stop();
    let field = |line: &str, key: &str| {
        line.split(key).nth(1).unwrap().split_whitespace().next().unwrap().to_string()
    };
    let (hash, seq) = (field(&stopped, "state_hash="), field(&stopped, "seq="));

    let output = Command::new(BIN)
        .args(["replay", "--data"])
        .arg(data.path())
        .arg("--check-acks")
        .arg(&acks)
        .args(["--json"])
        .output()
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "check-acks failed:\n{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let checked = report["acks"].as_u64().unwrap();
    assert!(checked > 1_000 * u64::from(ROUNDS), "too few acknowledgements: {report}");
    assert_eq!(report["state_hash"], hash.as_str(), "{report} vs {stopped}");
    assert_eq!(report["seq"].as_u64().unwrap().to_string(), seq, "{report} vs {stopped}");
    eprintln!(
        "crash: {durability}, os crash {os_crash}: {checked} acknowledgements checked, {lost:?}"
    );
    lost
}

#[test]
fn nothing_acknowledged_is_lost_across_kill_9_process_durability() {
    crash_and_recover("process", false, 7);
}

#[test]
fn nothing_acknowledged_is_lost_across_os_crashes_fsync_durability() {
    let lost = crash_and_recover("fsync", true, 11);
    // Group commit syncs about once a millisecond, so a kill nearly always finds
    // records that were appended but not yet synced; five kills without any would mean
    // the crashes were not crashes of a busy server.
    assert!(lost.bytes_lost > 0, "no simulated OS crash lost anything: {lost:?}");
}

#[test]
fn check_acks_catches_an_acknowledgement_the_journal_does_not_have() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &[]);
    let acks = data.path().join("acks.log");
    let load = Command::new(BIN)
        .args(["load", "--addr", &server.addr, "--rate", "2000", "--duration", "1"])
        .args(["--sessions", "2", "--ack-log"])
        .arg(&acks)
        .output()
        .unwrap();
    assert!(load.status.success());
    let _ = server.stop();
    // A forged line: an acknowledgement far past the end of the journal.
    let mut text = std::fs::read_to_string(&acks).unwrap();
    text.push_str("10 1 999999999 accepted\n");
    std::fs::write(&acks, text).unwrap();
    let mut check = Command::new(BIN);
    check.args(["replay", "--data"]).arg(data.path()).arg("--check-acks").arg(&acks);
    let output = check.output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("not in the journal"), "{err}");
}
