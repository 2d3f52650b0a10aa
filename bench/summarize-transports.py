#!/usr/bin/env python3
"""Turns transports-vs-skopeo.sh's results.tsv into the markdown printed at the end of a run.

Usage: summarize-transports.py RESULTS.tsv MACHINE.txt PROBLEMS.txt [--unique-mib 512]
                               [--small-mib 96] [--big-mib N]
Medians are over the successful runs only; a failed or unverified run is listed, never averaged.
Throughput is the layer bytes moved once (the set's unique layer bytes, or the one layer) divided
by wall time, for every tool.
"""

import argparse
import sys

sys.dont_write_bytecode = True  # no __pycache__ in bench/ for the import below
from summary_common import (OURS, THEIRS, fmt, median, print_machine, print_runs, ratio,  # noqa: E402
                            read, size_label)

SYNC = "skopeo-sync"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("machine")
    parser.add_argument("problems")
    parser.add_argument("--unique-mib", type=float, default=512)
    parser.add_argument("--small-mib", type=float, default=96)
    parser.add_argument("--big-mib", type=int, default=2048)
    args = parser.parse_args()
    rows = read(args.results)
    unique = args.unique_mib

    print_machine(args.machine)

    def rate(wall, mib):
        return None if not wall else mib / wall

    lines = []

    def line(label, ours, theirs, digits):
        r = ratio(ours, theirs)
        lines.append(f"| {label} | {fmt(ours, digits)} | {fmt(theirs, digits)} | {fmt(r) + '×' if r else '—'} |")

    def row(label, scenario, mib):
        wall = (median(rows, scenario, OURS, "wall"), median(rows, scenario, THEIRS, "wall"))
        line(f"{label}: wall (s)", *wall, 2)
        line(f"{label}: throughput (MiB/s)", rate(wall[0], mib), rate(wall[1], mib), 0)
        line(f"{label}: CPU user+sys (s)", median(rows, scenario, OURS, "cpu"),
             median(rows, scenario, THEIRS, "cpu"), 2)
        line(f"{label}: peak RSS (MiB)", median(rows, scenario, OURS, "rss"),
             median(rows, scenario, THEIRS, "rss"), 1)

    print("## Medians\n")
    print("skopeo: 8 × `skopeo copy`, one after another in one timed shell (one image per call), "
          "into or out of one shared `oci:` layout; one `skopeo copy` per docker-archive. "
          "Ratio = image-transmit / skopeo (below 1: image-transmit is faster or smaller).\n")
    print("| measure | image-transmit | skopeo | ratio |")
    print("|---|---:|---:|---:|")
    for label, scenario, mib in (
        (f"{unique:g} MiB set, registry → OCI layout", "to-oci", unique),
        (f"{unique:g} MiB set, OCI layout → fresh registry", "from-oci", unique),
        (f"{args.small_mib:g} MiB layer alone, registry → docker-archive", "small-da", args.small_mib),
        (f"{size_label(args.big_mib)} layer alone, registry → docker-archive", "big-da", args.big_mib),
    ):
        if args.big_mib <= 0 and scenario == "big-da":
            continue
        row(label, scenario, mib)
    print("\n".join(lines))

    print(f"\n## image-transmit alone, references and floors (medians; MiB/s = {unique:g} MiB / wall)\n")
    print("| measure | wall s | MiB/s | CPU user+sys s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for label, scenario, tool in (
        ("image-transmit: the set → one docker-archive file", "set-da", OURS),
        ("image-transmit: the set → one oci-archive file", "set-oa", OURS),
        ("image-transmit: the set → OCI layout (from above)", "to-oci", OURS),
        ("skopeo sync --src yaml --dest dir: the set, one process (8 directories, shared layers in each)",
         "to-dir", SYNC),
        ("skopeo sync --src dir --dest docker: those directories → fresh registry", "from-dir", SYNC),
        ("curl: GET the set's layer blobs from the source, 5 at once, into /dev/null", "floor-get", "curl"),
        (f"dd: write {unique:g} MiB to the scratch disk, fsync", "floor-write", "dd"),
        ("skopeo's per-call cost: 8 × `skopeo inspect --raw docker://…`, one after another",
         "per-call", THEIRS),
    ):
        wall = median(rows, scenario, tool, "wall")
        mibs = "" if scenario == "per-call" else fmt(rate(wall, unique), 0)
        print(f"| {label} | {fmt(wall, 3)} | {mibs} | "
              f"{fmt(median(rows, scenario, tool, 'cpu'))} | {fmt(median(rows, scenario, tool, 'rss'), 1)} |")

    for scenario, tool, side in (("to-oci", OURS, "src"), ("to-oci", THEIRS, "src"),
                                 ("from-oci", OURS, "dst"), ("from-oci", THEIRS, "dst")):
        done = [r for r in rows if r["scenario"] == scenario and r["tool"] == tool and r["ok"]]
        if done:
            where = "source" if side == "src" else "target"
            print(f"\n{tool} {scenario}, round {done[0]['round']}, {where} requests: `{done[0][side]}`")

    print_runs(rows, args.problems)


if __name__ == "__main__":
    main()
