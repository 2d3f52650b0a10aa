#!/usr/bin/env python3
"""Turns bundle-vs-skopeo.sh's results.tsv into the markdown printed at the end of a run.

Usage: summarize-bundle.py RESULTS.tsv MACHINE.txt PROBLEMS.txt [--unique-mib 512] [--big-mib N]
Medians are over the successful runs only; a failed or unverified run is listed, never averaged.
Throughput is the set's unique layer bytes divided by wall time, for every tool (skopeo writes
the shared base layers once per image archive, so it moves more bytes than that).
"""

import argparse
import sys

sys.dont_write_bytecode = True  # no __pycache__ in bench/ for the import below
from summary_common import (OURS, RSS_LIMIT_MIB, THEIRS, flat_row, fmt, median, medians_row,  # noqa: E402
                            print_machine, print_runs, ratio, read, size_label)

# The figures for the original Go tool: the 512 MiB set saved in 0.58 s from a warm
# registry (~880 MiB/s), a single 2 GiB layer in 1.8 s.
ORIGINAL_SET_MIB_S = 880.0
ORIGINAL_BIG_S = 1.8
SAVE_VS_SKOPEO = 10.0
UPLOAD_VS_SYNC = 1.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("machine")
    parser.add_argument("problems")
    parser.add_argument("--unique-mib", type=float, default=512)
    parser.add_argument("--big-mib", type=int, default=2048)
    args = parser.parse_args()
    rows = read(args.results)
    unique = args.unique_mib

    print_machine(args.machine)

    lines = []

    def row(label, ours, theirs, goal="", passed=None, digits=2, show_ratio=True):
        lines.append(medians_row(label, ours, theirs, goal, passed, digits, show_ratio))

    def at_most(value, limit):
        return None if value is None else value <= limit

    def at_least(value, limit):
        return None if value is None else value >= limit

    def rate(wall, mib):
        return None if not wall else mib / wall

    save_wall = median(rows, "save", OURS, "wall")
    skopeo_save_wall = median(rows, "save", THEIRS, "wall")
    save_rate = rate(save_wall, unique)
    skopeo_rate = rate(skopeo_save_wall, unique)
    save_rss = median(rows, "save", OURS, "rss")
    upload_wall = median(rows, "upload", OURS, "wall")
    sync_wall = median(rows, "upload", THEIRS, "wall")
    upload_rss = median(rows, "upload", OURS, "rss")

    print("## Medians\n")
    print("skopeo: save = `skopeo copy docker://… oci-archive:FILE` once per image, one after another "
          "(one timed shell); upload = `skopeo sync` registry → registry.\n")
    print("| measure | image-transmit | skopeo | ratio | target | |")
    print("|---|---:|---:|---:|---|---|")
    row(f"{unique:g} MiB set, save: wall (s)", save_wall, skopeo_save_wall)
    row(f"{unique:g} MiB set, save: throughput (MiB/s)", save_rate, skopeo_rate,
        f"≥ {ORIGINAL_SET_MIB_S:g} MiB/s (the original)", at_least(save_rate, ORIGINAL_SET_MIB_S), digits=0)
    row(f"{unique:g} MiB set, save: throughput vs skopeo's", ratio(save_rate, skopeo_rate), None,
        f"≥ {SAVE_VS_SKOPEO:g}× skopeo", at_least(ratio(save_rate, skopeo_rate), SAVE_VS_SKOPEO),
        show_ratio=False)
    row(f"{unique:g} MiB set, save: CPU user+sys (s)",
        median(rows, "save", OURS, "cpu"), median(rows, "save", THEIRS, "cpu"))
    row(f"{unique:g} MiB set, save: peak RSS (MiB)", save_rss, median(rows, "save", THEIRS, "rss"),
        f"≤ {RSS_LIMIT_MIB:g} MiB", at_most(save_rss, RSS_LIMIT_MIB), digits=1)
    row(f"{unique:g} MiB set, upload to a fresh target: wall (s)", upload_wall, sync_wall,
        f"≤ {UPLOAD_VS_SYNC:g}× skopeo sync", at_most(ratio(upload_wall, sync_wall), UPLOAD_VS_SYNC))
    row(f"{unique:g} MiB set, upload: CPU user+sys (s)",
        median(rows, "upload", OURS, "cpu"), median(rows, "upload", THEIRS, "cpu"))
    row(f"{unique:g} MiB set, upload: peak RSS (MiB)", upload_rss, median(rows, "upload", THEIRS, "rss"),
        f"≤ {RSS_LIMIT_MIB:g} MiB", at_most(upload_rss, RSS_LIMIT_MIB), digits=1)

    small_save_rss = median(rows, "small-save", OURS, "rss")
    small_upload_rss = median(rows, "small-upload", OURS, "rss")
    row("96 MiB layer alone, save: wall (s)",
        median(rows, "small-save", OURS, "wall"), median(rows, "small-save", THEIRS, "wall"))
    row("96 MiB layer alone, save: peak RSS (MiB)", small_save_rss,
        median(rows, "small-save", THEIRS, "rss"), f"≤ {RSS_LIMIT_MIB:g} MiB",
        at_most(small_save_rss, RSS_LIMIT_MIB), digits=1)
    row("96 MiB layer alone, upload: peak RSS (MiB)", small_upload_rss, None, f"≤ {RSS_LIMIT_MIB:g} MiB",
        at_most(small_upload_rss, RSS_LIMIT_MIB), digits=1)
    if args.big_mib > 0:
        size = size_label(args.big_mib)
        big_wall = median(rows, "big-save", OURS, "wall")
        big_rss = median(rows, "big-save", OURS, "rss")
        big_upload_rss = median(rows, "big-upload", OURS, "rss")
        original = ORIGINAL_BIG_S * args.big_mib / 2048
        scaled = "" if args.big_mib == 2048 else f", scaled from {ORIGINAL_BIG_S:g} s per 2 GiB"
        row(f"{size} layer alone, save: wall (s)", big_wall, median(rows, "big-save", THEIRS, "wall"),
            f"the original: {original:.2g} s{scaled}", None)
        row(f"{size} layer alone, save: throughput (MiB/s)", rate(big_wall, args.big_mib),
            rate(median(rows, "big-save", THEIRS, "wall"), args.big_mib), digits=0)
        row(f"{size} layer alone, save: peak RSS (MiB)", big_rss, median(rows, "big-save", THEIRS, "rss"),
            f"≤ {RSS_LIMIT_MIB:g} MiB", at_most(big_rss, RSS_LIMIT_MIB), digits=1)
        row(f"{size} layer alone, upload: wall (s)", median(rows, "big-upload", OURS, "wall"), None)
        row(f"{size} layer alone, upload: peak RSS (MiB)", big_upload_rss, None, f"≤ {RSS_LIMIT_MIB:g} MiB",
            at_most(big_upload_rss, RSS_LIMIT_MIB), digits=1)
        for label, base, big in (("save", small_save_rss, big_rss), ("upload", small_upload_rss, big_upload_rss)):
            lines.append(flat_row(f"{label} peak RSS change, 96 MiB layer → {size} layer", base, big))
    print("\n".join(lines))

    print(f"\n## Floors and references (medians; MiB/s = {unique:g} MiB / wall)\n")
    print("| measure | wall s | MiB/s | CPU user+sys s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for label, scenario, tool in (
        ("image-transmit save (from above)", "save", OURS),
        ("skopeo copy into one shared `oci:` layout, 8 images one after another", "save-layout", THEIRS),
        ("curl: GET the set's layer blobs from the source, 5 at once, into /dev/null", "floor-get", "curl"),
        (f"dd: write {unique:g} MiB to the scratch disk, fsync", "floor-write", "dd"),
    ):
        wall = median(rows, scenario, tool, "wall")
        print(f"| {label} | {fmt(wall, 3)} | {fmt(rate(wall, unique), 0)} | "
              f"{fmt(median(rows, scenario, tool, 'cpu'))} | {fmt(median(rows, scenario, tool, 'rss'), 1)} |")

    save = [r for r in rows if r["scenario"] == "save" and r["tool"] == OURS and r["ok"]]
    if save:
        print(f"\nimage-transmit save, round {save[0]['round']}, source requests: `{save[0]['src']}`")

    print_runs(rows, args.problems)


if __name__ == "__main__":
    main()
