#!/usr/bin/env bash
# One round of the headline benchmarks for two builds, alternated A B B A, so that both
# see the same stretch of a noisy machine. Run it several times, minutes apart, and
# compare the medians over all rounds (tools/bench-rounds-summary.py); BENCHMARKS.md
# explains why one stretch is not enough on a shared VM.
#
#   tools/bench-rounds.sh [NAME=]A_BINARY [NAME=]B_BINARY [OUT_FILE]
#
# e.g. tools/bench-rounds.sh release=target/release/fincore \
#          pgo=target/pgo/use/release/fincore
#
# Appends one line per run to OUT_FILE (default bench-rounds.txt):
#   YYYY-MM-DDTHH:MM BENCHMARK BUILD JSON
# where BUILD is the given name (default: the binary's file name) and JSON is the
# benchmark's `--json` line. Benchmarks, in this order: `bench engine` (transfers,
# trading, payments), `bench pipeline`, and the end-to-end saturation run (`serve` with
# the per-session rate limit lifted, then `load --rate max --sessions 4`). In the
# end-to-end runs each build serves, and the load generator is always A's binary: the
# measuring instrument stays the same. Takes about 3 minutes; stops at the first run
# that prints no JSON.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 [NAME=]A_BINARY [NAME=]B_BINARY [OUT_FILE]" >&2
    exit 2
fi
declare -A binary
names=()
for arg in "$1" "$2"; do
    if [[ $arg == *=* ]]; then name=${arg%%=*} path=${arg#*=}; else name=$(basename "$arg") path=$arg; fi
    [[ -x $path ]] || { echo "not an executable: $path" >&2; exit 2; }
    binary[$name]=$path
    names+=("$name")
done
if [[ ${names[0]} == "${names[1]}" ]]; then
    echo "both builds are named ${names[0]}: name them, e.g. release=PATH pgo=PATH" >&2
    exit 2
fi
a=${names[0]} b=${names[1]}
load_tool=${binary[$a]}
out=${3:-bench-rounds.txt}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
server=""
cleanup() {
    if [[ -n $server ]]; then kill -INT "$server" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT
stamp=$(date -u +%Y-%m-%dT%H:%M)

# The demo configuration with the per-session rate limit lifted: the server's work,
# not its admission control, is measured.
"$root/tools/load-config.sh" "$scratch/load.toml"

record() { # BENCHMARK BUILD STDOUT (its stderr is in $scratch/stderr)
    local json
    json=$(tail -1 <<<"$3")
    if [[ $json != \{* ]]; then
        echo "$1 with $2 printed no JSON; its output:" >&2
        cat "$scratch/stderr" >&2
        exit 1
    fi
    echo "$stamp $1 $2 $json" >>"$out"
}

end_to_end() { # BUILD
    local bin=${binary[$1]} addr output
    rm -rf "$scratch/data"
    # Port 0: the system picks a free one, and the log line says which.
    "$bin" serve --config "$scratch/load.toml" --data "$scratch/data" \
        --listen 127.0.0.1:0 --log-format text >"$scratch/server.log" 2>&1 &
    server=$!
    # Up to 60 s. A start usually takes about 0.2 s, but once (session 19) a server
    # had not logged "listening" after 10 s, the old limit; the cause was not found,
    # so a late start now prints the server's log.
    for _ in $(seq 1 600); do
        grep -q "listening" "$scratch/server.log" && break
        kill -0 "$server" 2>/dev/null || { cat "$scratch/server.log" >&2; exit 1; }
        sleep 0.1
    done
    grep -q "listening" "$scratch/server.log" || {
        echo "the server did not start within 60 s; its log:" >&2
        cat "$scratch/server.log" >&2
        exit 1
    }
    addr=$(grep -o 'listen=[0-9.:]*' "$scratch/server.log" | head -1 | cut -d= -f2)
    output=$("$load_tool" load --addr "$addr" --rate max --sessions 4 \
        --duration 8 --json 2>"$scratch/stderr") || true
    kill -INT "$server"
    wait "$server" || true
    server=""
    record end-to-end "$1" "$output"
}

for mix in transfers trading payments; do
    for build in "$a" "$b" "$b" "$a"; do
        output=$("${binary[$build]}" bench engine --mix "$mix" --json 2>"$scratch/stderr") || true
        record "engine-$mix" "$build" "$output"
    done
done
for build in "$a" "$b" "$b" "$a"; do
    output=$("${binary[$build]}" bench pipeline --ops 2000000 --json 2>"$scratch/stderr") || true
    record pipeline "$build" "$output"
done
for build in "$a" "$b" "$b" "$a"; do
    end_to_end "$build"
done
echo "appended to $out" >&2
