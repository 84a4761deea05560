#!/usr/bin/env bash
# One round of the headline benchmarks for two builds, alternated A B B A, so that both
# see the same stretch of a noisy machine. Run it several times, minutes apart, and
# compare the medians over all rounds (tools/bench-rounds-summary.py); BENCHMARKS.md
# explains why one stretch is not enough on a shared VM.
#
#   tools/bench-rounds.sh A_BINARY B_BINARY [OUT_FILE]
#
# Appends one line per run to OUT_FILE (default bench-rounds.txt):
#   HH:MM BENCHMARK BUILD JSON
# where BUILD is the binary's file name and JSON is the benchmark's `--json` line.
# Benchmarks: `bench engine` (trading, transfers, payments), `bench pipeline`, and the
# end-to-end saturation run (`serve` with the per-session rate limit lifted, `load
# --rate max --sessions 4`; each build drives its own server). Takes about 3 minutes.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 A_BINARY B_BINARY [OUT_FILE]" >&2
    exit 2
fi
a=$1
b=$2
out=${3:-bench-rounds.txt}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
stamp=$(date -u +%H:%M)

# The demo configuration with the per-session rate limit lifted: the server's work,
# not its admission control, is measured.
sed -e 's/^# rate_per_sec = 100000 .*/rate_per_sec = 100000000/' \
    -e 's/^# burst = 10000 .*/burst = 100000000/' \
    "$root/gateway/src/demo.toml" >"$scratch/load.toml"

record() { # BENCHMARK BUILD JSON
    echo "$stamp $1 $(basename "$2") $3" >>"$out"
}

end_to_end() { # BINARY PORT
    local bin=$1 port=$2 server json
    rm -rf "$scratch/data"
    "$bin" serve --config "$scratch/load.toml" --data "$scratch/data" \
        --listen "127.0.0.1:$port" >"$scratch/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do
        grep -q "listening" "$scratch/server.log" && break
        sleep 0.1
    done
    json=$("$bin" load --addr "127.0.0.1:$port" --rate max --sessions 4 --duration 8 \
        --json 2>/dev/null | tail -1)
    kill -INT "$server"
    wait "$server" || true
    echo "$json"
}

for mix in transfers trading payments; do
    for bin in "$a" "$b" "$b" "$a"; do
        record "engine-$mix" "$bin" "$("$bin" bench engine --mix "$mix" --json 2>/dev/null | tail -1)"
    done
done
for bin in "$a" "$b" "$b" "$a"; do
    record pipeline "$bin" "$("$bin" bench pipeline --ops 2000000 --json 2>/dev/null | tail -1)"
done
port=17480
for bin in "$a" "$b" "$b" "$a"; do
    port=$((port + 1))
    record end-to-end "$bin" "$(end_to_end "$bin" "$port")"
done
echo "appended to $out" >&2
