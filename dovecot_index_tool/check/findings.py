"""A finding: one check that failed, where, and what to do about it."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from dovecot_index_tool.check.catalogue import RULES, Repair, Rule, Severity
from dovecot_index_tool.check.signatures import NOT_READ, Signature
from dovecot_index_tool.exitcodes import Exit
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
    first_seen: float | None = dataclasses.field(default=None, compare=False)  # from the ledger
    # what the damaged bytes look like, and where and when the file was (check/evidence.py)
    signature: Signature | None = dataclasses.field(default=None, compare=False)
    device: int | None = dataclasses.field(default=None, compare=False)
    file_mtime: float | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_row(cls, row: dict[str, object]) -> Finding:
        """A finding as the ledger stored it (``findings`` table)."""
        return cls(str(row["check_id"]), row["file"], str(row["message"]),
                   row["byte_offset"], row["field"], row["expected"], row["found"],
                   row.get("first_seen"), Signature.from_json(row.get("signature")),
                   row.get("device"), row.get("file_mtime"))

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
        return finding_doc(self.check, self.file, self.offset, self.field, self.expected,
                           self.found, self.message, self.first_seen,
                           (self.signature or NOT_READ).to_dict(), self.device,
                           self.file_mtime)


def finding_doc(check: str, file: str | None, offset: int | None, field: str | None,
                expected: object, found: object, message: str, first_seen: float | None,
                signature: dict[str, object], device: int | None,
                file_mtime: float | None) -> dict[str, object]:
    """A finding as scan output and the ledger's comparisons see it: the place, the
    rule's severity, Dovecot's reaction and repair, and the evidence."""
    rule = RULES[check]
    return {
        "check": check,
        "severity": rule.severity.value,
        "file": file,
        "offset": offset,
        "field": field,
        "expected": _plain(expected),
        "found": _plain(found),
        "message": message,
        "dovecot": rule.dovecot,
        "repair": rule.repair.value,
        "first_seen": first_seen,
        "signature": signature,
        "device": device,
        "file_mtime": file_mtime,
    }


UNCHECKED = frozenset(check for check in RULES if check.startswith("scanner."))


def could_not_check(check: str, severity: str | Severity = "error") -> bool:
    """The finding says the files were not read (unreadable, unstable, a checker that
    crashed or timed out): never healthy, never damage, never a repair."""
    return check in UNCHECKED and str(severity) != Severity.INFO


def status_for(findings: list[tuple[str, str]]) -> Exit:
    """The exit status for (check id, severity) pairs: problems and could-not-check add up."""
    status = Exit.OK
    for check, severity in findings:
        if could_not_check(check, severity):
            status |= Exit.OPERATIONAL_ERROR
        elif severity != Severity.INFO:
            status |= Exit.PROBLEMS_LEFT
    return status


def stored_findings(rows) -> list[Finding]:
    """Ledger rows as findings; a row of a check this version no longer has is left out
    (a ledger outlives the version that wrote it)."""
    return [Finding.from_row(row) for row in rows if row["check_id"] in RULES]


def stored_finding_docs(rows) -> list[dict[str, object]]:
    """Ledger rows as ``Finding.to_dict`` documents, without the findings between: an
    ``--incremental`` run reports the stored findings of every mailbox it left unread."""
    return [finding_doc(row["check_id"], row["file"], row["byte_offset"], row["field"],
                        row["expected"], row["found"], row["message"], row.get("first_seen"),
                        _signature_doc(row.get("signature")), row.get("device"),
                        row.get("file_mtime"))
            for row in rows if row["check_id"] in RULES]


@functools.lru_cache(maxsize=1024)
def _signature_doc(text: str | None) -> dict[str, object]:
    """A stored signature as output shows it; few texts recur across a ledger. The
    document is shared: output only reads it."""
    return (Signature.from_json(text) or NOT_READ).to_dict()


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


def in_all(items, noun: str = "messages") -> str:
    """" (N messages in all)" after the first of several places reported as one."""
    return f" ({len(items)} {noun} in all)" if len(items) > 1 else ""
