//! `tools/bench-rounds-summary.py`, which turns rounds of benchmark runs into the
//! verdicts BENCHMARKS.md reports: a target is met only if the median over all runs
//! meets it and so do at least three quarters of the round medians. Checked on rounds
//! made up for the purpose, whose verdicts are known.
//!
//! Needs `python3` on the PATH (see `common::python_available`).

mod common;

use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench-rounds-summary.py");

/// One line as `tools/bench-rounds.sh` appends it.
fn line(round: u32, benchmark: &str, build: &str, mega_per_sec: f64, p99_ns: u64) -> String {
    let ops = (mega_per_sec * 1e6) as u64;
    let json = format!("{{\"ops_per_sec\":{ops},\"p99_ns\":{p99_ns}}}");
    format!("2026-11-27T10:{round:02} {benchmark} {build} {json}\n")
}

fn summary(rounds: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rounds.txt");
    std::fs::write(&path, rounds).unwrap();
    let output = Command::new("python3").arg(SCRIPT).arg(&path).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// The verdict lines of one benchmark's section, in order.
fn verdicts(text: &str, benchmark: &str) -> Vec<String> {
    let section = text.split_once(&format!("{benchmark}\n")).expect("section").1;
    let section = section.lines().take_while(|l| l.starts_with(' '));
    section.filter(|l| l.contains("->")).map(|l| l.trim().to_string()).collect()
}

#[test]
fn verdicts_need_the_overall_median_and_three_quarters_of_the_rounds() {
    if !common::python_available("the bench-rounds summary") {
        return;
    }
    let mut rounds = String::new();
    for round in 0..4u32 {
        // (M/s, p99 ns) of one run per round.
        let trading = [(11.0, 450), (11.0, 450), (11.0, 500), (9.0, 600)][round as usize];
        let transfers = [(11.0, 400), (11.0, 400), (9.0, 400), (9.0, 600)][round as usize];
        rounds += &line(round, "engine-trading", "x", trading.0, trading.1);
        rounds += &line(round, "engine-transfers", "x", transfers.0, transfers.1);
        // Two runs a round: round medians 10, 10, 10, 9, but the median of all 8 is 9.
        let second = if round < 3 { 11.0 } else { 9.0 };
        rounds += &line(round, "pipeline", "x", 9.0, 0);
        rounds += &line(round, "pipeline", "x", second, 0);
    }
    let targets = [
        "--target",
        "engine-trading=10",
        "--p99-target",
        "engine-trading=500",
        "--target",
        "engine-transfers=10",
        "--p99-target",
        "engine-transfers=500",
        "--target",
        "pipeline=10",
    ];
    let text = summary(&rounds, &targets);
    assert_eq!(
        verdicts(&text, "engine-trading"),
        [
            "target >= 10 M/s: median 11+, rounds 11+ 11+ 11+ 9- (3 of 4) -> met",
            // A p99 of exactly 500 ns is not under 500.
            "p99 target < 500 ns: median 475+, rounds 450+ 450+ 500- 600- (2 of 4) -> not met",
        ],
        "{text}"
    );
    assert_eq!(
        verdicts(&text, "engine-transfers"),
        [
            // The overall median meets the target, but only half the rounds do.
            "target >= 10 M/s: median 10+, rounds 11+ 11+ 9- 9- (2 of 4) -> not met",
            "p99 target < 500 ns: median 400+, rounds 400+ 400+ 400+ 600- (3 of 4) -> met",
        ],
        "{text}"
    );
    // Three quarters of the rounds meet the target, but the overall median does not.
    assert_eq!(
        verdicts(&text, "pipeline"),
        ["target >= 10 M/s: median 9-, rounds 10+ 10+ 10+ 9- (3 of 4) -> not met"],
        "{text}"
    );

    // Two copies of one build, apart and pooled (each round's median over both copies).
    let mut copies = String::new();
    for (round, (a, b)) in [(9.0, 11.0), (11.0, 11.5), (10.5, 12.0), (9.5, 9.0)].iter().enumerate()
    {
        copies += &line(round as u32, "engine-transfers", "one", *a, 400);
        copies += &line(round as u32, "engine-transfers", "two", *b, 400);
    }
    let apart = summary(&copies, &["--target", "engine-transfers=10"]);
    assert_eq!(
        verdicts(&apart, "engine-transfers"),
        [
            "target >= 10 M/s: median 10+, rounds 9- 11+ 10.5+ 9.5- (2 of 4) -> not met",
            "target >= 10 M/s: median 11.25+, rounds 11+ 11.5+ 12+ 9- (3 of 4) -> met",
        ],
        "{apart}"
    );
    let pooled = summary(&copies, &["--pool", "--target", "engine-transfers=10"]);
    assert_eq!(
        verdicts(&pooled, "engine-transfers"),
        ["target >= 10 M/s: median 10.75+, rounds 10+ 11.25+ 11.25+ 9.25- (3 of 4) -> met"],
        "{pooled}"
    );
}
