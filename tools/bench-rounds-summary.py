#!/usr/bin/env python3
"""Summarises the lines tools/bench-rounds.sh appended: per benchmark and build, the
median over every run with its range and run count (and, for `bench engine`, the
median of the runs' p99 latencies), each round's median, and for two builds the paired
ratio (B / A) of the runs made next to each other.

    tools/bench-rounds-summary.py [bench-rounds.txt] [--svg FILE] [--target NAME=M/s ...]
                                  [--p99-target NAME=ns ...] [--pool]

`--target` (a throughput floor) and `--p99-target` (a ceiling on the p99 of `bench
engine` runs) also print a verdict per build under BENCHMARKS.md's rule: a target is
met only if the median over all runs meets it and so do at least three quarters of the
round medians. `--svg` draws each benchmark's round medians per build (one panel each)
with its throughput target, if one was given, as a dashed line. `--pool` counts every
build's runs as one build's ("pooled"), for rounds of two copies of the same code.
"""

import collections
import json
import statistics
import sys


def rate(record):
    """Commands (or acknowledged orders) per second, in millions; None if absent or 0."""
    if not isinstance(record, dict):
        return None
    value = record.get("ops_per_sec")
    if value is None:
        value = record.get("achieved_rate")
    return value / 1e6 if value else None


def round_medians(rows):
    """Each round's median rate, in the order the rounds were run."""
    by_round = collections.defaultdict(list)
    for stamp, value, _ in rows:
        by_round[stamp].append(value)
    return {stamp: statistics.median(values) for stamp, values in by_round.items()}


def verdict(what, overall, rounds, meets):
    """One line: the overall median and each round's median against a target (`+` meets
    it, `-` does not; values unrounded), and whether the target is met: the overall
    median and at least three quarters of the round medians must meet it."""
    hits = sum(1 for value in rounds if meets(value))
    met = meets(overall) and 4 * hits >= 3 * len(rounds)
    marks = " ".join(f"{v:.6g}{'+' if meets(v) else '-'}" for v in rounds)
    return (
        f"{what}: median {overall:.6g}{'+' if meets(overall) else '-'}, rounds {marks} "
        f"({hits} of {len(rounds)}) -> {'met' if met else 'not met'}"
    )


def main(path, svg=None, targets=None, p99_targets=None, pool=False):
    runs = collections.defaultdict(list)  # (benchmark, build) -> [(round, rate, record)]
    order = collections.defaultdict(list)  # benchmark -> builds as they first appear
    with open(path) as lines:
        for line in lines:
            parts = line.split(" ", 3)
            if len(parts) < 4:
                continue
            stamp, benchmark, build, text = parts
            build = "pooled" if pool else build
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

    for name, wanted in [(n, "--target") for n in targets or {}] + [
        (n, "--p99-target") for n in p99_targets or {}
    ]:
        if name not in order or (wanted == "--p99-target" and not name.startswith("engine")):
            known = ", ".join(b for b in sorted(order) if wanted == "--target" or b.startswith("engine"))
            print(f"warning: {wanted} {name}: no such benchmark here (have: {known})", file=sys.stderr)

    for benchmark in sorted(order):
        print(benchmark)
        for build in order[benchmark]:
            rows = runs[(benchmark, build)]
            values = [value for _, value, _ in rows]
            p99 = [r["p99_ns"] for _, _, r in rows if "p99_ns" in r and benchmark.startswith("engine")]
            tail = f", p99 median {statistics.median(p99):.0f} ns" if p99 else ""
            # Rounds by their time of day (HH:MM); the date is in the file.
            rounds = " ".join(f"{s[-5:]} {m:.2f}" for s, m in round_medians(rows).items())
            print(
                f"  {build:24} median {statistics.median(values):6.2f} M/s "
                f"({min(values):.2f} - {max(values):.2f}, {len(values)} runs){tail}"
            )
            print(f"  {'':24} by round: {rounds}")
            target = (targets or {}).get(benchmark)
            if target is not None:
                medians = list(round_medians(rows).values())
                what = f"target >= {target:g} M/s"
                line = verdict(what, statistics.median(values), medians, lambda v: v >= target)
                print(f"  {'':24} {line}")
            ceiling = (p99_targets or {}).get(benchmark)
            if ceiling is not None and p99:
                p99_rounds = round_medians([(s, r["p99_ns"], r) for s, _, r in rows if "p99_ns" in r])
                shown = " ".join(f"{s[-5:]} {m:.0f}" for s, m in p99_rounds.items())
                print(f"  {'':24} p99 by round: {shown} ns")
                what = f"p99 target < {ceiling:g} ns"
                medians = list(p99_rounds.values())
                line = verdict(what, statistics.median(p99), medians, lambda v: v < ceiling)
                print(f"  {'':24} {line}")
        if len(order[benchmark]) == 2:
            # Runs alternate A B B A within a round: the first A goes with the first B,
            # the second B with the second A. Paired within each round only, so a
            # missing run cannot shift the pairs of later rounds.
            a, b = (runs[(benchmark, build)] for build in order[benchmark])
            ratios = []
            for stamp in dict.fromkeys(s for s, _, _ in a):
                xs = [v for s, v, _ in a if s == stamp]
                ys = [v for s, v, _ in b if s == stamp]
                ratios += [y / x for x, y in zip(xs, ys)]
            wins = sum(1 for r in ratios if r > 1)
            print(
                f"  paired B/A: median {statistics.median(ratios):.2f}, "
                f"B faster in {wins} of {len(ratios)}"
            )

    if svg:
        with open(svg, "w") as file:
            file.write(chart(runs, order, targets or {}))


COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def chart(runs, order, targets):
    """An SVG with one panel per benchmark: round medians of each build, and the target."""
    benchmarks = sorted(order)
    width, panel_h, left, top = 760, 190, 70, 40
    height = top + panel_h * len(benchmarks) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">Median of each round, M/s '
        "(runs alternated A B B A within a round)</text>",
    ]
    for index, benchmark in enumerate(benchmarks):
        y0 = top + index * panel_h
        plot_w, plot_h = width - left - 170, panel_h - 50
        stamps = []
        series = []
        for build in order[benchmark]:
            points = round_medians(runs[(benchmark, build)])
            stamps += [stamp for stamp in points if stamp not in stamps]
            series.append((build, points))
        target = targets.get(benchmark)
        peak = max([v for _, points in series for v in points.values()] + [target or 0])
        top_value = peak * 1.15 or 1

        def x(i):
            return left + (plot_w * (i + 0.5) / max(len(stamps), 1))

        def y(v):
            return y0 + 20 + plot_h * (1 - v / top_value)

        out.append(f'<text x="{left}" y="{y0 + 12}" font-weight="bold">{benchmark}</text>')
        out.append(
            f'<rect x="{left}" y="{y0 + 20}" width="{plot_w}" height="{plot_h}" '
            'fill="none" stroke="#999"/>'
        )
        for tick in (0, top_value / 2, top_value):
            out.append(
                f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>'
            )
        for i, stamp in enumerate(stamps):
            out.append(
                f'<text x="{x(i):.1f}" y="{y0 + 20 + plot_h + 14}" text-anchor="middle" '
                f'font-size="10">{stamp[-5:]}</text>'
            )
        if target:
            out.append(
                f'<line x1="{left}" x2="{left + plot_w}" y1="{y(target):.1f}" '
                f'y2="{y(target):.1f}" stroke="black" stroke-dasharray="6,4"/>'
            )
            out.append(
                f'<text x="{left + 4}" y="{y(target) - 4:.1f}" font-size="10">target {target:g}</text>'
            )
        for n, (build, points) in enumerate(series):
            colour = COLOURS[n % len(COLOURS)]
            coords = [(x(i), y(points[s])) for i, s in enumerate(stamps) if s in points]
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
            for px, py in coords:
                out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
            out.append(
                f'<text x="{left + plot_w + 8}" y="{y0 + 40 + 16 * n}" fill="{colour}">{build}</text>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    args = sys.argv[1:]
    path, svg, targets, p99_targets, pool = "bench-rounds.txt", None, {}, {}, False
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(__doc__.strip())
            sys.exit(0)
        if arg == "--pool":
            pool = True
            continue
        if arg.startswith("-") and arg not in ("--svg", "--target", "--p99-target"):
            sys.exit(f"unknown option {arg} (see --help)")
        if arg in ("--svg", "--target", "--p99-target") and not args:
            sys.exit(f"{arg} needs a value")
        if arg == "--svg":
            svg = args.pop(0)
        elif arg in ("--target", "--p99-target"):
            name, _, value = args.pop(0).partition("=")
            try:
                (targets if arg == "--target" else p99_targets)[name] = float(value)
            except ValueError:
                example = "engine-transfers=10" if arg == "--target" else "engine-trading=500"
                sys.exit(f"{arg} wants NAME=value, e.g. {example}, not {name}={value}")
        else:
            path = arg
    main(path, svg, targets, p99_targets, pool)
