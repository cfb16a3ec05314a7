"""The incident view as an engineer pastes it into the incident channel: one table of
groups with their layer, then the evidence of each, then the recurrences."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dovecot_index_tool.incidents import Incident
from dovecot_index_tool.present.queue_view import _duration, _when
from dovecot_index_tool.present.tables import print_table

MAILBOXES_SHOWN = 5


def render(incident: Incident, console: Console) -> None:
    if not incident.groups:
        console.print("No open damage in the ledger.")
    else:
        _groups(incident, console)
    _recurrences(incident, console)


def _groups(incident: Incident, console: Console) -> None:
    table = Table(title=f"{len(incident.groups)} damage group(s), in the order they began")
    for column in ("#", "layer", "signature", "volume", "device", "from", "to", "mailboxes",
                   "findings"):
        table.add_column(column)
    docs = [g.to_dict() for g in incident.groups]
    for number, doc in enumerate(docs, 1):
        table.add_row(str(number), doc["layer"], doc["signature"],
                      escape(_one_or_many(doc["volumes"])), _one_or_many(doc["devices"]),
                      _when(doc["window"]["start"]), _when(doc["window"]["end"]),
                      str(len(doc["mailboxes"])), str(doc["findings"]))
    print_table(console, table)
    for number, doc in enumerate(docs, 1):
        console.print(f"\n#{number} {doc['layer']} ({doc['signature']}): "
                      + escape(_names(doc["mailboxes"])), soft_wrap=True)
        for line in doc["evidence"]:
            console.print(f"  - {escape(line)}", soft_wrap=True)


def _recurrences(incident: Incident, console: Console) -> None:
    if not incident.recurrences:
        console.print("\nNo repaired mailbox is damaged again.")
        return
    table = Table(title=f"{len(incident.recurrences)} mailbox(es) damaged again after a "
                  "verified repair")
    for column in ("tenant", "user", "mailbox", "volume", "repaired", "again after",
                   "signatures"):
        table.add_column(column)
    for r in (r.to_dict() for r in incident.recurrences):
        table.add_row(escape(r["tenant"] or "-"), escape(r["user"]), escape(r["mailbox"]),
                      escape(r["volume"]), _when(r["repaired"]), _duration(r["since_repair"]),
                      ", ".join(r["signatures"]))
    console.print()
    print_table(console, table)
    _rates(incident, console)
    for kind, count in incident.recurring.items():
        console.print(f"The same signature ({kind}) came back in {count} repaired mailboxes: "
                      "one cause the repairs did not remove.", soft_wrap=True)


def _rates(incident: Incident, console: Console) -> None:
    table = Table(title="Recurrence rate per volume, since the last repairs")
    for column in ("volume", "repaired", "recurred", "rate", "since"):
        table.add_column(column)
    for r in incident.rates:
        table.add_row(escape(r.volume), str(r.repaired), str(r.recurred), f"{r.rate:.0%}",
                      _when(r.since))
    print_table(console, table)


def _one_or_many(values: list) -> str:
    return str(values[0]) if len(values) == 1 else f"{len(values)}"


def _names(mailboxes: list[dict]) -> str:
    names = [f"{m['user']}@{m['tenant']}/{m['mailbox']}" if m["tenant"]
             else f"{m['user']}/{m['mailbox']}" for m in mailboxes]
    more = len(names) - MAILBOXES_SHOWN
    return ", ".join(names[:MAILBOXES_SHOWN]) + (f" and {more} more" if more > 0 else "")
