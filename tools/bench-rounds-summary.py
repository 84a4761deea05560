#!/usr/bin/env python3
"""Summarises the lines tools/bench-rounds.sh appended: per benchmark and build, the
median over every run with its range and run count, each round's median, and for
two builds the paired ratio (B / A) of the runs made next to each other.

    tools/bench-rounds-summary.py [bench-rounds.txt]
"""

import collections
import json
import statistics
import sys


def rate(record):
    """Commands (or acknowledged orders) per second, in millions."""
    value = record.get("ops_per_sec") or record.get("achieved_rate")
    return None if value is None else value / 1e6


def main(path):
    runs = collections.defaultdict(list)  # (benchmark, build) -> [(round, rate, record)]
    order = collections.defaultdict(list)  # benchmark -> builds as they first appear
    with open(path) as lines:
        for line in lines:
            parts = line.split(" ", 3)
            if len(parts) < 4:
                continue
            stamp, benchmark, build, text = parts
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                print(f"skipped (no JSON): {line.strip()[:80]}", file=sys.stderr)
                continue
            value = rate(record)
            if value is None:
                continue
            runs[(benchmark, build)].append((stamp, value, record))
            if build not in order[benchmark]:
                order[benchmark].append(build)

    for benchmark in sorted(order):
        print(benchmark)
        for build in order[benchmark]:
            rows = runs[(benchmark, build)]
            values = [value for _, value, _ in rows]
            by_round = collections.defaultdict(list)
            for stamp, value, _ in rows:
                by_round[stamp].append(value)
            p99 = [r["p99_ns"] for _, _, r in rows if "p99_ns" in r and benchmark.startswith("engine")]
            tail = f", p99 median {statistics.median(p99):.0f} ns" if p99 else ""
            rounds = " ".join(f"{s} {statistics.median(v):.2f}" for s, v in by_round.items())
            print(
                f"  {build:24} median {statistics.median(values):6.2f} M/s "
                f"({min(values):.2f} - {max(values):.2f}, {len(values)} runs){tail}"
            )
            print(f"  {'':24} by round: {rounds}")
        if len(order[benchmark]) == 2:
            a, b = (runs[(benchmark, build)] for build in order[benchmark])
            # Runs alternate A B B A within a round: pair them in order.
            ratios = [y[1] / x[1] for x, y in zip(a, b)]
            wins = sum(1 for r in ratios if r > 1)
            print(
                f"  paired B/A: median {statistics.median(ratios):.2f}, "
                f"B faster in {wins} of {len(ratios)}"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench-rounds.txt")
