"""Rich rendering of check results: one block per mailbox with findings, then a summary."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape

from dovecot_index_tool.check.catalogue import Severity
from dovecot_index_tool.check.report import MailboxReport
from dovecot_index_tool.check.severity import SERIOUS

STYLE = {"fatal": "bold red", "error": "red", "warning": "yellow", "info": "dim"}


def render_report(report: MailboxReport, console: Console, verbose: bool) -> None:
    shown = [f for f in report.findings if verbose or f.severity != Severity.INFO]
    if not shown:
        return
    console.print(f"[bold]{escape(report.name)}[/] ({report.format}) {escape(report.path)}")
    for f in shown:
        sev = f.severity.value
        console.print(f"  [{STYLE[sev]}]{sev:<7}[/] [bold]{f.check}[/]  {escape(f.message)}")
        where = escape(str(f.file))
        if f.offset is not None:
            where += f" @{f.offset}"
        if f.field:
            where += f" ({escape(f.field)})"
        console.print(f"          file: {where}")
        values = [
            f"expected {f.expected}" if f.expected is not None else "",
            f"found {f.found}" if f.found is not None else "",
        ]
        if any(values):
            console.print(f"          {escape(', '.join(v for v in values if v))}")
        if f.severity != Severity.INFO:
            console.print(f"          Dovecot: {escape(f.rule.dovecot)}")
            console.print(f"          repair: {f.repair.value}")


def render_summary(reports: list[MailboxReport], console: Console) -> None:
    counts = Counter(f.severity.value for r in reports for f in r.findings)
    affected = sum(
        1 for r in reports if any(f.severity.rank >= Severity.WARNING.rank for f in r.findings)
    )
    if affected == 0 and not counts.get("error") and not counts.get("fatal"):
        console.print(
            f"[green]healthy[/]: {len(reports)} mailboxes and files checked, nothing above info"
        )
        return
    parts = ", ".join(f"{counts[s]} {s}" for s in SERIOUS if counts[s])
    console.print(f"[bold]{affected} of {len(reports)} checked have problems[/]: {parts}")
