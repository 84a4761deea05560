#!/usr/bin/env python3
"""Shrinks a fuzz corpus to a small set of inputs that still covers every edge.

`cargo fuzz cmin` (libFuzzer's `-merge=1`) keeps every input that adds a feature, and
a feature includes hit-count buckets, so the merged corpus is still hundreds of inputs
per target. The committed corpus must stay small (it is replayed in every test run and
lives in git), so this script keeps, greedily, the inputs that cover the most new edges
per byte until every edge the merged corpus reached is covered again.

Usage (see fuzz/README.md):
    python3 fuzz/reduce_corpus.py CTL OUT_DIR [BUDGET_BYTES]
where CTL is a libFuzzer merge control file that lists every input's *whole* coverage
(`COV i pc...`). A single merge writes only the PCs each input adds to the ones before
it, so the README runs one merge per input and joins their `COV` lines (with `STARTED i
size` lines) behind the header of the list of inputs. With a budget, the cover stops
when no further input fits it, and the edges left uncovered are reported. The chosen
files are copied into OUT_DIR under their original names.
"""

import os
import shutil
import sys


def parse(control_path):
    """Paths, sizes and covered edges per input, from a libFuzzer merge control file."""
    with open(control_path) as control:
        lines = control.read().splitlines()
    count = int(lines[0])
    paths = lines[2 : 2 + count]
    sizes, edges = {}, {}
    for line in lines[2 + count :]:
        fields = line.split()
        if fields[0] == "STARTED":
            sizes[int(fields[1])] = int(fields[2])
        elif fields[0] == "COV":
            edges[int(fields[1])] = set(fields[2:])
    return paths, sizes, edges


def choose(sizes, edges, budget):
    """Greedy weighted set cover: most new edges per byte first, within the budget."""
    uncovered = set().union(*edges.values()) if edges else set()
    chosen, spent = [], 0
    while uncovered:
        fitting = [i for i in edges if spent + sizes.get(i, 0) <= budget]
        if not fitting:
            break
        best = max(fitting, key=lambda i: len(edges[i] & uncovered) / (sizes.get(i, 0) + 64))
        gained = edges[best] & uncovered
        if not gained:
            break
        chosen.append(best)
        spent += sizes.get(best, 0)
        uncovered -= gained
    return chosen, uncovered


def main():
    control_path, out_dir = sys.argv[1], sys.argv[2]
    budget = int(sys.argv[3]) if len(sys.argv) > 3 else float("inf")
    paths, sizes, edges = parse(control_path)
    os.makedirs(out_dir, exist_ok=True)
    chosen, uncovered = choose(sizes, edges, budget)
    for index in chosen:
        shutil.copy(paths[index], os.path.join(out_dir, os.path.basename(paths[index])))
    total = sum(sizes.get(i, 0) for i in chosen)
    reached = len(set().union(*edges.values())) if edges else 0
    print(
        f"{len(chosen)} of {len(paths)} inputs, {total} bytes, "
        f"{reached - len(uncovered)} of {reached} edges"
    )


if __name__ == "__main__":
    main()
