"""The one error type the parsers raise, carrying where the bytes went wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a problem sits: file, byte offset and field path."""

    file: str | None = None
    offset: int | None = None
    field: str | None = None


class FormatError(Exception):
    """Bytes that cannot be decoded as the format requires.

    Carries the file, the byte offset, the field path, and what was expected and
    found, so that checks can turn it into a finding and a human can look at the
    exact bytes.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        offset: int | None = None,
        field: str | None = None,
        expected: object = None,
        found: object = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.offset = offset
        self.field = field
        self.expected = expected
        self.found = found

    def with_file(self, file: str | None) -> FormatError:
        """Return the same error naming ``file`` (parsers of bytes do not know it)."""
        if file is None or self.file is not None:
            return self
        return FormatError(
            self.reason,
            file=file,
            offset=self.offset,
            field=self.field,
            expected=self.expected,
            found=self.found,
        )

    def to_dict(self) -> dict[str, object]:
        """Plain form for JSON output."""
        return {
            "reason": self.reason,
            "file": self.file,
            "offset": self.offset,
            "field": self.field,
            "expected": self.expected,
            "found": self.found,
        }

    def __str__(self) -> str:
        where = [self.file or "<bytes>"]
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        if self.field:
            where.append(self.field)
        text = f"{': '.join([', '.join(where), self.reason])}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}, found {self.found})"
        return text

    def __reduce__(self):  # keeps the fields across process boundaries
        return (_rebuild, (self.to_dict(),))


def _rebuild(values: dict[str, object]) -> FormatError:
    reason = values.pop("reason")
    return FormatError(str(reason), **values)  # type: ignore[arg-type]
