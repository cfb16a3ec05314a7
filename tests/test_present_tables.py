"""Tables in output that is not a terminal: paths and IDs are never broken."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from dovecot_index_tool.present.tables import print_table

PATH = "/srv/mail/vol1/example.org/alice/Maildir/.Lists.dovecot/dovecot.index.cache"


def _table() -> Table:
    table = Table(title="1 affected")
    for name in ("user", "check", "file"):
        table.add_column(name)
    table.add_row("alice", "cache.record-invalid", PATH)
    return table


def _printed(width: int) -> str:
    out = io.StringIO()
    print_table(Console(file=out, width=width, highlight=False), _table())
    return out.getvalue()


def test_a_table_too_wide_for_80_columns_becomes_one_record_per_line() -> None:
    text = _printed(80)
    assert f"file: {PATH}\n" in text
    assert "check: cache.record-invalid\n" in text
    assert "1 affected" in text


def test_a_table_that_fits_stays_a_table_with_whole_values() -> None:
    text = _printed(200)
    assert PATH in text
    assert "file:" not in text
    assert "┃" in text or "│" in text
