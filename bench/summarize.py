#!/usr/bin/env python3
"""Turns copy-vs-skopeo.sh's results.tsv into the markdown printed at the end of a run.

Usage: summarize.py RESULTS.tsv MACHINE.txt PROBLEMS.txt [--big-mib N]
Medians are over the successful runs only; a failed or unverified run is listed, never averaged.
"""

import argparse
import sys

sys.dont_write_bytecode = True  # no __pycache__ in bench/ for the import below
from summary_common import (OURS, RSS_LIMIT_MIB, THEIRS, flat_row, median, medians_row,  # noqa: E402
                            print_machine, print_runs, ratio, read, size_label, verdict)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("machine")
    parser.add_argument("problems")
    parser.add_argument("--big-mib", type=int, default=2048)
    args = parser.parse_args()
    rows = read(args.results)

    print_machine(args.machine)

    lines = []

    def add(label, scenario, key, target=None, limit=None, digits=2):
        ours = median(rows, scenario, OURS, key)
        theirs = median(rows, scenario, THEIRS, key)
        r = ratio(ours, theirs)
        passed = None
        if target is not None and r is not None:
            passed = r <= target
        if limit is not None and ours is not None:
            passed = ours <= limit
        goal = "" if target is None and limit is None else (
            f"≤ {target}× skopeo" if target is not None else f"≤ {limit:g} MiB"
        )
        lines.append(medians_row(label, ours, theirs, goal, passed, digits))
        return ours

    print("## Medians\n")
    print("| measure | image-transmit | skopeo sync | ratio | target | |")
    print("|---|---:|---:|---:|---|---|")
    add("512 MiB set, fresh target: wall (s)", "fresh", "wall", target=0.8)
    add("512 MiB set, fresh target: CPU user+sys (s)", "fresh", "cpu", target=0.7)
    set_rss = add("512 MiB set, fresh target: peak RSS (MiB)", "fresh", "rss", limit=RSS_LIMIT_MIB, digits=1)
    add("re-run, all present: wall (s)", "rerun", "wall", target=0.5)
    add("re-run, all present: CPU user+sys (s)", "rerun", "cpu")
    add("re-run, all present: peak RSS (MiB)", "rerun", "rss", limit=RSS_LIMIT_MIB, digits=1)
    small_rss = add("96 MiB layer alone, fresh target: peak RSS (MiB)", "small", "rss",
                    limit=RSS_LIMIT_MIB, digits=1)
    if args.big_mib > 0:
        size = size_label(args.big_mib)
        add(f"{size} layer alone, fresh target: wall (s)", "big", "wall")
        big_rss = add(f"{size} layer alone, fresh target: peak RSS (MiB)", "big", "rss",
                      limit=RSS_LIMIT_MIB, digits=1)
        for label, base in (("96 MiB layer", small_rss), ("512 MiB set", set_rss)):
            lines.append(flat_row(f"peak RSS change, {label} → {size} layer", base, big_rss))
    print("\n".join(lines))

    rerun = [r for r in rows if r["scenario"] == "rerun" and r["tool"] == OURS and r["ok"]]
    if rerun:
        def head_only(requests):
            return all(item.startswith("HEAD-") for item in requests.split())

        def no_blob_reads(requests):
            return all("-blob" not in item for item in requests.split())

        clean = all(head_only(r["dst"]) and no_blob_reads(r["src"]) for r in rerun)
        print(
            "\nRe-run with everything present sends the target HEAD requests only and reads no blob "
            f"from the source: {verdict(clean)} (image-transmit, round {rerun[0]['round']}: target "
            f"`{rerun[0]['dst']}`, source `{rerun[0]['src']}`)"
        )

    print_runs(rows, args.problems)


if __name__ == "__main__":
    main()
