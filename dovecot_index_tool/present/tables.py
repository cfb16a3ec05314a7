"""Tables that never break a path or an ID: a table when it fits, records otherwise.

Rich folds a cell that does not fit its column, which cuts paths mid-word
(``dovecot.index.cach`` / ``e``) and, in cron mail or a file (80 columns), squeezes
wide tables into one-letter columns. A table that does not fit the width at its
natural size is printed as one record per row instead, ``column: value`` a line,
as a pager-less report should be; nothing is ever wrapped inside a value.
"""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


def print_table(console: Console, table: Table) -> None:
    """``table`` as it is when its natural width fits ``console``, else as records."""
    natural = Measurement.get(console, console.options.update(max_width=1 << 20), table).maximum
    if natural <= console.width:
        console.print(table, overflow="ignore", crop=False)
        return
    if table.title:
        console.print(Text.from_markup(str(table.title)), soft_wrap=True)
    names = [str(column.header) for column in table.columns]
    cells = [list(column.cells) for column in table.columns]
    for row in range(table.row_count):
        console.print()
        for name, column in zip(names, cells, strict=True):
            value = column[row] if row < len(column) else ""
            line = Text(f"{name}: ")
            line.append(value if isinstance(value, Text) else Text.from_markup(str(value)))
            console.print(line, soft_wrap=True)
