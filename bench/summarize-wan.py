#!/usr/bin/env python3
"""Prints bench/wan.sh's results as markdown: medians against skopeo and the link's limit,
what a connection-cutting proxy cost, the rate limit held, then every run.

Usage: summarize-wan.py RESULTS.tsv MACHINE.txt --rate MBIT --cut-mib N

In results.tsv the "src" column holds down=BYTES (through the source's proxy) and "dst"
holds up=BYTES (through the target's). Medians are over the successful runs only.
"""

import argparse
import os
import statistics

from summary_common import OURS, RSS_LIMIT_MIB, THEIRS, fmt, medians_row, print_machine, print_runs, read

MIB = 1 << 20
LIMIT_RATE_MIB = 50.0


def count(field):
    return int(field.split("=", 1)[1]) if "=" in field else 0


def med(rows, scenario, tool, key):
    values = [key(r) for r in rows if r["scenario"] == scenario and r["tool"] == tool and r["ok"]]
    return statistics.median(values) if values else None


def runs(rows, scenario, tool):
    mine = [r for r in rows if r["scenario"] == scenario and r["tool"] == tool]
    return f"{sum(r['ok'] for r in mine)}/{len(mine)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("machine")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--cut-mib", type=float, required=True)
    args = parser.parse_args()
    rows = read(args.results)
    link_bytes_per_s = args.rate * 1e6 / 8

    print_machine(args.machine)
    print("## Across the link\n")
    print("| measure | image-transmit | skopeo | ratio | target | verdict |")
    print("|---|---:|---:|---:|---|---|")
    for scenario, label in (("large", "8 images, 513 MiB"), ("small", "60 small images")):
        ours = med(rows, scenario, OURS, lambda r: r["wall"])
        theirs = med(rows, scenario, THEIRS, lambda r: r["wall"])
        if ours is None and theirs is None:
            continue
        if scenario == "large":
            moved = med(rows, scenario, OURS, lambda r: max(count(r["src"]), count(r["dst"])))
            # The link's speed as curl measured it, else as tc was told.
            probed = med(rows, "link", "curl", lambda r: count(r["src"]) / r["wall"])
            speed = probed or link_bytes_per_s
            limit = moved / speed if moved else None
            print(f"| the link: one download with curl, MB/s | {fmt(probed and probed / 1e6)} | | | "
                  f"{args.rate / 8:g} MB/s set by tc | |")
            passed = None if ours is None or limit is None else ours <= 1.1 * limit
            print(medians_row(f"{label}: wall s", ours, theirs))
            print(medians_row(f"{label}: wall s against the link's limit ({fmt(limit)} s)", ours, limit,
                              "≤ 1.1× the limit", passed))
        else:
            r = None if ours is None or not theirs else ours / theirs
            print(medians_row(f"{label}: wall s", ours, theirs, "≤ 0.12× skopeo",
                              None if r is None else r <= 0.12))
        rss = med(rows, scenario, OURS, lambda r: r["rss"])
        print(medians_row(f"{label}: peak RSS MiB", rss, med(rows, scenario, THEIRS, lambda r: r["rss"]),
                          f"< {RSS_LIMIT_MIB:g} MiB", None if rss is None else rss < RSS_LIMIT_MIB, digits=1))

    cut_rows = [r for r in rows if r["scenario"] == "cut"]
    if cut_rows:
        layer = args.cut_mib * MIB
        print(f"\n## Through proxies that cut every connection after 16 MiB ({args.cut_mib:g} MiB layer)\n")
        print("| run | succeeded | wall s | down / layer | up / layer | target | verdict |")
        print("|---|---:|---:|---:|---:|---|---|")
        for tool in sorted({r["tool"] for r in cut_rows}):
            wall = med(rows, "cut", tool, lambda r: r["wall"])
            down = med(rows, "cut", tool, lambda r: count(r["src"]) / layer)
            up = med(rows, "cut", tool, lambda r: count(r["dst"]) / layer)
            down_text = fmt(down) if down else "—"
            if tool.endswith("-save"):
                # Its upload afterwards goes through an uncut proxy, only to check the bundle.
                up = None
            target, passed = "", None
            if tool.startswith(OURS):
                target = "≤ 1.15× the layer each way"
                moved = [v for v in (down, up) if v]
                worst = max(moved) if moved else None
                passed = None if worst is None else worst <= 1.15
            verdict = "" if not target else ("met" if passed else "**missed**" if passed is False else "—")
            print(f"| {tool} | {runs(rows, 'cut', tool)} | {fmt(wall)} | {down_text} | {fmt(up)} | {target} | {verdict} |")

    rate_rows = [r for r in rows if r["scenario"] == "rate"]
    if rate_rows:
        tool = rate_rows[0]["tool"]
        achieved = med(rows, "rate", tool, lambda r: max(count(r["src"]), count(r["dst"])) / MIB / r["wall"])
        off = None if achieved is None else (achieved - LIMIT_RATE_MIB) / LIMIT_RATE_MIB
        print("\n## --limit-rate 50M on a 1 Gbit/s link\n")
        print("| measure | value | target | verdict |")
        print("|---|---:|---|---|")
        verdict = "—" if off is None else ("met" if abs(off) <= 0.10 else "**missed**")
        print(f"| MiB/s over the whole job ({runs(rows, 'rate', tool)} runs) | {fmt(achieved)} "
              f"({'—' if off is None else f'{off:+.1%}'}) | 50 MiB/s ± 10 % | {verdict} |")

    print_runs(rows, os.path.join(os.path.dirname(args.results), "problems.txt"))


if __name__ == "__main__":
    main()
