"""JSON output: one document, stable key order, nothing lost."""

from __future__ import annotations

import json
from typing import IO


def write_json(doc: object, out: IO[str]) -> None:
    """ASCII only: names read from damaged files may hold bytes that are not UTF-8
    (kept as surrogate escapes), and they must reach the reader as valid JSON text."""
    json.dump(doc, out, indent=2, default=_default, ensure_ascii=True)
    out.write("\n")


def _default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
