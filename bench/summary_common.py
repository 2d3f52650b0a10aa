"""What summarize.py and summarize-bundle.py share, imported by both, never run on its own.

Both read the results.tsv that bench/lib.sh's record_run writes (one line per timed run, the
COLUMNS below) and print the same frame around their own medians table: "## Machine" first, then
"## Every run" and "## Problems" last. Medians are over the successful runs only; a failed or
unverified run is listed, never averaged.
"""

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


def size_label(mib):
    """The big layer's size as the tables name it: "2 GiB", "512 MiB"."""
    return f"{mib / 1024:g} GiB" if mib >= 1024 else f"{mib} MiB"


def medians_row(label, ours, theirs, goal="", passed=None, digits=2, show_ratio=True):
    """One line of a medians table: | measure | ours | theirs | ratio | target | verdict |."""
    r = ratio(ours, theirs) if show_ratio else None
    return (
        f"| {label} | {fmt(ours, digits)} | {fmt(theirs, digits)} | {fmt(r) + '×' if r else '—'} | "
        f"{goal} | {verdict(passed) if goal else ''} |"
    )


def flat_row(label, base, big):
    """The medians-table line checking that peak RSS (MiB) stays flat from BASE to BIG."""
    flat = None
    growth = "—"
    if base is not None and big is not None:
        flat = big - base <= FLAT_SLACK_MIB
        growth = f"{big - base:+.1f} MiB"
    return f"| {label} | {growth} | | | flat (≤ +{FLAT_SLACK_MIB:g} MiB) | {verdict(flat)} |"


def print_machine(path):
    print("## Machine\n")
    with open(path) as f:
        for line in f:
            print(f"- {line.strip()}")
    print()


def print_runs(rows, problems_path):
    """The "Every run" table, then the problems file's text under "Problems" when it has any."""
    print("\n## Every run\n")
    print("| scenario | tool | round | exit | verified | wall s | user s | sys s | peak RSS MiB "
          "| source requests | target requests |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        rss = fmt(int(r["rss_kib"]) / 1024, 1) if r["rss_kib"].isdigit() else "—"
        print(f"| {r['scenario']} | {r['tool']} | {r['round']} | {r['rc']} | {r['verify']} | "
              f"{r['wall']} | {r['user']} | {r['sys']} | {rss} | {r['src']} | {r['dst']} |")

    with open(problems_path) as f:
        problems = f.read().strip()
    if problems:
        print("\n## Problems\n\n```\n" + problems + "\n```")
