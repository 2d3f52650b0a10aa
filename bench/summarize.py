#!/usr/bin/env python3
"""Turns copy-vs-skopeo.sh's results.tsv into the markdown printed at the end of a run.

Usage: summarize.py RESULTS.tsv MACHINE.txt PROBLEMS.txt [--big-mib N]
Medians are over the successful runs only; a failed or unverified run is listed, never averaged.
"""

import argparse
import statistics

OURS = "image-transmit"
THEIRS = "skopeo"
COLUMNS = ["scenario", "tool", "round", "rc", "verify", "wall", "user", "sys", "rss_kib", "src", "dst"]
RSS_LIMIT_MIB = 16.0
FLAT_SLACK_MIB = 2.0


def read(path):
    rows = []
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            row = dict(zip(COLUMNS, fields + [""] * (len(COLUMNS) - len(fields))))
            row["ok"] = row["rc"] == "0" and row["verify"] == "ok"
            if row["ok"]:
                row["cpu"] = float(row["user"]) + float(row["sys"])
                row["wall"] = float(row["wall"])
                row["rss"] = int(row["rss_kib"]) / 1024
            rows.append(row)
    return rows


def median(rows, scenario, tool, key):
    values = [r[key] for r in rows if r["scenario"] == scenario and r["tool"] == tool and r["ok"]]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def ratio(ours, theirs):
    return None if ours is None or not theirs else ours / theirs


def verdict(passed):
    return "—" if passed is None else ("met" if passed else "**missed**")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("machine")
    parser.add_argument("problems")
    parser.add_argument("--big-mib", type=int, default=2048)
    args = parser.parse_args()
    rows = read(args.results)

    print("## Machine\n")
    with open(args.machine) as f:
        for line in f:
            print(f"- {line.strip()}")
    print()

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
        lines.append(
            f"| {label} | {fmt(ours, digits)} | {fmt(theirs, digits)} | {fmt(r) + '×' if r else '—'} | {goal} | "
            f"{verdict(passed) if goal else ''} |"
        )
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
        size = f"{args.big_mib / 1024:g} GiB" if args.big_mib >= 1024 else f"{args.big_mib} MiB"
        add(f"{size} layer alone, fresh target: wall (s)", "big", "wall")
        big_rss = add(f"{size} layer alone, fresh target: peak RSS (MiB)", "big", "rss",
                      limit=RSS_LIMIT_MIB, digits=1)
        for label, base in (("96 MiB layer", small_rss), ("512 MiB set", set_rss)):
            flat = None
            growth = "—"
            if base is not None and big_rss is not None:
                flat = big_rss - base <= FLAT_SLACK_MIB
                growth = f"{big_rss - base:+.1f} MiB"
            lines.append(
                f"| peak RSS change, {label} → {size} layer | {growth} | | | "
                f"flat (≤ +{FLAT_SLACK_MIB:g} MiB) | {verdict(flat)} |"
            )
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

    print("\n## Every run\n")
    print("| scenario | tool | round | exit | verified | wall s | user s | sys s | peak RSS MiB "
          "| source requests | target requests |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        rss = fmt(int(r["rss_kib"]) / 1024, 1) if r["rss_kib"].isdigit() else "—"
        print(f"| {r['scenario']} | {r['tool']} | {r['round']} | {r['rc']} | {r['verify']} | "
              f"{r['wall']} | {r['user']} | {r['sys']} | {rss} | {r['src']} | {r['dst']} |")

    with open(args.problems) as f:
        problems = f.read().strip()
    if problems:
        print("\n## Problems\n\n```\n" + problems + "\n```")


if __name__ == "__main__":
    main()
