"""Which mdbox messages a rebuild can be expected to bring back.

A salvaged mailbox record whose message the map no longer references was expunged
(or its mail purged): a rebuild must not be expected to bring it back. When the map
itself is damaged, the ``m.N`` files are the only witness.
"""

from __future__ import annotations

import os
from pathlib import Path

from dovecot_index_tool.check.data import MDBOX_FILE, load_index
from dovecot_index_tool.files import read_file
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.dbox import parse_dbox
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.repair.salvage import guid_128

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


def stored_guids(storage_dir: str | os.PathLike[str]) -> frozenset[str]:
    """The 128-bit GUIDs of every message in the ``m.N`` files: what a storage rebuild
    can bring back when the map itself is damaged (reads all of the user's mail)."""
    guids = set()
    for entry in sorted(Path(storage_dir).glob("m.*")):
        if not MDBOX_FILE.match(entry.name):
            continue
        try:
            parsed = parse_dbox(read_file(entry).data, str(entry))
        except (OSError, FormatError):
            continue
        guids.update(guid_128(m.guid) for m in parsed.messages if m.guid)
    return frozenset(guids)
