"""The errors met while taking a file in, each carrying where it went wrong.

``FormatError`` is what the parsers raise: bytes that do not decode. ``ReadError``
is a file that exists but could not be read at all. Both are ``FileError``, so a
list of what went wrong with a set of files can hold either.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class ErrorKind(StrEnum):
    """What a parser found wrong, for the checks to act on.

    The reason text is for people and may be reworded; checks that must tell one
    problem from another look at the kind.
    """

    INVALID = "invalid"  # anything not told apart below
    EXTENSION_OUTSIDE_HEADER = "extension-outside-header"
    KEYWORDS_HEADER = "keywords-header"
    MESSAGES_BEYOND_FILE = "messages-beyond-file"
    CACHE_CHAIN_LOOP = "cache-chain-loop"


class FileError(Exception):
    """A file that could not be taken in: the file, byte offset, field path, and what
    was expected and found, so that checks can turn it into a finding and a human can
    look at the exact bytes."""

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

    def _extra(self) -> dict[str, object]:
        """What a subclass adds to the fields of ``to_dict``."""
        return {}

    def __reduce__(self):  # keeps the fields across process boundaries
        return (_rebuild, (type(self), self.to_dict(), self._extra()))


class FormatError(FileError):
    """Bytes that cannot be decoded as the format requires."""

    def __init__(self, reason: str, *, kind: ErrorKind = ErrorKind.INVALID, **where) -> None:
        super().__init__(reason, **where)
        self.kind = kind

    def with_file(self, file: str | None) -> FormatError:
        """Return the same error naming ``file`` (parsers of bytes do not know it)."""
        if file is None or self.file is not None:
            return self
        return _rebuild(FormatError, {**self.to_dict(), "file": file}, self._extra())

    def _extra(self) -> dict[str, object]:
        return {"kind": self.kind}


class ReadError(FileError, OSError):
    """A file that exists but could not be read (permissions, I/O error, vanished).

    An ``OSError`` too, so that callers which treat any I/O failure alike keep doing so.
    """


def _rebuild(cls: type[FileError], values: dict[str, object], extra: dict[str, object]):
    where = {k: v for k, v in values.items() if k != "reason"}
    return cls(str(values["reason"]), **where, **extra)  # type: ignore[arg-type]


def naming_file(parse: Callable[[bytes, str | None], T]) -> Callable[..., T]:
    """Make ``parse(data, path)`` take any bytes-like data and raise errors that name
    ``path``: parsers of bytes do not know which file the bytes came from."""

    @functools.wraps(parse)
    def parse_file(data: bytes, path: str | None = None) -> T:
        try:
            return parse(bytes(data), path)
        except FormatError as err:
            raise err.with_file(path) from None

    return parse_file
