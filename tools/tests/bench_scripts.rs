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
    // Throughput per round (one run each) and the p99 of each run.
    let trading = [(11.0, 450), (11.0, 450), (11.0, 600), (9.0, 600)];
    let transfers = [(11.0, 0), (11.0, 0), (9.0, 0), (9.0, 0)];
    let pipeline = [(4.0, 0), (4.0, 0), (4.0, 0), (6.0, 0)];
    for (round, ((t, p99), ((x, _), (q, _)))) in
        trading.iter().zip(transfers.iter().zip(pipeline.iter())).enumerate()
    {
        let round = round as u32;
        rounds += &line(round, "engine-trading", "x", *t, *p99);
        rounds += &line(round, "engine-transfers", "x", *x, 400);
        rounds += &line(round, "pipeline", "x", *q, 1_000_000);
    }
    let targets = [
        "--target",
        "engine-trading=10",
        "--target",
        "engine-transfers=10",
        "--target",
        "pipeline=5",
        "--p99-target",
        "engine-trading=500",
    ];
    let text = summary(&rounds, &targets);
    assert_eq!(
        verdicts(&text, "engine-trading"),
        [
            // Median 11, 3 of 4 rounds at or above 10.
            "target >= 10 M/s: 3 of 4 round medians meet it -> met",
            // Median p99 525 ns, 2 of 4 rounds under 500.
            "p99 target < 500 ns: 2 of 4 round medians meet it -> not met",
        ],
        "{text}"
    );
    // The overall median (10) meets the target, but only half the rounds do.
    assert_eq!(
        verdicts(&text, "engine-transfers"),
        ["target >= 10 M/s: 2 of 4 round medians meet it -> not met"],
        "{text}"
    );
    assert_eq!(
        verdicts(&text, "pipeline"),
        ["target >= 5 M/s: 1 of 4 round medians meet it -> not met"],
        "{text}"
    );

    // Two copies of one build, pooled: each round's median is over both copies' runs.
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
            "target >= 10 M/s: 2 of 4 round medians meet it -> not met",
            "target >= 10 M/s: 3 of 4 round medians meet it -> met",
        ],
        "{apart}"
    );
    let pooled = summary(&copies, &["--pool", "--target", "engine-transfers=10"]);
    assert!(pooled.contains("pooled                   median  10.75 M/s"), "{pooled}");
    assert_eq!(
        verdicts(&pooled, "engine-transfers"),
        // Round medians 10.0, 11.25, 11.25, 9.25.
        ["target >= 10 M/s: 3 of 4 round medians meet it -> met"],
        "{pooled}"
    );
}
