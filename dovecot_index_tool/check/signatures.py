"""What a finding's damaged bytes look like: the damage signature.

Why: a check ID says *what* is wrong (a counter, a header, a chain); the bytes around
it say *how* it went wrong, and that points at the layer that did it. A page of
zeros on a 4 KiB boundary is what a lost write or a block-layer bug leaves, a single
flipped bit is what failing memory leaves, a file from an earlier state is a lost or
misdirected write, and well-formed values that contradict each other were written so
by software. The vocabulary is that of ZFS's checksum reports (bad ranges, bits set
and cleared) and of Bairavasundaram et al., "An Analysis of Data Corruption in the
Storage Stack" (FAST'08: checksum mismatches, identity discrepancies, parity errors).

Everything here is pure: a finding, the bytes around its offset (``Window``) and what
the mailbox's other files say about the damaged file's identity go in, a
``Signature`` comes out. Reading those bytes is ``check/evidence.py``'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dovecot_index_tool.check.findings import Finding

ZERO_RUN_MIN = 64  # shorter runs of zeros are ordinary in Dovecot's files (u32 fields)
FF_RUN_MIN = 16  # 0xff is rare in healthy files beyond a single (uint32)-1
MAX_FLIPPED_BITS = 2  # more differing bits than this is a wrong value, not a flip
ALIGNMENTS = (4096, 512)  # page, then sector


class Kind(StrEnum):
    """The signature kinds; the values are the contract of the JSON and the ledger."""

    ZEROED_RUN = "zeroed-run"
    FF_RUN = "ff-run"
    BIT_FLIP = "bit-flip"
    TORN_TAIL = "torn-tail"
    STALE_COPY = "stale-copy"
    FOREIGN_BYTES = "foreign-bytes"
    LOGICAL = "logical"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Signature:
    """A kind and its evidence: the bad range (start, length, alignment) for runs and
    tails, the differing bits for flips, and one sentence an engineer can check."""

    kind: Kind
    evidence: str
    start: int | None = None
    length: int | None = None
    aligned: int | None = None  # 4096 or 512 when the range starts and ends on one
    distance: int | None = None  # Hamming distance between expected and found
    bits_set: int | None = None  # bits 1 in found, 0 in expected
    bits_cleared: int | None = None  # bits 0 in found, 1 in expected

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind.value, "evidence": self.evidence}
        for name in ("start", "length", "aligned", "distance", "bits_set", "bits_cleared"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Signature | None:
        """As the ledger stored it; None for a row written before signatures or by a
        version whose kinds this one does not know."""
        try:
            values = json.loads(text) if text else None
            return cls(**{**values, "kind": Kind(values["kind"])}) if values else None
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class Window:
    """Bytes of the damaged file from ``start`` on, and the file's size."""

    start: int
    data: bytes
    size: int


RUNS = ((0, Kind.ZEROED_RUN, ZERO_RUN_MIN), (0xFF, Kind.FF_RUN, FF_RUN_MIN))
NOT_READ = Signature(Kind.UNKNOWN, "the files were not read: nothing to compare")
NO_BYTES = Signature(Kind.UNKNOWN, "no bytes at the finding to look at")

# A file shorter than its own structure says: a partial record or page at EOF.
TORN = frozenset({
    "index.file-too-small", "index.records-truncated", "log.file-too-small",
    "log.garbage-at-eof", "log.unfinished-write", "cache.file-too-small",
    "mdbox.map-offset-invalid",
})
# Two files that should name the same mailbox (indexid, UIDVALIDITY) disagree.
IDENTITY = frozenset({
    "index.indexid-mismatch", "log.indexid-mismatch", "cache.indexid-mismatch",
    "maildir.uidvalidity-mismatch", "mdbox.map-uidvalidity-mismatch", "index.uidvalidity-mismatch",
})
# A file whose bytes do not parse, or that is not there: no value to contradict.
STRUCTURAL = frozenset({
    "index.major-version", "index.byte-order", "index.header-sizes",
    "index.header-outside-file", "index.record-size-too-small", "index.extension-outside-header",
    "index.extension-invalid", "index.extension-duplicate", "index.keywords-header-invalid",
    "index.keyword-name-offset", "index.corrupted-flag", "index.missing", "index.log-missing",
    "log.major-version", "log.header-size-invalid", "log.marked-corrupted", "log.byte-order",
    "log.file-seq-reserved", "log.record-size-invalid", "log.record-invalid",
    "log.unknown-record-type", "log.hardlinked", "log.old-log-damaged",
    "log.applied-record-damaged", "log.tail-update-invalid", "cache.version",
    "cache.field-header-invalid",
    "cache.record-invalid", "uidlist.unusable", "uidlist.record-invalid",
    "maildir.uidlist-missing", "maildir.keywords-invalid", "dbox.file-invalid",
    "mdbox.map-missing", "mdbox.map-invalid", "index.unknown-extension",
})


def signature_of(finding: Finding, window: Window | None,
                 identity: Signature | None = None) -> Signature:
    """The signature of one finding. ``identity`` is what the other files of the
    mailbox say about the damaged file as a whole (another mailbox's, or an earlier
    state of this one), which explains every finding on that file."""
    if finding.check.startswith("scanner."):
        return NOT_READ
    if identity is not None:
        return identity
    if finding.check in TORN:
        return torn_tail(finding, window)
    run = byte_run(finding, window)
    if run is not None:
        return run
    return by_value(finding)


