#!/usr/bin/env bash
# Minimizes the committed corpus of one fuzz target, in place:
#   1. `cargo fuzz cmin`'s merge (libFuzzer -merge=1) into a scratch directory;
#   2. one merge per remaining input, for each input's whole coverage;
#   3. fuzz/reduce_corpus.py: the fewest bytes that cover every edge again (or as many
#      as fit BUDGET bytes).
# Needs the fuzz binaries: `cargo +nightly fuzz build` first.
#
# Usage: fuzz/minimize.sh TARGET [BUDGET_BYTES]
set -euo pipefail

target=$1
budget=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$root/fuzz/target/x86_64-unknown-linux-gnu/release/$target
corpus=$root/fuzz/corpus/$target
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

merged=$scratch/merged
mkdir -p "$merged"
"$binary" -merge=1 -rss_limit_mb=2048 "$merged" "$corpus" >"$scratch/merge.log" 2>&1

# A merge control file lists only the coverage each input adds to those before it, so
# each input is merged alone and the lines are joined under one header.
inputs=("$merged"/*)
control=$scratch/whole.ctl
{ echo "${#inputs[@]}"; echo 0; printf '%s\n' "${inputs[@]}"; } >"$control"
for index in "${!inputs[@]}"; do
    one=$scratch/one
    rm -rf "$one" "$scratch/empty" "$scratch/one.ctl"
    mkdir -p "$one" "$scratch/empty"
    cp "${inputs[$index]}" "$one/"
    "$binary" -merge=1 -rss_limit_mb=2048 -merge_control_file="$scratch/one.ctl" \
        "$scratch/empty" "$one" >/dev/null 2>&1
    echo "STARTED $index $(stat -c %s "${inputs[$index]}")" >>"$control"
    grep '^COV 0' "$scratch/one.ctl" | sed "s/^COV 0/COV $index/" >>"$control" || true
done

chosen=$scratch/chosen
python3 "$root/fuzz/reduce_corpus.py" "$control" "$chosen" $budget
rm -rf "$corpus"
mkdir -p "$corpus"
cp "$chosen"/* "$corpus/"
echo "$target: $(ls "$corpus" | wc -l) files, $(cat "$corpus"/* | wc -c) bytes"
