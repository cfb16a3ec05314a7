"""Pure parsers for Dovecot's on-disk files: bytes in, frozen dataclasses out.

Nothing in this package prints, logs, or decides what is healthy; that is the
job of ``dovecot_index_tool.check``. Every length read from a file is bounded by
the file's own size, and every failure is a :class:`FormatError` that names the
file, offset and field.
"""

from dovecot_index_tool.format.errors import FormatError

__all__ = ["FormatError"]
