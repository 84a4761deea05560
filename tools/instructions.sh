#!/usr/bin/env bash
# Instructions and mispredicted branches per command, counted by callgrind: the
# deterministic companion of the throughput benchmarks, for changes smaller than this
# machine's run-to-run noise (BENCHMARKS.md: two builds of the same engine pair at
# 0.94 - 1.06 in throughput through code placement alone).
#
#   tools/instructions.sh BINARY [BINARY ...]
#
# For each binary, one line per measurement:
#   BINARY engine-MIX   Ir=... Bcm=... Bim=...   (per command)
#   BINARY pipeline     Ir=... Bcm=... Bim=...   (per command, engine thread)
# Ir: instructions; Bcm / Bim: mispredicted conditional / indirect branches under
# callgrind's simple branch predictor model (a proxy: the CPU's predictor is better,
# but a change that halves the model's mispredicts rarely adds real ones).
#
# - engine-MIX: `fincore bench engine --mix MIX --ops OPS` run with one throughput pass
#   and with two; the difference is one pass of OPS commands (workload generation and
#   start-up cancel out; the pass's fresh engine, presized, and its setup stay in, about
#   90 instructions per command at 200 000 commands, the same for every build).
# - pipeline: `fincore bench pipeline --ops PIPELINE_OPS`; the engine thread's
#   `EngineThread::handle` (journal, apply, owners, outbound) divided by the commands.
#   The two threads spin while they wait, which callgrind only runs to the end with
#   `--fair-sched=yes`.
#
# Environment: MIXES (default "trading transfers"; empty for the pipeline only), OPS (default 200000), PIPELINE_OPS
# (default 50000), SEED (default 1). Needs valgrind (callgrind, callgrind_annotate);
# takes a few minutes per binary.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: tools/instructions.sh BINARY [BINARY ...]" >&2; exit 2; }
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
    { echo "valgrind (with callgrind_annotate) is needed" >&2; exit 2; }
mixes=${MIXES-trading transfers}
ops=${OPS:-200000}
pipeline_ops=${PIPELINE_OPS:-50000}
seed=${SEED:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The totals line of a callgrind output file: Ir Bc Bcm Bi Bim.
totals() {
    callgrind_annotate --show-percs=no --show=Ir,Bc,Bcm,Bi,Bim "$1" |
        awk '/PROGRAM TOTALS/ { gsub(",", ""); print $1, $2, $3, $4, $5 }'
}

# Prints "Ir=.. Bcm=.. Bim=.." for (after - before) / count.
per_command() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
before = [int(x) for x in sys.argv[1].split()] if sys.argv[1] else [0] * 5
after = [int(x) for x in sys.argv[2].split()]
count = int(sys.argv[3])
names = ["Ir", "Bc", "Bcm", "Bi", "Bim"]
d = {n: (a - b) / count for n, a, b in zip(names, after, before)}
print(" ".join(f"{n}={d[n]:.1f}" for n in ["Ir", "Bcm", "Bim"]))
PY
}

callgrind() {
    local out=$1
    shift
    valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file="$out" "$@" >/dev/null 2>"$out.log" ||
        { echo "callgrind failed: $*" >&2; tail -5 "$out.log" >&2; exit 1; }
}

for binary in "$@"; do
    for mix in $mixes; do
        for passes in 1 2; do
            callgrind "$work/engine.$passes" "$binary" bench engine --mix "$mix" --ops "$ops" \
                --rounds "$passes" --seed "$seed"
        done
        echo "$binary engine-$mix $(per_command "$(totals "$work/engine.1")" "$(totals "$work/engine.2")" "$ops")"
    done
    callgrind "$work/pipeline" --separate-threads=yes --fair-sched=yes "$binary" bench pipeline \
        --ops "$pipeline_ops" --seed "$seed"
    engine_thread=$(grep -l "EngineThread::handle" "$work"/pipeline-* | head -1)
    handle=$(callgrind_annotate --inclusive=yes --show-percs=no --show=Ir,Bc,Bcm,Bi,Bim "$engine_thread" |
        awk '/EngineThread::handle \[/ && !found { gsub(",", ""); print $1, $2, $3, $4, $5; found = 1 }')
    [ -n "$handle" ] || { echo "no EngineThread::handle in the engine thread's profile" >&2; exit 1; }
    echo "$binary pipeline $(per_command "" "$handle" "$pipeline_ops")"
    rm -f "$work"/*
done
