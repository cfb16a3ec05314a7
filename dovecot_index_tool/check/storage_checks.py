"""The mail storage against its index: maildir files and uidlist, sdbox u.N files,
mdbox map and m.N files, and the mailbox list index."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import replace
from difflib import SequenceMatcher
from pathlib import Path

from dovecot_index_tool.check.data import MailboxData, UserData, read_at
from dovecot_index_tool.check.findings import Finding, from_error, in_all
from dovecot_index_tool.check.index_checks import effective_state, logs_read_whole
from dovecot_index_tool.check.maildir_flags import flags_differ_from_names
from dovecot_index_tool.format import log as L
from dovecot_index_tool.format.binary import layout
from dovecot_index_tool.format.dbox import MAGIC_PRE, check_file_head
from dovecot_index_tool.format.extensions import decode_list_header
from dovecot_index_tool.format.index import HEADER_OFFSETS, IndexFile, extension_problem

SAME_KIND_REPORTED = 3


def _capped(items: list, describe) -> list[Finding]:
    """The first few places of one kind of damage, with the total in the message."""
    out = []
    for item in items[:SAME_KIND_REPORTED]:
        finding = describe(item)
        if len(items) > 1:
            finding = replace(finding, message=f"{finding.message} ({len(items)} in all)")
        out.append(finding)
    return out


# maildir --------------------------------------------------------------------------------
def check_maildir(data: MailboxData, listed_validity: int | None = None) -> list[Finding]:
    out: list[Finding] = []
    if data.uidlist_error is not None:
        out.append(from_error("uidlist.unusable", data.uidlist_error))
        return out
    uidlist = data.uidlist
    if uidlist is not None:
        out += [from_error("uidlist.record-invalid", p) for p in uidlist.problems[:3]]
        out += _duplicate_files(uidlist)
    if data.maildir_keywords is not None:
        out += [from_error("maildir.keywords-invalid", p) for p in data.maildir_keywords.problems]
    state = effective_state(data.index)
    if uidlist is None and state is not None and len(state.records) and data.uidlist_path:
        out.append(Finding(
            "maildir.uidlist-missing",
            data.uidlist_path,
            f"the index records {len(state.records)} message(s), but dovecot-uidlist is "
            "gone: Dovecot gives every message a new UID",
            field="file",
            expected="present",
            found="missing",
        ))
    if uidlist is None or state is None:
        return out
    out += _uidvalidity(data, state, listed_validity)
    out += _uids(data, state)
    if data.mail_files is not None and logs_read_whole(data.index):
        # (a log that could not be read whole holds changes the names already have)
        on_disk = data.index.files.index
        # keywords only from an index whose extensions Dovecot takes as they are (a broken
        # keywords header is its own finding, and changes what the records mean)
        trusted = on_disk is not None and not on_disk.problems and not any(
            extension_problem(e, on_disk.header.record_size) for e in on_disk.extensions)
        out += flags_differ_from_names(state, on_disk, uidlist, data.mail_files,
                                       data.maildir_keywords if trusted else None)
    return out


def _duplicate_files(uidlist) -> list[Finding]:
    first: dict[str, int] = {}
    dupes = []
    for rec in uidlist.records:
        if rec.filename in first and first[rec.filename] != rec.uid:
            dupes.append(rec)
        first.setdefault(rec.filename, rec.uid)
    return _capped(
        dupes,
        lambda r: Finding(
            "uidlist.duplicate-file",
            uidlist.path,
            f"{r.filename} is listed with uid {first[r.filename]} and uid {r.uid}",
            offset=r.offset,
            field=f"line {r.line}",
            found=r.uid,
        ),
    )


def _uidvalidity(data: MailboxData, state: IndexFile, listed: int | None) -> list[Finding]:
    """The uidlist and the index disagree: the list index, a third file, names the odd
    one out; without it the uidlist is named (Dovecot takes the index's side)."""
    ul = data.uidlist
    index_value = state.header.uid_validity
    if not index_value or not ul.uid_validity or index_value == ul.uid_validity:
        return []
    message = f"dovecot-uidlist has UIDVALIDITY {ul.uid_validity}, dovecot.index has {index_value}"
    if listed == ul.uid_validity:
        return [Finding(
            "maildir.uidvalidity-mismatch",
            data.index.files.index.path if data.index.files.index else data.index.path,
            f"{message}; the list index agrees with dovecot-uidlist",
            offset=HEADER_OFFSETS["uid_validity"][0],
            field="header.uid_validity",
            expected=ul.uid_validity,
            found=index_value,
        )]
    return [
        Finding(
            "maildir.uidvalidity-mismatch",
            ul.path,
            message + ("; the list index agrees with dovecot.index" if listed else ""),
            offset=0,
            field="header.V",
            expected=index_value,
            found=ul.uid_validity,
        )
    ]


def _misnamed(gone: list, mail_files: tuple[str, ...], listed: set[str]) -> dict[int, str]:
    """UIDs whose listed name is not on disk, paired with a file in cur/ the uidlist does
    not list, closest name first (as ``cur/NAME`` or ``new/NAME``). Dovecot lists a file
    before it moves it to cur/, so an unlisted file there means the uidlist lost its
    line: the damage is in the uidlist. new/ may hold mail not listed yet, so a file
    there pairs only when the listed name is its own, damaged (``_one_byte_off``)."""
    unlisted = {
        base
        for name in mail_files
        if name.startswith("cur/")
        and (base := name.split("/", 1)[1].split(":", 1)[0]) not in listed
    }
    fresh = {  # new/ may hold mail not listed yet; only a name one byte off is this one
        base
        for name in mail_files
        if name.startswith("new/")
        and (base := name.split("/", 1)[1].split(":", 1)[0]) not in listed
    }
    pairs: dict[int, str] = {}
    for record in gone:
        near = sorted(n for n in fresh if _one_byte_off(n, record.filename))
        if near:
            pairs[record.uid] = f"new/{near[0]}"
            fresh.discard(near[0])
            continue
        if not unlisted:
            continue
        best = max(sorted(unlisted),
                   key=lambda n: SequenceMatcher(None, n, record.filename).ratio())
        pairs[record.uid] = f"cur/{best}"
        unlisted.discard(best)
    return pairs


def _one_byte_off(a: str, b: str) -> bool:
    """``b`` (the listed name) is ``a`` with one byte changed, cut short, nearly all of
    it (90 %), or its start followed by bytes no maildir name holds: what a damaged line
    leaves, not another message's name."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    if not b or a.startswith(b) or SequenceMatcher(None, a, b).ratio() >= 0.9:
        return bool(b)
    # the same delivery (time, then M and the microseconds) before bytes no maildir
    # name holds: the rest of the line was overwritten
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                  min(len(a), len(b)))
    return shared >= 16 and not b.isprintable()


def _uids(data: MailboxData, state: IndexFile) -> list[Finding]:
    ul = data.uidlist
    by_uid = {r.uid: r for r in ul.records}
    index_uids = [u for u, _ in state.records.uids_and_flags()]
    index_set = set(index_uids)
    out = []
    missing = [u for u in index_uids if u not in by_uid]
    out += _capped(
        missing,
        lambda u: Finding(
            "maildir.index-uid-not-in-uidlist",
            ul.path,
            f"uid {u} is in the index but not here",
            field="records",
            expected=f"uid {u}",
        ),
    )
    if data.mail_files is None:
        return out
    on_disk = {name.split("/", 1)[1].split(":", 1)[0] for name in data.mail_files}
    next_uid = state.header.next_uid
    lost = [
        r
        for r in ul.records
        if r.uid < next_uid and r.uid not in index_set and r.filename in on_disk
    ]
    out += _capped(
        lost,
        lambda r: Finding(
            "maildir.message-lost-from-index",
            state.path or data.index.path,
            f"{r.filename} (uid {r.uid} in dovecot-uidlist) is on disk but not in the index",
            field="records",
            expected=f"uid {r.uid}",
        ),
    )
    gone = [by_uid[u] for u in index_uids if u in by_uid and by_uid[u].filename not in on_disk]
    misnamed = _misnamed(gone, data.mail_files, {r.filename for r in ul.records})
    out += _capped(
        [(r, misnamed[r.uid]) for r in gone if r.uid in misnamed],
        lambda pair: Finding(
            "uidlist.filename-wrong",
            ul.path,
            f"uid {pair[0].uid} is listed as {pair[0].filename}, which is not on disk, "
            f"while {pair[1]} is not listed",
            offset=pair[0].offset,
            field=f"line {pair[0].line}",
            expected=pair[1].split("/", 1)[1],
            found=pair[0].filename,
        ),
    )
    gone = [r for r in gone if r.uid not in misnamed]
    out += _capped(
        gone,
        lambda r: Finding(
            "maildir.mail-file-missing",
            str(data.mail_dir),
            f"uid {r.uid} ({r.filename}) is in the index but not in cur/ or new/",
            field="cur",
            expected=r.filename,
        ),
    )
    stale = [r for r in ul.records if r.uid not in index_set and r.filename not in on_disk]
    out += _capped(
        stale,
        lambda r: Finding(
            "maildir.uidlist-file-missing",
            ul.path,
            f"uid {r.uid}: {r.filename} is not on disk",
            offset=r.offset,
            field=f"line {r.line}",
            found=r.filename,
        ),
    )
    return out


# sdbox ----------------------------------------------------------------------------------
def check_sdbox(data: MailboxData) -> list[Finding]:
    state = effective_state(data.index)
    if state is None:
        return []
    out = []
    ext = state.extension("dbox-hdr")
    if ext is None or len(ext.data) < 20 or not any(ext.data[4:20]):
        out.append(
            Finding(
                "sdbox.mailbox-guid-missing",
                data.index.path,
                "the dbox-hdr extension has no mailbox GUID",
                offset=ext.data_offset + 4 if ext else None,
                field="dbox-hdr.mailbox_guid",
                expected="non-zero GUID",
                found=ext.data[4:20].hex() if ext else None,
            )
        )
    if data.mail_files is None:
        return out
    out += dbox_file_heads(str(data.mail_dir), data.file_heads)
    files = {int(n[2:]) for n in data.mail_files}
    uids = [u for u, _ in state.records.uids_and_flags()]
    known = set(uids)
    mail_dir = str(data.mail_dir)
    missing = [u for u in uids if u not in files]
    extra = sorted(u for u in files if u not in known)
    changed = _changed_append(data.index.files, missing, extra)
    if changed is not None:
        return [*out, changed]
    out += _capped(
        missing,
        lambda u: Finding(
            "sdbox.mail-file-missing",
            str(Path(mail_dir) / f"u.{u}"),
            f"uid {u} is in the index but u.{u} is missing",
            expected=f"u.{u}",
        ),
    )
    out += _unlogged_files(data.index, state, extra)
    out += _capped(
        extra,
        lambda u: Finding(
            "sdbox.mail-file-not-in-index",
            str(Path(mail_dir) / f"u.{u}"),
            f"u.{u} is on disk but uid {u} is not in the index",
            found=f"u.{u}",
        ),
    )
    return out


def _unlogged_files(index, state: IndexFile, extra: list[int]) -> list[Finding]:
    """Mail files with a UID the index has not given out yet and no log record appends:
    Dovecot logs the append right after it writes u.N, so the log lost its end (or a
    save stopped between the two)."""
    files = index.files
    if not files.logs or files.index is None:
        return []
    ahead = [u for u in extra if u >= files.index.header.next_uid]
    if not ahead:
        return []
    head = files.logs[-1]
    return [Finding(
        "log.append-missing",
        head.path,
        f"u.{ahead[0]} is on disk with a UID at or above the index's next_uid "
        f"({files.index.header.next_uid}), and no log record appends it: the log lost its "
        f"end, or a save stopped after writing the file"
        + in_all(ahead, "files"),
        offset=head.size,
        field="records",
        expected=f"an append of uid {ahead[0]}",
    )]


def _changed_append(files, missing: list[int], extra: list[int]) -> Finding | None:
    """One UID the state has without its u.N file, one u.N file the state lacks, and the
    first appended by a log record after the index was written: the log record's UID is
    what changed (Dovecot writes u.N, then logs its append)."""
    if len(missing) != 1 or len(extra) != 1 or files.index is None:
        return None
    (uid,), (on_disk,) = missing, extra
    if any(r.uid == uid for r in files.index.records):
        return None
    for log in reversed(files.logs):
        for rec in log.records:
            if rec.base_code == L.APPEND and rec.error is None and any(
                    item.uid == uid for item in rec.items):
                return Finding(
                    "log.append-uid-wrong",
                    log.path,
                    f"the log appends uid {uid}, whose u.{uid} is not there, while u.{on_disk}"
                    f", which nothing lists, is: the append's UID was changed",
                    offset=rec.offset + L.RECORD_HEADER_SIZE,
                    field=f"record@{rec.offset}.uid",
                    expected=on_disk,
                    found=uid,
                )
    return None


def dbox_file_heads(directory: str, heads: dict[str, bytes]) -> list[Finding]:
    """Every dbox mail file must start with a valid ``2 M<hex> C<hex>`` header line."""
    bad = []
    for name, head in sorted(heads.items()):
        path = os.path.join(directory, name)
        problem = check_file_head(head, path)
        if problem is not None:
            bad.append((path, problem))
    return _capped(
        bad,
        lambda b: from_error("dbox.file-invalid", b[1], f"{os.path.basename(b[0])}: {b[1].reason}"),
    )


# mdbox ----------------------------------------------------------------------------------
def mdbox_references(data: MailboxData) -> tuple[int | None, list[int]]:
    """A mailbox's map_uid_validity and the map_uids its records point to."""
    state = effective_state(data.index)
    if state is None:
        return None, []
    hdr = state.extension("mdbox-hdr")
    validity = (
        layout(state.byteorder, "I").unpack_from(hdr.data, 0)[0]
        if hdr and len(hdr.data) >= 4
        else None
    )
    ext = state.extension("mdbox")
    if ext is None:
        return validity, []
    u32 = layout(state.byteorder, "I")
    refs = []
    for rec in state.records:
        raw = ext.record_value(rec.data)
        if raw is not None and len(raw) >= 4:
            refs.append(u32.unpack_from(raw, 0)[0])
    return validity, refs


def check_mdbox_mailbox(data: MailboxData, user: UserData) -> list[Finding]:
    """One mailbox's references into the map."""
    map_state = effective_state(user.map_index) if user.map_index else None
    if map_state is None:
        return []
    validity, refs = mdbox_references(data)
    out = []
    if validity is not None and validity != map_state.header.uid_validity:
        out.append(
            Finding(
                "mdbox.map-uidvalidity-mismatch",
                data.index.path,
                f"map uidvalidity mismatch ({validity} vs {map_state.header.uid_validity})",
                field="mdbox-hdr.map_uid_validity",
                expected=map_state.header.uid_validity,
                found=validity,
            )
        )
        return out
    map_uids = {u for u, _ in map_state.records.uids_and_flags()}
    lost = [u for u in refs if u not in map_uids]
    out += _capped(
        lost,
        lambda u: Finding(
            "mdbox.map-uid-lost",
            data.index.path,
            f"map uid {u} is not in dovecot.map.index",
            field="mdbox.map_uid",
            found=u,
        ),
    )
    return out


def check_mdbox_map(user: UserData, references: Counter | None) -> list[Finding]:
    """The map itself, its refcounts (when all mailboxes were read) and the m.N files."""
    if user.map_index is None:
        return []
    state = effective_state(user.map_index)
    path = user.map_index.path
    if state is None:
        return [Finding("mdbox.map-missing", path, "dovecot.map.index cannot be read")]
    map_ext, ref_ext = state.extension("map"), state.extension("ref")
    if map_ext is None or ref_ext is None:
        return [
            Finding(
                "mdbox.map-invalid",
                path,
                "missing map or ref extension",
                field="extensions",
                expected="map, ref",
            )
        ]
    u16, entry = layout(state.byteorder, "H"), layout(state.byteorder, "III")
    entries = []
    for rec in state.records:
        file_id, offset, size = entry.unpack_from(rec.data, map_ext.record_offset)
        (refcount,) = u16.unpack_from(rec.data, ref_ext.record_offset)
        entries.append((rec, file_id, offset, size, refcount))
    out = _map_entries(path, entries, user)
    heads = {Path(f.path).name: f.head for f in user.storage_files.values()}
    if user.storage_dir is not None:
        out += dbox_file_heads(str(user.storage_dir), heads)
    if references is not None:
        out += _refcounts(path, entries, references)
    return out


def _map_entries(path: str, entries: list, user: UserData) -> list[Finding]:
    zero = [e for e in entries if e[1] == 0]
    out = _capped(
        zero,
        lambda e: Finding(
            "mdbox.map-invalid",
            path,
            f"file_id=0 for map_uid={e[0].uid}",
            offset=e[0].offset,
            field=f"records[{e[0].seq}].map.file_id",
            found=0,
        ),
    )
    missing, bad = [], []
    by_file: dict[int, list] = {}
    for e in entries:
        if e[1] and e[1] not in user.storage_files:
            missing.append(e)
        elif e[1]:
            by_file.setdefault(e[1], []).append(e)
    for file_id, group in by_file.items():
        sf = user.storage_files[file_id]
        try:
            heads = read_at(sf.path, [e[2] for e in group])
        except OSError:
            heads = {}
        for e in group:
            if e[2] + e[3] > sf.size or heads.get(e[2]) != MAGIC_PRE:
                bad.append((e, sf))
    out += _capped(
        missing,
        lambda e: Finding(
            "mdbox.map-file-missing",
            path,
            f"map_uid {e[0].uid} is in m.{e[1]}, which is missing",
            offset=e[0].offset,
            field=f"records[{e[0].seq}].map.file_id",
            found=e[1],
        ),
    )
    out += _capped(
        bad,
        lambda b: Finding(
            "mdbox.map-offset-invalid",
            b[1].path,
            f"map_uid {b[0][0].uid}: no message at offset {b[0][2]} (size {b[0][3]}, file size "
            f"{b[1].size})",
            offset=b[0][2],
            field="message header",
            expected="\\x01\\x02",
        ),
    )
    return out


def _refcounts(path: str, entries: list, references: Counter) -> list[Finding]:
    """Each map entry's refcount against the mailbox records that point to it."""
    out: list[Finding] = []
    for check, wrong in (
        ("mdbox.refcount-too-low", lambda refs, count: refs > count),
        ("mdbox.refcount-too-high", lambda refs, count: refs < count),
    ):
        bad = [(e, references[e[0].uid]) for e in entries if wrong(references[e[0].uid], e[4])]
        out += _capped(
            bad,
            lambda x, check=check: Finding(
                check,
                path,
                f"map_uid {x[0][0].uid} refcount {x[0][4]} but {x[1]} references",
                offset=x[0][0].offset,
                field=f"records[{x[0][0].seq}].ref",
                expected=x[1],
                found=x[0][4],
            ),
        )
    return out


# list index -----------------------------------------------------------------------------
def check_list_index(user: UserData, mailboxes: set[str] | None = None) -> list[Finding]:
    """The name tree and records; with ``mailboxes`` (all of the user's, found on disk),
    also the mailboxes the list index does not know."""
    state = effective_state(user.list_index) if user.list_index is not None else None
    if state is None:
        return []
    path = user.list_index.path
    ext = state.extension("list")
    if ext is None:
        return []
    names = decode_list_header(ext.data, state.byteorder)
    if names["broken"] or not _ids_increasing(names["names"]):
        return [
            Finding(
                "list.header-invalid",
                path,
                "Corrupted mailbox list index header",
                offset=ext.data_offset,
                field="list.names",
            )
        ]
    out = _list_records(state, path, ext, names["names"])
    if mailboxes is not None and not out:
        out += _unlisted(state, path, ext, names["names"], mailboxes)
    return out


NONEXISTENT, NOSELECT = 0x04, 0x10


def _unlisted(
    state: IndexFile, path: str, ext, names: dict[int, str], mailboxes: set[str]
) -> list[Finding]:
    """Mailboxes on disk that the list index does not list: LIST does not show them."""
    rec_layout = layout(state.byteorder, "II")
    nodes = {}
    for rec in state.records:
        raw = ext.record_value(rec.data)
        if raw is not None and len(raw) >= 8:
            name_id, parent = rec_layout.unpack_from(raw, 0)
            nodes[rec.uid] = (parent, names.get(name_id, ""), rec.flags)
    listed = set()
    for uid, (_, _, flags) in nodes.items():
        if flags & (NONEXISTENT | NOSELECT):
            continue
        parts, node, hops = [], uid, 0
        while node and node in nodes and hops < len(nodes):
            parts.append(nodes[node][1])
            node, hops = nodes[node][0], hops + 1
        listed.add("/".join(reversed(parts)))
    missing = sorted(mailboxes - listed)
    return _capped(
        missing,
        lambda name: Finding(
            "list.mailbox-missing",
            path,
            f"mailbox {name!r} is on disk but not in the list index",
            field="list",
            expected=name,
        ),
    )


def _ids_increasing(names: dict[int, str]) -> bool:
    ids = list(names)
    return all(a < b for a, b in itertools.pairwise(ids))


def _list_records(state: IndexFile, path: str, ext, names: dict[int, str]) -> list[Finding]:
    rec_layout = layout(state.byteorder, "II16sI")
    nodes = {}
    out = []
    for rec in state.records:
        raw = ext.record_value(rec.data)
        if raw is None or len(raw) < 28:
            out.append(_list_bad(path, rec, "Missing list extension data"))
            continue
        name_id, parent, _guid, _validity = rec_layout.unpack_from(raw, 0)
        if name_id not in names:
            out.append(_list_bad(path, rec, f"name_id={name_id} not in index header"))
        nodes[rec.uid] = (parent, names.get(name_id))
    seen_names: set[tuple[int, str | None]] = set()
    for uid, (parent, name) in nodes.items():
        rec = next(r for r in state.records if r.uid == uid)
        if parent and parent not in nodes:
            out.append(_list_bad(path, rec, f"parent_uid={parent} points to nonexistent record"))
        elif _loops(uid, nodes):
            out.append(_list_bad(path, rec, f"parent_uid={parent} loops to node itself"))
        if (parent, name) in seen_names:
            out.append(_list_bad(path, rec, f"Duplicate mailbox '{name}' in index"))
        seen_names.add((parent, name))
    return out[: SAME_KIND_REPORTED * 2]


def _loops(uid: int, nodes: dict) -> bool:
    seen = {uid}
    parent = nodes[uid][0]
    while parent:
        if parent in seen or parent not in nodes:
            return parent in seen
        seen.add(parent)
        parent = nodes[parent][0]
    return False


def _list_bad(path: str, rec, reason: str) -> Finding:
    return Finding(
        "list.record-invalid",
        path,
        f"Corrupted mailbox list index: {reason}",
        offset=rec.offset,
        field=f"records[{rec.seq}].list",
        found=rec.uid,
    )