def by_value(finding: Finding) -> Signature:
    """No byte pattern at the offset: what the expected and found values say."""
    expected, found = _number(finding.expected), _number(finding.found)
    if expected is not None and found is not None and expected != found:
        flip = bit_flip(expected, found)
        if flip is not None:
            return flip
        if finding.check in IDENTITY and found != 0:
            return Signature(Kind.FOREIGN_BYTES, f"{finding.field or 'identity'} is {found}, "
                             f"the other files say {expected}: another file's value")
    if finding.check in STRUCTURAL or finding.check in IDENTITY:
        return NO_BYTES
    return Signature(Kind.LOGICAL, _logical_evidence(finding, expected, found))


def _logical_evidence(finding: Finding, expected: int | None, found: int | None) -> str:
    if expected is not None and found is not None:
        return (f"{finding.field or finding.check} is {found}, {expected} expected: "
                f"{bin(expected ^ found).count('1')} bits differ, a wrong value, not a flip")
    return f"well-formed bytes whose values contradict each other ({finding.check})"


def bit_flip(expected: int, found: int) -> Signature | None:
    """One or two bits apart (set and cleared counted apart, as ZFS does), or None."""
    if expected < 0 or found < 0:
        return None
    diff = expected ^ found
    distance = diff.bit_count()
    if not 0 < distance <= MAX_FLIPPED_BITS:
        return None
    set_bits = (found & ~expected).bit_count()
    bits = ", ".join(str(b) for b in range(diff.bit_length()) if diff >> b & 1)
    return Signature(Kind.BIT_FLIP, f"{found} instead of {expected}: bit {bits} "
                     f"({set_bits} set, {distance - set_bits} cleared)",
                     distance=distance, bits_set=set_bits, bits_cleared=distance - set_bits)


def byte_run(finding: Finding, window: Window | None) -> Signature | None:
    """A run of zeros or 0xff bytes over the finding's offset, or None."""
    if window is None or finding.offset is None:
        return None
    found = _number(finding.found)
    for byte, kind, minimum in RUNS:
        if not _could_be(found, byte):
            continue
        span = run_around(window, finding.offset, byte)
        if span is not None and span[1] >= minimum:
            return _run_signature(kind, span, window)
    return None


def _could_be(found: int | None, byte: int) -> bool:
    """Whether a value read from a run of ``byte`` could be ``found`` (any width)."""
    if found is None:
        return True
    if byte == 0:
        return found == 0
    return found >= 0xFF and (found + 1) & found == 0


def run_around(window: Window, offset: int, byte: int) -> tuple[int, int] | None:
    """(start, length) of the run of ``byte`` that covers ``offset``, within the window."""
    at = offset - window.start
    if not 0 <= at < len(window.data) or window.data[at] != byte:
        return None
    left = at
    while left > 0 and window.data[left - 1] == byte:
        left -= 1
    right = at
    while right < len(window.data) and window.data[right] == byte:
        right += 1
    return window.start + left, right - left


def _run_signature(kind: Kind, span: tuple[int, int], window: Window) -> Signature:
    start, length = span
    aligned = alignment(start, length, window.size)
    what = "zeros" if kind is Kind.ZEROED_RUN else "0xff bytes"
    where = f"aligned to {aligned} bytes" if aligned else "not aligned to 512 bytes"
    return Signature(kind, f"{length} bytes of {what} at {start}..{start + length}, {where}",
                     start=start, length=length, aligned=aligned)


def alignment(start: int, length: int, size: int) -> int | None:
    """The largest of 4096 and 512 of which the range covers at least one whole aligned
    block (zeros next to a zeroed block are ordinary, so the run may be longer). The
    end of the file closes a block: a file's last block is partial."""
    end = start + length
    for unit in ALIGNMENTS:
        first = -(-start // unit) * unit
        if first >= end:
            continue
        last = size if end == size and first < end else end // unit * unit
        if last - first >= min(unit, size - first):
            return unit
    return None


def torn_tail(finding: Finding, window: Window | None) -> Signature:
    """A file cut short: how much of the last record or page is there."""
    if window is None:
        return Signature(Kind.TORN_TAIL, "the file ends before the structure it holds")
    tail = window.size - finding.offset if finding.offset is not None else None
    if tail is None or not 0 <= tail < window.size:
        return Signature(Kind.TORN_TAIL, f"the file ends at {window.size}, inside the "
                         "structure it holds", start=window.size, length=0)
    zeros = _tail_is_zero(window, finding.offset)
    return Signature(Kind.TORN_TAIL, f"{tail} bytes of a partial record at {finding.offset} "
                     f"before the end of the file ({window.size})"
                     + (", all zeros" if zeros else ""), start=finding.offset, length=tail,
                     aligned=alignment(finding.offset, tail, window.size) if zeros else None)


def _tail_is_zero(window: Window, offset: int) -> bool:
    at = offset - window.start
    rest = window.data[at:] if 0 <= at <= len(window.data) else b"x"
    return bool(rest) and not rest.strip(b"\0")


def _number(value: object) -> int | None:
    """An int, or the digits of one (the ledger keeps values as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None

