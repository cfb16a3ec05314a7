"""The report as a table, JSON, CSV, or one self-contained HTML page.

Mailbox, user and tenant names come from the filesystem: untrusted. HTML output
escapes every one of them; CSV is written by the csv module.
"""

from __future__ import annotations

import csv
import html
import json
import time
from collections import Counter
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dovecot_index_tool.back_times import TimeKind
from dovecot_index_tool.present.tables import print_table
from dovecot_index_tool.report import STATES, ReportRow

COLUMNS = (
    "volume",
    "tenant",
    "user",
    "mailbox",
    "state",
    "since",
    "worst",
    "checks",
    "first_seen",
    "usable_at",
    "complete_at",
    "times",
    "times_reason",
    "job",
    "path",
)
HEADINGS = ("volume", "tenant", "user", "mailbox", "state", "since", "worst", "first seen",
            "usable at", "complete at", "checks")


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else ""


def back(row: ReportRow, stamp: float | None) -> str:
    """A time back as a person reads it: ``~`` marks an estimate; unknown says why."""
    if stamp is None:
        return f"unknown: {row.times.reason}" if row.times.reason else "unknown"
    return ("~" if row.times.kind is TimeKind.ESTIMATE else "") + _when(stamp)


def cells(row: ReportRow) -> tuple[str, ...]:
    """One row as text, in the order of ``HEADINGS`` (the table and the page)."""
    return (row.volume, row.tenant or "-", row.user, row.mailbox, row.state, _when(row.since),
            row.worst, _when(row.first_seen), back(row, row.usable_at),
            back(row, row.complete_at), ", ".join(row.checks))


def totals(rows: list[ReportRow]) -> str:
    counts = Counter(r.state for r in rows)
    return ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s]) or "nothing"


def render_table(rows: list[ReportRow], console: Console) -> None:
    table = Table(title=totals(rows))
    for col in HEADINGS:
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(escape(c) for c in cells(r)))
    print_table(console, table)


def write_json(rows: list[ReportRow], out: IO[str]) -> None:
    json.dump(
        {"mailboxes": [r.to_dict() for r in rows], "totals": dict(Counter(r.state for r in rows))},
        out,
        indent=2,
    )
    out.write("\n")


def write_csv(rows: list[ReportRow], out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in rows:
        d = {**r.to_dict(), "job": r.job, "checks": " ".join(r.checks)}
        writer.writerow([d[c] if d[c] is not None else "" for c in COLUMNS])


def write_html(rows: list[ReportRow], out: IO[str], title: str = "Mailbox status") -> None:
    """One page, no external resource: totals, a daily chart, and the table."""
    e = html.escape
    totals = _totals_table(rows)
    chart = _chart_svg(rows)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(v)}</td>" for v in cells(r)) + "</tr>" for r in rows
    )
    head = "".join(f"<th>{e(h)}</th>" for h in HEADINGS)
    out.write(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px}}th{{background:#eee}}</style></head>
<body><h1>{e(title)}</h1>
<p id="generated">Generated {e(_when(time.time()))}</p>
{totals}
<h2>Affected and repaired per day</h2>
{chart}
<h2>Mailboxes</h2>
<table id="mailboxes"><thead><tr>{head}</tr></thead>
<tbody>{body}</tbody></table></body></html>
""")


def _totals_table(rows: list[ReportRow]) -> str:
    e = html.escape
    parts = []
    for key, label in (("volume", "volume"), ("tenant", "tenant")):
        counts: dict[str, Counter] = {}
        for r in rows:
            counts.setdefault(getattr(r, key) or "-", Counter())[r.state] += 1
        head = "".join(f"<th>{s}</th>" for s in STATES)
        body = "".join(
            f"<tr><td>{e(name)}</td>{''.join(f'<td>{c[s]}</td>' for s in STATES)}</tr>"
            for name, c in sorted(counts.items())
        )
        parts.append(
            f'<h2>Per {label}</h2><table id="per-{label}"><tr><th>{label}</th>'
            f"{head}</tr>{body}</table>"
        )
    return "\n".join(parts)


def _chart_svg(rows: list[ReportRow]) -> str:
    """Bars per day: newly affected (red) and repaired (green)."""
    day = 86400
    affected = Counter(int(r.first_seen // day) for r in rows)
    repaired = Counter(int(r.since // day) for r in rows if r.state == "repaired")
    days = sorted(set(affected) | set(repaired))
    if not days:
        return "<p>No damage recorded.</p>"
    peak = max([*affected.values(), *repaired.values(), 1])
    width, height = 40 * len(days) + 40, 160
    bars = []
    for i, d in enumerate(days):
        x = 20 + 40 * i
        for j, (counts, color) in enumerate(((affected, "#c33"), (repaired, "#3a3"))):
            h = 120 * counts[d] / peak
            bars.append(
                f'<rect x="{x + 15 * j}" y="{130 - h:.1f}" width="14" height="{h:.1f}" '
                f'fill="{color}"><title>{counts[d]}</title></rect>'
            )
        label = time.strftime("%m-%d", time.gmtime(d * day))
        bars.append(f'<text x="{x}" y="148" font-size="10">{label}</text>')
    return (
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}">{"".join(bars)}</svg>'
    )
