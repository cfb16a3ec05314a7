"""Rich rendering of ``dump`` documents, in the sections ``doveadm dump`` prints."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

TIME_FIELDS = {
    "indexid",
    "uid_validity",
    "log2_rotate_time",
    "last_temp_file_scan",
    "day_stamp",
    "create_stamp",
    "file_seq_time",
}


def _when(value: int) -> str:
    if not value or value == 0xFFFFFFFF:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))


def _kv_table(values: dict[str, object], times: set[str] = TIME_FIELDS) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="cyan")
    table.add_column()
    for key, value in values.items():
        text = escape(str(value))
        if key in times and isinstance(value, int) and _when(value):
            text += f" [dim]({_when(value)} UTC)[/dim]"
        table.add_row(escape(key), text)
    return table


def render(doc: dict[str, object], console: Console) -> None:
    kind = doc.get("kind")
    renderer = {
        "index": _index,
        "log": _log,
        "cache": _cache_only,
        "uidlist": _uidlist,
        "maildir-keywords": _keywords_file,
        "dbox": _dbox,
    }.get(str(kind), _generic)
    renderer(doc, console)
    _problems(doc, console)


def _problems(doc: dict[str, object], console: Console) -> None:
    for p in doc.get("problems") or []:
        where = ", ".join(
            str(x) for x in (p.get("file"), p.get("offset"), p.get("field")) if x is not None
        )
        console.print(f"[bold red]problem:[/] {escape(where)}: {escape(str(p.get('reason')))}")


def _index(doc: dict[str, object], console: Console) -> None:
    if doc.get("missing"):
        console.print(f"[bold red]no index files at[/] {escape(str(doc['path']))}")
        return
    title = "INDEX (log replayed)" if doc.get("replayed") else "INDEX"
    console.rule(f"{title}: {escape(str(doc['path']))}")
    console.print(_kv_table(doc["header"]))
    replay = doc.get("replay")
    if replay:
        console.print(
            f"replay: {replay['records_applied']} log records from "
            f"seq {replay['start']['file_seq']} offset {replay['start']['offset']} to "
            f"seq {replay['end']['file_seq']} offset {replay['end']['offset']}"
            + (" [yellow](reset log)[/]" if replay["reset"] else "")
            + (f" [bold red]lost: {escape(replay['lost'])}[/]" if replay["lost"] else "")
        )
        for issue in replay["issues"]:
            console.print(
                f"[bold red]replay issue[/] {escape(str(issue['file']))} offset "
                f"{issue['offset']}: {escape(issue['reason'])}"
            )
    _extensions(doc["extensions"], console)
    console.rule("Keywords")
    for i, name in enumerate(doc["keywords"]):
        console.print(f"{i:3} = {escape(name)}")
    if doc.get("cache"):
        _cache(doc["cache"], console)
    console.rule(f"RECORDS: {len(doc['records'])}")
    for rec in doc["records"]:
        _record(rec, console)


def _extensions(exts: list[dict[str, object]], console: Console) -> None:
    if not exts:
        console.print("no extensions")
    for i, ext in enumerate(exts):
        console.rule(f"Extension {i}: {escape(str(ext['name']))}", style="dim")
        values = {k: ext[k] for k in ("hdr_size", "reset_id", "record_offset")}
        values.update({k: ext[k] for k in ("record_size", "record_align")})
        if "header" in ext:
            values.update({f"header.{k}": v for k, v in ext["header"].items()})
        elif ext["hdr_size"] and ext["name"] != "keywords":
            values["header"] = ext["header_hex"]
        console.print(_kv_table(values))


def _cache(cache: dict[str, object], console: Console) -> None:
    console.rule(f"CACHE: {escape(str(cache['path']))}")
    console.print(_kv_table(cache["header"]))
    table = Table(title="Cache fields", box=None)
    for col in ("#", "Name", "Type", "Size", "Dec", "Last used"):
        table.add_column(col)
    for f in cache["fields"]:
        size = "-" if f["size"] is None else str(f["size"])
        table.add_row(
            str(f["index"]),
            escape(f["name"]),
            f["type"],
            size,
            f["decision"],
            _when(f["last_used"]),
        )
    console.print(table)


def _record(rec: dict[str, object], console: Console) -> None:
    flags = " ".join(rec["flag_names"])
    console.print(
        f"[bold]RECORD[/]: seq={rec['seq']}, uid={rec['uid']}, flags=0x{rec['flags']:02x} {flags}"
    )
    for name, value in rec["extensions"].items():
        console.print(f" - ext {escape(name)}: {escape(str(value['value']))} ({value['hex']})")
    cache = rec.get("cache")
    if not cache:
        return
    if cache["stale"]:
        console.print(f" - cache offset={cache['offset']} (stale: cache file was replaced)")
    for crec in cache["records"]:
        console.print(
            f" - cache offset={crec['offset']} size={crec['size']}, "
            f"prev_offset = {crec['prev_offset']}"
        )
        for f in crec["fields"]:
            console.print(f"    - {escape(f['name'])}: {escape(_cache_text(f))}")
    if cache["error"]:
        console.print(f" - [bold red]broken cache[/]: {escape(cache['error']['reason'])}")


def _cache_text(field: dict[str, object]) -> str:
    value = field["value"]
    if isinstance(value, dict) and "children" in value:
        return mime_parts_text(value)
    if isinstance(value, dict) and "lines" in value:
        text = value["text"] or ""
        return f"{','.join(map(str, value['lines']))}: {text.rstrip()}"
    return str(value)


def mime_parts_text(part: dict[str, object]) -> str:
    """A MIME tree the way ``doveadm dump`` prints it: each part in parentheses, its
    children after it, flags in hex."""
    children = "".join(mime_parts_text(child) for child in part["children"])
    return (
        f"(pos={part['pos']} hdr.p={part['hdr_physical']} hdr.v={part['hdr_virtual']} "
        f"body.p={part['body_physical']} body.v={part['body_virtual']} "
        f"flags={part['flags']:x}{' ' + children if children else ''})"
    )


def _cache_only(doc: dict[str, object], console: Console) -> None:
    _cache(doc, console)


def _log(doc: dict[str, object], console: Console) -> None:
    console.rule(f"LOG: {escape(str(doc['path']))}")
    console.print(_kv_table(doc["header"]))
    for rec in doc["records"]:
        flags = (" (ext)" if rec["external"] else "") + (" (sync)" if rec["sync"] else "")
        console.print(
            f"[bold]record[/]: offset={rec['offset']}, type={escape(rec['type'])}{flags}, "
            f"size={rec['size']}, modseq={rec['modseq']}"
        )
        for line in _payload_lines(rec):
            console.print(f" - {escape(line)}")
        if "error" in rec:
            console.print(f" - [bold red]broken:[/] {escape(rec['error']['reason'])}")
    console.print(
        f"valid data ends at {doc['valid_end']} ({doc['end_reason']}); "
        f"{doc['trailing_bytes']} bytes after it"
    )


def _ranges(pairs: list[list[int]]) -> str:
    return ",".join(f"{a}-{b}" for a, b in pairs)


def _payload_lines(rec: dict[str, object]) -> list[str]:
    """One line per payload item, in the words ``doveadm dump -t log`` uses."""
    if "error" in rec:
        return [f"payload: {rec.get('payload_hex', '')}"]
    try:
        return _decoded_lines(rec)
    except (KeyError, TypeError, ValueError):
        return [f"{k} = {v}" for k, v in rec.items() if k not in LOG_RECORD_KEYS]


LOG_RECORD_KEYS = {"offset", "type", "type_raw", "external", "sync", "size", "modseq"}


def _decoded_lines(rec: dict[str, object]) -> list[str]:
    kind = rec["type"]
    if kind == "append":
        return [
            "uids="
            + ",".join(
                f"{u['uid']}" + (f" (flags={u['flags']:x})" if u["flags"] else "")
                for u in rec["uids"]
            )
        ]
    if kind in ("expunge", "keyword-reset"):
        return [f"uids={_ranges(rec['uids'])}"]
    if kind == "expunge-guid":
        return [f"uid={u['uid']} (guid {u['guid']})" for u in rec["uids"]]
    if kind == "flag-update":
        return [
            f"uids={u['uid1']}-{u['uid2']} (flags +{u['add_flags']:x}-{u['remove_flags']:x}, "
            f"modseq_inc_flag={u['modseq_inc_flag']})"
            for u in rec["updates"]
        ]
    if kind == "header-update":
        return [_header_update_line(u) for u in rec["updates"]]
    if kind == "ext-intro":
        return [", ".join(f"{k} = {v}" for k, v in i.items()) for i in rec["intros"]]
    if kind == "keyword-update":
        return [f"modify={rec['modify']}, name={rec['name']}, uids={_ranges(rec['uids'])}"]
    if kind == "boundary":
        return [f"size={rec['boundary_size']}"]
    if kind == "ext-reset":
        return [f"new_reset_id = {rec['new_reset_id']}, preserve_data = {rec['preserve_data']}"]
    items = rec.get("updates") or []
    return [", ".join(f"{k}={v}" for k, v in item.items()) for item in items]


def _header_update_line(update: dict[str, object]) -> str:
    fields = update.get("fields")
    if fields:
        return ", ".join(f"{f['name']} = {f['value']}" for f in fields)
    return f"offset = {update['offset']}, size = {update['size']}: {update['hex']}"


def _uidlist(doc: dict[str, object], console: Console) -> None:
    console.rule(f"UIDLIST: {escape(str(doc['path']))}")
    head = {k: doc[k] for k in ("version", "uid_validity", "next_uid", "guid")}
    console.print(_kv_table(head))
    for rec in doc["records"]:
        console.print(f"{rec['uid']:>8} {escape(rec['filename'])} {escape(str(rec['extensions']))}")


def _keywords_file(doc: dict[str, object], console: Console) -> None:
    console.rule(f"MAILDIR KEYWORDS: {escape(str(doc['path']))}")
    for kw in doc["keywords"]:
        console.print(f"{kw['index']:3} {kw['letter']} = {escape(kw['name'])}")


def _dbox(doc: dict[str, object], console: Console) -> None:
    console.rule(f"DBOX: {escape(str(doc['path']))}")
    head = {k: doc[k] for k in ("version", "msg_header_size", "create_stamp", "size")}
    console.print(_kv_table(head))
    for msg in doc["messages"]:
        console.print(
            f"offset {msg['offset']}: size={msg['size']} guid={escape(str(msg['guid']))} "
            f"{escape(str(msg['metadata']))}"
        )


def _generic(doc: dict[str, object], console: Console) -> None:
    console.print(doc)
