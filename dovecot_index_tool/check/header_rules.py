"""Checks of single header fields, written as data: one rule a line, one loop applies them.

A rule names the field, the predicate that says it is broken, the check ID, and what
the finding says. The offset comes from the format's table of header offsets, and the
value found is the field's own, so no rule can point at the wrong bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dovecot_index_tool.check.findings import Finding


def fixed(value: object) -> Callable[[Any], Any]:
    """A message or expected value that does not depend on the header."""
    return lambda _: value


def _nothing(_: Any) -> None:
    return None


@dataclass(frozen=True)
class HeaderRule:
    """When ``broken(facts)`` holds, ``check`` is reported at header field ``field``."""

    field: str
    broken: Callable[[Any], object]
    check: str
    message: Callable[[Any], str]
    expected: Callable[[Any], object] = _nothing


class HeaderFacts:
    """A header, seen through the few facts around it that some rules compare it with.

    Rules read header fields straight off it (``h.next_uid``); the other facts are
    given as keywords (``h.file_size``).
    """

    def __init__(self, header: object, **facts: object) -> None:
        self.__dict__.update(getattr(header, "__dict__", ()))  # rules read many fields
        self.header = header
        self.__dict__.update(facts)

    def __getattr__(self, name: str) -> Any:
        if name == "header":  # not set yet (a copy being made): no header to look into
            raise AttributeError(name)
        return getattr(self.header, name)


def apply_rules(
    rules: Iterable[HeaderRule],
    facts: HeaderFacts,
    path: str,
    offsets: Mapping[str, tuple[int, int]],
) -> list[Finding]:
    """The findings of every rule that holds, in the order of ``rules``."""
    return [
        Finding(
            rule.check,
            path,
            rule.message(facts),
            offset=offsets[rule.field][0],
            field=f"header.{rule.field}",
            expected=rule.expected(facts),
            found=getattr(facts, rule.field),
        )
        for rule in rules
        if rule.broken(facts)
    ]
