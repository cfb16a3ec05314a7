"""A maildir message's flags and keywords, in its index record and in its file name.

Why: Dovecot keeps a maildir message's flags in the file name (``:2,`` then ``R S T D
F`` and keyword letters ``a``..``z``, numbered by ``dovecot-keywords``) and copies
them into the index at each sync. Between syncs it shows the index's copy. So a
record whose flags or keywords differ from its file's name, while the record is not
marked dirty (a change not yet written to the name), holds bits that were changed in
the index: Dovecot shows them until the next full resync puts the name's back.
"""

from __future__ import annotations

from dovecot_index_tool.check.findings import Finding, in_all
from dovecot_index_tool.format.index import MAIL_DIRTY, IndexFile
from dovecot_index_tool.format.uidlist import MaildirKeywords, Uidlist

LETTERS = {"R": 0x01, "F": 0x02, "T": 0x04, "S": 0x08, "D": 0x10}
SYSTEM_FLAGS = 0x1F
REPORTED = 1  # the first message, and a count


def flags_differ_from_names(state: IndexFile, on_disk: IndexFile | None, uidlist: Uidlist,
                            mail_files: tuple[str, ...],
                            keywords: MaildirKeywords | None) -> list[Finding]:
    """Records whose flags or keywords are not their file name's (``state``
    is the index with its logs replayed; ``on_disk`` the file, for the offset)."""
    names = _names_by_base(mail_files)
    letters = dict(keywords.names) if keywords is not None and not keywords.problems else None
    ext = state.extension("keywords")
    by_uid = {r.uid: r.filename for r in uidlist.records}
    differ = []
    for rec in state.records:
        if rec.flags & MAIL_DIRTY or (info := names.get(by_uid.get(rec.uid, ""))) is None:
            continue
        flags, kws = _from_info(info, letters)
        if flags != rec.flags & SYSTEM_FLAGS or (
                kws is not None and ext is not None and kws != _record_keywords(state, ext, rec)):
            differ.append(rec)
    if not differ:
        return []
    rec = differ[0]
    more = in_all(differ)
    stored = next((r for r in on_disk.records if r.uid == rec.uid), None) if on_disk else None
    return [Finding(
        "maildir.flags-differ",
        on_disk.path if on_disk is not None else state.path,
        f"uid {rec.uid}: the index holds flags 0x{rec.flags & SYSTEM_FLAGS:02x} and other "
        f"keywords than its file name {names[by_uid[rec.uid]]!r}, and the record is not "
        f"marked dirty{more}",
        offset=stored.offset + 4 if stored is not None else None,
        field=f"records[uid {rec.uid}].flags",
        expected=names[by_uid[rec.uid]],
        found=f"0x{rec.flags:02x}",
    )]


def _names_by_base(mail_files: tuple[str, ...]) -> dict[str, str]:
    """Base name -> the ``:2,`` info of each file that has one (cur/, and new/ when a
    writer gave it flags already); a name without one says nothing yet."""
    out = {}
    for name in mail_files:
        base, sep, info = name.split("/", 1)[-1].partition(":")
        if sep and info.startswith("2,"):
            out[base] = info[2:]
    return out


def _from_info(info: str, letters: dict[int, str] | None) -> tuple[int, frozenset | None]:
    flags, kws = 0, set()
    for ch in info.split(",", 1)[0]:
        if ch in LETTERS:
            flags |= LETTERS[ch]
        elif "a" <= ch <= "z":
            name = letters.get(ord(ch) - ord("a")) if letters is not None else None
            if name is None:
                return flags, None  # a letter dovecot-keywords does not name: not compared
            kws.add(name)
    return flags, frozenset(kws) if letters is not None else None


def _record_keywords(state: IndexFile, ext, rec) -> frozenset:
    bits = ext.record_value(rec.data) or b""
    return frozenset(name for i, name in enumerate(state.keywords)
                     if i // 8 < len(bits) and bits[i // 8] >> (i % 8) & 1)
