#!/usr/bin/env python3
"""End to end at saturation for several `--window` depths: what a deeper pipeline of
commands in flight buys in throughput and costs in round trip.

    tools/load-window-sweep.py BINARY [--windows 64,256,1024] [--runs 3]
        [--duration 8] [--out sweep.jsonl] [--svg sweep.svg]
    tools/load-window-sweep.py --from sweep.jsonl [--svg sweep.svg]

Each run starts `BINARY serve` on the demo configuration with the per-session rate
limit lifted (as tools/bench-rounds.sh does), on 127.0.0.1 with a port the system
picks, and drives it with `BINARY load --rate max --sessions 4 --window W`. The
windows are taken in turn within each run round, so every window sees the same
stretches of a noisy machine. One JSON line per run is written to `--out` (the load
tool's `--json` object plus `window`; the file is started afresh); a run whose load
tool failed, lost a session or left commands unanswered stops the sweep. The summary
prints medians per window, and `--svg` draws them: acknowledged commands/s, and the
round trip's p50 and p99.
"""

import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(path):
    """The demo configuration with the per-session rate limit lifted."""
    script = os.path.join(ROOT, "tools", "load-config.sh")
    if subprocess.run(["bash", script, path]).returncode != 0:
        sys.exit("could not write the load configuration")


def one_run(binary, window, duration, scratch):
    """Starts a fresh server, runs the load tool against it, stops the server."""
    data = os.path.join(scratch, f"data-{window}")
    log_path = os.path.join(scratch, "server.log")
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [binary, "serve", "--config", os.path.join(scratch, "load.toml"), "--data", data,
             "--listen", "127.0.0.1:0", "--log-format", "text"],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        addr = None
        for _ in range(100):
            with open(log_path) as log:
                match = re.search(r"listen=([0-9.:]+)", log.read())
            if match:
                addr = match.group(1)
                break
            if server.poll() is not None:
                break
            time.sleep(0.1)
        if addr is None:
            sys.exit(f"the server did not start; its log:\n{open(log_path).read()}")
        load = subprocess.run(
            [binary, "load", "--addr", addr, "--rate", "max", "--sessions", "4",
             "--window", str(window), "--duration", str(duration), "--json"],
            capture_output=True, text=True, timeout=float(duration) + 60)
        lines = load.stdout.strip().splitlines()
        if load.returncode != 0 or not lines or not lines[-1].startswith("{"):
            sys.exit(f"the load tool failed (exit {load.returncode}); its errors:\n{load.stderr}")
        record = json.loads(lines[-1])
        # A run with lost sessions or unanswered commands measured something else.
        for key in ("errors", "unanswered", "disconnected_sessions"):
            if record.get(key):
                sys.exit(f"window {window}: {key} = {record[key]}; the run does not count")
    finally:
        server.send_signal(2)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        subprocess.run(["rm", "-rf", data])
    record["window"] = window
    return record


def summary(records):
    """Medians per window: (window, rate M/s, p50 ms, p99 ms, tool CPU %, rejected %, runs)."""
    rows = []
    for window in sorted({r["window"] for r in records}):
        runs = [r for r in records if r["window"] == window]
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        rejected = statistics.median(100 * r["rejected"] / max(r["acked"], 1) for r in runs)
        rows.append((window, med("achieved_rate") / 1e6, med("p50_us") / 1e3,
                     med("p99_us") / 1e3, med("load_cpu_percent"), rejected, len(runs)))
    return rows


