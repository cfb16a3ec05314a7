"""The report as a table, JSON, CSV, or one self-contained HTML page (``html_page``).

Mailbox, user and tenant names come from the filesystem: untrusted. The table escapes
rich markup in them, HTML output escapes every one of them; CSV is written by the csv
module.
"""

from __future__ import annotations

import csv
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


def when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else ""


def back(row: ReportRow, stamp: float | None) -> str:
    """A time back as a person reads it: ``~`` marks an estimate; unknown says why."""
    if stamp is None:
        return f"unknown: {row.times.reason}" if row.times.reason else "unknown"
    return ("~" if row.times.kind is TimeKind.ESTIMATE else "") + when(stamp)


def cells(row: ReportRow) -> tuple[str, ...]:
    """One row as text, in the order of ``HEADINGS`` (the table and the page)."""
    return (row.volume, row.tenant or "-", row.user, row.mailbox, row.state, when(row.since),
            row.worst, when(row.first_seen), back(row, row.usable_at),
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


def write_html(rows: list[ReportRow], out: IO[str], title: str = "Mailbox status",
               now: float | None = None) -> None:
    """The one self-contained page (``html_page``), where ``report`` and ``serve`` find it."""
    from dovecot_index_tool.present.html_page import write_page  # it imports this module

    write_page(rows, out, title, now)
