#!/usr/bin/env bash
# Writes the demo configuration (gateway/src/demo.toml) with the per-session rate limit
# lifted, so that a benchmark measures the server's work rather than its admission
# control. Used by tools/bench-rounds.sh and tools/load-window-sweep.py.
#
#   tools/load-config.sh OUT_FILE
set -euo pipefail
out=${1:?usage: tools/load-config.sh OUT_FILE}
root=$(cd "$(dirname "$0")/.." && pwd)
sed -e 's/^# rate_per_sec = 100000 .*/rate_per_sec = 100000000/' \
    -e 's/^# burst = 10000 .*/burst = 100000000/' \
    "$root/gateway/src/demo.toml" >"$out"
for line in 'rate_per_sec = 100000000' 'burst = 100000000'; do
    grep -qx "$line" "$out" || {
        echo "gateway/src/demo.toml changed: could not set '$line'" >&2
        exit 1
    }
done