def chart(rows):
    """Two panels over the window (log scale): throughput, and p50 / p99 round trip."""
    width, left, panel_h, plot_w = 720, 70, 220, 560
    height = 40 + 2 * panel_h + 20
    windows = [row[0] for row in rows]
    lo, hi = min(windows), max(windows)

    def x(window):
        if hi == lo:
            return left + plot_w / 2
        return left + plot_w * (math.log2(window) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">End to end at saturation by commands in '
        "flight per session (4 sessions; medians)</text>",
    ]
    panels = [
        ("acknowledged, M commands/s", [("rate", 1, "#1f77b4")], 1.0, False),
        ("round trip, ms (log scale)", [("p50", 2, "#2ca02c"), ("p99", 3, "#d62728")], None,
         True),
    ]
    for index, (title, series, target, log) in enumerate(panels):
        y0 = 40 + index * panel_h
        plot_h = panel_h - 60
        values = [row[col] for _, col, _ in series for row in rows]
        if log:
            # Whole decades around the values.
            low = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
            high = max(10 ** math.ceil(math.log10(max(max(values), 1e-3))), low * 10)
            ticks = [low * 10**i for i in range(round(math.log10(high / low)) + 1)]

            def y(v, y0=y0, plot_h=plot_h, low=low, high=high):
                share = (math.log10(max(v, low)) - math.log10(low)) / math.log10(high / low)
                return y0 + 20 + plot_h * (1 - share)
        else:
            top = math.ceil(max(values + [target or 0]) * 1.15 * 4) / 4 or 1
            ticks = [i * top / 4 for i in range(5)]

            def y(v, y0=y0, plot_h=plot_h, top=top):
                return y0 + 20 + plot_h * (1 - v / top)

        out.append(f'<text x="{left}" y="{y0 + 12}" font-weight="bold">{title}</text>')
        out.append(f'<rect x="{left}" y="{y0 + 20}" width="{plot_w}" height="{plot_h}" '
                   'fill="none" stroke="#999"/>')
        for tick in ticks:
            out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                       f"{tick:g}</text>")
        for window in windows:
            out.append(f'<text x="{x(window):.1f}" y="{y0 + 20 + plot_h + 14}" '
                       f'text-anchor="middle" font-size="10">{window}</text>')
        out.append(f'<text x="{left + plot_w / 2}" y="{y0 + 20 + plot_h + 30}" '
                   'text-anchor="middle" font-size="10">--window (commands in flight per '
                   "session)</text>")
        if target:
            out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(target):.1f}" '
                       f'y2="{y(target):.1f}" stroke="black" stroke-dasharray="6,4"/>')
            out.append(f'<text x="{left + 4}" y="{y(target) - 4:.1f}" font-size="10">'
                       f"target {target:g}</text>")
        for n, (name, col, colour) in enumerate(series):
            points = " ".join(f"{x(row[0]):.1f},{y(row[col]):.1f}" for row in rows)
            out.append(f'<polyline points="{points}" fill="none" stroke="{colour}"/>')
            for row in rows:
                out.append(f'<circle cx="{x(row[0]):.1f}" cy="{y(row[col]):.1f}" r="3" '
                           f'fill="{colour}"/>')
            out.append(f'<text x="{left + plot_w + 8}" y="{y0 + 40 + 16 * n}" '
                       f'fill="{colour}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(args):
    options = {"--windows": "64,128,256,512,1024,2048", "--runs": "3", "--duration": "8",
               "--out": "window-sweep.jsonl", "--svg": None, "--from": None}
    binary = None
    while args:
        arg = args.pop(0)
        if arg in options and args:
            options[arg] = args.pop(0)
        elif not arg.startswith("-") and binary is None:
            binary = arg
        else:
            sys.exit(__doc__)
    if options["--from"]:
        with open(options["--from"]) as source:
            records = [json.loads(line) for line in source if line.strip()]
    elif binary:
        windows = [int(w) for w in options["--windows"].split(",")]
        records = []
        open(options["--out"], "w").close()
        with tempfile.TemporaryDirectory() as scratch:
            load_config(os.path.join(scratch, "load.toml"))
            for run in range(int(options["--runs"])):
                for window in windows:
                    record = one_run(binary, window, options["--duration"], scratch)
                    records.append(record)
                    with open(options["--out"], "a") as out:
                        out.write(json.dumps(record) + "\n")
                    print(f"run {run + 1} window {window}: {record['achieved_rate'] / 1e6:.3f} M/s"
                          f" p50 {record['p50_us'] / 1e3:.2f} ms", file=sys.stderr)
    else:
        sys.exit(__doc__)
    rows = summary(records)
    print("| `--window` | acknowledged/s | p50 | p99 | tool CPU | rejected | runs |")
    print("|---|---|---|---|---|---|---|")
    for window, rate, p50, p99, cpu, rejected, runs in rows:
        print(f"| {window} | {rate:.3f} M/s | {p50:.2f} ms | {p99:.2f} ms | {cpu:.0f} % | "
              f"{rejected:.1f} % | {runs} |")
    if options["--svg"]:
        with open(options["--svg"], "w") as out:
            out.write(chart(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
