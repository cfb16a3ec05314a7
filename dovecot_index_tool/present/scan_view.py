"""Scan output: a rich summary per volume, or JSON / ndjson (one object per mailbox)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dovecot_index_tool.check.severity import SERIOUS, rank
from dovecot_index_tool.present.tables import print_table
from dovecot_index_tool.scan.engine import ScanResult
from dovecot_index_tool.scan.worker import Outcome

SEVERITIES = tuple(str(s) for s in SERIOUS)
_ENCODE = json.JSONEncoder(default=str).encode  # one encoder for every line, not one each


def mailbox_doc(outcome: Outcome, findings: list[dict[str, object]]) -> dict[str, object]:
    r = outcome.report
    return {
        "type": "mailbox",
        "volume": outcome.volume,
        "tenant": outcome.tenant,
        "user": outcome.user,
        "mailbox": r.name,
        "path": r.path,
        "format": r.format,
        "messages": r.messages,
        "bytes": outcome.bytes,
        "reread": outcome.reread,
        "findings": findings,
    }


def summary_doc(result: ScanResult) -> dict[str, object]:
    by_severity: dict[str, int] = defaultdict(int)
    for (_, severity), count in result.findings.items():
        by_severity[severity] += count
    return {
        "type": "summary",
        "run": result.run_id,
        "status": result.status,
        "mailboxes": result.mailboxes,
        "reread": result.reread,
        "bytes": result.bytes,
        "affected": result.affected,
        "could_not_check": result.unchecked,
        "findings_by_severity": dict(by_severity),
        "volume_errors": result.volume_errors,
        "recurred": sum(result.recurred.values()),
        "recurred_by_volume": result.recurred,
    }


class NdjsonOut:
    """One line per mailbox, written out whenever the scan has recorded what a batch
    of tasks returned (``flush``): a reader following the stream sees each batch as it
    is recorded, at one write per batch instead of one per mailbox."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lines: list[str] = []

    def __call__(self, outcome: Outcome, findings: list[dict[str, object]]) -> None:
        self.lines.append(_ENCODE(mailbox_doc(outcome, findings)))

    def flush(self) -> None:
        if self.lines:
            self.lines.append("")
            self.out.write("\n".join(self.lines))
            self.lines = []
            self.out.flush()

    def finish(self, result: ScanResult) -> None:
        self.flush()
        self.out.write(json.dumps(summary_doc(result)) + "\n")


class JsonOut:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.mailboxes: list[dict[str, object]] = []

    def __call__(self, outcome: Outcome, findings: list[dict[str, object]]) -> None:
        self.mailboxes.append(mailbox_doc(outcome, findings))

    def finish(self, result: ScanResult) -> None:
        json.dump(
            {"mailboxes": self.mailboxes, "summary": summary_doc(result)},
            self.out,
            indent=2,
            default=str,
        )
        self.out.write("\n")


class RichOut:
    """Keeps the affected mailboxes while the scan runs; at the end prints the counts
    the scan made per volume (``ScanResult.volumes``) and those mailboxes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.affected: list[tuple[str, str, str, dict[str, object]]] = []

    def __call__(self, outcome: Outcome, findings: list[dict[str, object]]) -> None:
        serious = [f for f in findings if f["severity"] != "info"]
        if serious:
            worst = max(serious, key=lambda f: rank(f["severity"]))
            self.affected.append((outcome.volume, outcome.user, outcome.report.name, worst))

    def finish(self, result: ScanResult) -> None:
        table = Table(title=f"scan run {result.run_id} ({result.status})")
        cols = ("volume", "mailboxes", "MB", "healthy", *SEVERITIES, "could not check")
        for col in cols:
            if col == "volume":
                table.add_column(col, overflow="fold")
            else:
                table.add_column(col, justify="right")
        for name, v in result.volumes.items():
            table.add_row(
                escape(name),
                str(v["mailboxes"]),
                f"{v['bytes'] / 1e6:.1f}",
                str(v["healthy"]),
                *(str(v[s]) for s in SEVERITIES),
                str(v["could_not_check"]),
            )
        print_table(self.console, table)
        for error in result.volume_errors:
            self.console.print(f"[bold red]volume error:[/] {escape(error)}")
        if recurred := sum(result.recurred.values()):
            self.console.print(f"[bold red]recurred[/]: {recurred} mailbox(es) damaged again "
                               "after a verified repair (see `incident`)")
        if self.affected:
            self._affected_table()
        elif not result.volume_errors:
            self.console.print("[green]healthy[/]: nothing above info")

    def _affected_table(self) -> None:
        table = Table(title=f"{len(self.affected)} affected")
        for col in ("volume", "user", "mailbox", "worst", "check", "file"):
            table.add_column(col, overflow="fold")
        for volume, user, mailbox, f in self.affected:
            table.add_row(
                escape(volume),
                escape(user),
                escape(mailbox),
                str(f["severity"]),
                str(f["check"]),
                escape(str(f["file"])),
            )
        print_table(self.console, table)


def output_for(fmt: str, out: IO[str], console: Console):
    """The scan output for ``--format``: told of each mailbox, then ``finish``."""
    if fmt == "json":
        return JsonOut(out)
    if fmt == "ndjson":
        return NdjsonOut(out)
    return RichOut(console)
