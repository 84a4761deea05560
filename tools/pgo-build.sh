#!/usr/bin/env bash
# Builds `fincore` with profile-guided optimisation (PGO), for deployments and for the
# benchmark figures that BENCHMARKS.md labels "PGO build".
#
#   tools/pgo-build.sh            # -> target/pgo/use/release/fincore
#
# Three steps: an instrumented release build; a training run of that binary on the
# engine, pipeline and TCP benchmarks; a release build that uses the merged profile.
# The engine and pipeline training runs use seed 7, and every published engine and
# pipeline figure uses seed 1 (the default), so none of those is measured on the exact
# command stream the compiler was trained on. (`bench tcp` has no seed: its request
# stream is the same in training and in any `bench tcp` figure.) The `serve` + `load`
# end-to-end path is not trained separately; its server side shares the gateway code
# that `bench tcp` runs. The plain `cargo build --release` stays the default build:
# this script is an extra, and nothing else (tests, CI) depends on it.
#
# Any RUSTFLAGS already set are kept and apply to both builds. Needs `llvm-profdata` of
# the toolchain's own LLVM version: the rustup component `llvm-tools`, installed here
# if it is missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${PGO_DIR:-$root/target/pgo}
mkdir -p "$work"
work=$(cd "$work" && pwd) # absolute: rustc runs in each crate's own directory
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [[ ! -x $profdata ]]; then
    rustup component add llvm-tools
fi
if [[ ! -x $profdata ]]; then
    echo "llvm-profdata not found at $profdata after installing llvm-tools" >&2
    exit 1
fi

cd "$root"
rm -rf "$work/raw" "$work/train"
mkdir -p "$work/raw" "$work/train"

echo "1/3 instrumented build" >&2
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$work/raw" \
    cargo build --release --bin fincore --target-dir "$work/gen"
# Build scripts of dependencies ran instrumented too; only the training counts.
rm -rf "$work/raw" && mkdir -p "$work/raw"

echo "2/3 training (seed 7)" >&2
trainer="$work/gen/release/fincore"
for mix in trading transfers payments; do
    "$trainer" bench engine --mix "$mix" --seed 7 --ops 300000 --rounds 1 >/dev/null
done
"$trainer" bench engine --mix trading --instruments 16 --seed 7 --ops 300000 --rounds 1 >/dev/null
"$trainer" bench pipeline --seed 7 --ops 300000 --dir "$work/train/pipeline" >/dev/null
"$trainer" bench pipeline --mix payments --seed 7 --ops 200000 --dir "$work/train/payments" >/dev/null
"$trainer" bench tcp --requests 200000 --window 64 >/dev/null

echo "3/3 optimised build" >&2
"$profdata" merge -o "$work/merged.profdata" "$work/raw"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$work/merged.profdata" \
    cargo build --release --bin fincore --target-dir "$work/use"
echo "$work/use/release/fincore"
