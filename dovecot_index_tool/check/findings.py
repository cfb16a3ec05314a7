"""A finding: one check that failed, where, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass

from dovecot_index_tool.check.catalogue import RULES, Repair, Rule, Severity
from dovecot_index_tool.format.errors import FileError, ReadError


@dataclass(frozen=True)
class Finding:
    """A failed check with the exact place: file, byte offset, field, expected, found."""

    check: str
    file: str | None
    message: str
    offset: int | None = None
    field: str | None = None
    expected: object = None
    found: object = None

    def __post_init__(self) -> None:
        if self.check not in RULES:
            raise ValueError(f"unknown check id {self.check}")

    @property
    def rule(self) -> Rule:
        return RULES[self.check]

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def repair(self) -> Repair:
        return self.rule.repair

    @property
    def calls_for_repair(self) -> bool:
        """Above info, with a repair to carry out: what a repair must clear."""
        return self.severity is not Severity.INFO and self.repair is not Repair.NONE

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "severity": self.severity.value,
            "file": self.file,
            "offset": self.offset,
            "field": self.field,
            "expected": _plain(self.expected),
            "found": _plain(self.found),
            "message": self.message,
            "dovecot": self.rule.dovecot,
            "repair": self.repair.value,
        }


def _plain(value: object) -> object:
    if value is None or isinstance(value, (int, str, bool, float)):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def from_error(check: str, err: FileError, message: str | None = None) -> Finding:
    """A finding from a parser's (or reader's) typed error, keeping its location."""
    return Finding(
        check,
        err.file,
        message or err.reason,
        offset=err.offset,
        field=err.field,
        expected=err.expected,
        found=err.found,
    )


def from_file_error(err: FileError, parse_check: str) -> Finding:
    """A file that exists but could not be read (``scanner.unreadable``: never clean) or
    could not be parsed at all (``parse_check``)."""
    check = "scanner.unreadable" if isinstance(err, ReadError) else parse_check
    return from_error(check, err)


def worst(findings: list[Finding]) -> Severity | None:
    if not findings:
        return None
    return max((f.severity for f in findings), key=lambda s: s.rank)
