"""The report as one HTML page a person reads at a glance: a line per tenant (how many
mailboxes are affected, how many are usable again, when the next one is expected),
the chart, and every mailbox with its state as a coloured badge and both times back.

The page is one file with no script and no external resource (it is mailed, saved,
and served under a content security policy that allows inline styles only). Names
come from the filesystem and are untrusted: every value is escaped.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from dataclasses import dataclass
from typing import IO

from dovecot_index_tool.back_times import TimeKind
from dovecot_index_tool.present.html_chart import chart_svg
from dovecot_index_tool.present.report_view import HEADINGS, back, cells, when
from dovecot_index_tool.report import ReportRow

# background, text: each state its own colour, readable on it
BADGES = {
    "affected": ("#c0392b", "#fff"),
    "queued": ("#2471a3", "#fff"),
    "repairing": ("#f1c40f", "#222"),
    "repaired": ("#1e8449", "#fff"),
    "failed": ("#641e16", "#fff"),
    "not-checked": ("#7f8c8d", "#fff"),
    "recurred": ("#7d3c98", "#fff"),
}
STATE_COLUMN = HEADINGS.index("state")
NO_TENANT = "no tenant"


@dataclass(frozen=True)
class TenantSummary:
    """What the line of one tenant says."""

    tenant: str
    affected: int  # mailboxes with damage in the report
    usable: int  # of them, back for their users (a repair ended, or a scan found it gone)
    next_row: ReportRow | None  # the waiting mailbox with the earliest estimate
    unknown: Counter[str]  # waiting mailboxes without an estimate, by reason

    @property
    def waiting(self) -> int:
        return self.affected - self.usable


def usable_again(row: ReportRow, now: float) -> bool:
    return row.times.kind is TimeKind.ACTUAL and row.usable_at is not None \
        and row.usable_at <= now


def summarise(rows: list[ReportRow], now: float) -> list[TenantSummary]:
    """One summary per tenant, by name, the mailboxes of no tenant last."""
    by_tenant: dict[str | None, list[ReportRow]] = {}
    for r in rows:
        by_tenant.setdefault(r.tenant, []).append(r)
    out = []
    for tenant in sorted(by_tenant, key=lambda t: (t is None, t or "")):
        mine = by_tenant[tenant]
        waiting = [r for r in mine if not usable_again(r, now)]
        estimated = [r for r in waiting if r.usable_at is not None]
        out.append(TenantSummary(
            tenant or NO_TENANT, len(mine), len(mine) - len(waiting),
            min(estimated, key=lambda r: r.usable_at) if estimated else None,
            Counter(r.times.reason or "unknown" for r in waiting if r.usable_at is None)))
    return out


def summary_line(s: TenantSummary) -> str:
    """The tenant's line as HTML; the next time is a row's own estimate, or the
    reason there is none (``no worker``): never a figure made up here."""
    e = html.escape
    parts = [f'<strong class="tenant">{e(s.tenant)}</strong>: ',
             f'<span class="count-affected">{s.affected} affected</span>, ',
             f'<span class="count-usable">{s.usable} usable again</span>']
    if not s.waiting:
        return "".join(parts) + ', <span class="next">all usable again</span>'
    parts.append(f', <span class="count-waiting">{s.waiting} waiting</span>; ')
    unknown = ", ".join(f"{n} {reason}" if len(s.unknown) > 1 or s.next_row else reason
                        for reason, n in sorted(s.unknown.items()))
    if s.next_row is None:
        parts.append(f'<span class="next">next expected: unknown ({e(unknown)})</span>')
    else:
        r = s.next_row
        parts.append(f'<span class="next">next expected: usable {e(back(r, r.usable_at))}, '
                     f"complete {e(back(r, r.complete_at))}"
                     f"{f' (without an estimate: {e(unknown)})' if unknown else ''}</span>")
    return "".join(parts)


def badge(state: str) -> str:
    return f'<span class="badge state-{html.escape(state)}">{html.escape(state)}</span>'


def _row_html(row: ReportRow) -> str:
    e = html.escape
    values = cells(row)
    tds = [f"<td>{badge(v) if i == STATE_COLUMN else e(v)}</td>" for i, v in enumerate(values)]
    return f'<tr class="mailbox" data-state="{e(row.state)}">{"".join(tds)}</tr>'


def _style() -> str:
    badges = "".join(f".state-{s}{{background:{bg};color:{fg}}}" for s, (bg, fg) in BADGES.items())
    return (
        "body{font-family:sans-serif;margin:2em;color:#222}"
        "#summary{list-style:none;padding:0;font-size:1.15em}#summary li{margin:.3em 0}"
        ".count-affected{color:#c0392b;font-weight:bold}"
        ".count-usable{color:#1e8449;font-weight:bold}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px;"
        "text-align:left;vertical-align:top}th{background:#eee}"
        ".badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:.9em;"
        "font-weight:bold;white-space:nowrap}" + badges
    )


def write_page(rows: list[ReportRow], out: IO[str], title: str = "Mailbox status",
               now: float | None = None) -> None:
    now = time.time() if now is None else now
    e = html.escape
    summary = "".join(f"<li>{summary_line(s)}</li>" for s in summarise(rows, now)) \
        or "<li>No mailbox has damage.</li>"
    head = "".join(f"<th>{e(h)}</th>" for h in HEADINGS)
    body = "".join(_row_html(r) for r in rows)
    legend = " ".join(badge(s) for s in BADGES)
    out.write(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{_style()}</style></head>
<body><h1>{e(title)}</h1>
<p id="generated">Generated {e(when(now))}; times are local, ~ marks an estimate.</p>
<ul id="summary">{summary}</ul>
<h2>Affected, usable again and complete</h2>
{chart_svg(rows, now)}
<h2>Mailboxes</h2>
<p id="states">States: {legend}</p>
<table id="mailboxes"><thead><tr>{head}</tr></thead>
<tbody>{body}</tbody></table></body></html>
""")
