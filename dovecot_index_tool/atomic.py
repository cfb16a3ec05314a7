"""Replacing a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_atomically(
    path: Path,
    data: bytes,
    mode: int,
    before_rename: Callable[[str], None] | None = None,
) -> None:
    """Write ``data`` to a temporary file beside ``path``, sync it, and rename it over
    ``path`` (rename is atomic within a filesystem). ``before_rename`` may set owner or
    times on the temporary file first."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        if before_rename is not None:
            before_rename(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
