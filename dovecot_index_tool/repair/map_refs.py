"""Which mdbox messages the map still references (refcount above zero).

A salvaged mailbox record whose message the map no longer references was expunged
(or its mail purged): a rebuild must not be expected to bring it back.
"""

from __future__ import annotations

import os
from pathlib import Path

from dovecot_index_tool.check.data import load_index
from dovecot_index_tool.format.binary import layout

MAP_INDEX = "dovecot.map.index"


def referenced_map_uids(map_index_dir: str | os.PathLike[str]) -> frozenset[int] | None:
    """The map UIDs with a refcount above zero; None when the map cannot be read."""
    state = load_index(Path(map_index_dir) / MAP_INDEX).state
    if state is None:
        return None
    ref = state.extension("ref")
    if ref is None or ref.record_size < 2:
        return None
    u16 = layout(state.byteorder, "H")
    return frozenset(
        rec.uid for rec in state.records if u16.unpack_from(rec.data, ref.record_offset)[0] > 0
    )
