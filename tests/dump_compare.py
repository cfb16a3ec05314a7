"""Compare our ``dump --json`` documents with what ``doveadm dump`` printed.

``doveadm_dump`` turns Dovecot's text into data; this module walks both side by
side and records every value compared and every difference, so a test can
assert there is none and a script can say how much was compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from doveadm_dump import unixdate2str
from dovecot_index_tool.present.dump_view import mime_parts_text

INDEX_HEADER_FIELDS = (
    "major_version", "minor_version", "base_header_size", "header_size", "record_size",
    "compat_flags", "indexid", "flags", "uid_validity", "next_uid", "messages_count",
    "seen_messages_count", "deleted_messages_count", "first_recent_uid",
    "first_unseen_uid_lowwater", "first_deleted_uid_lowwater", "log_file_seq",
    "log_file_tail_offset", "log_file_head_offset", "log2_rotate_time", "last_temp_file_scan",
    "day_stamp", "day_first_uid",
)  # fmt: skip
EXT_FIELDS = ("name", "hdr_size", "reset_id", "record_offset", "record_size", "record_align")
CACHE_HEADER_MAP = {
    "major_version": "major_version",
    "minor_version": "minor_version",
    "indexid": "indexid",
    "file_seq": "file_seq",
    "continued_record_count": "continued_record_count",
    "record_count": "record_count",
    "used_file_size_old": "backwards_compat_used_file_size",
    "deleted_record_count": "deleted_record_count",
    "field_header_offset": "field_header_offset",
}
LOG_HEADER_FIELDS = (
    "major_version", "minor_version", "hdr_size", "indexid", "file_seq", "prev_file_seq",
    "prev_file_offset", "create_stamp", "initial_modseq", "compat_flags",
)  # fmt: skip
DATE_KEYS = {"new_check_time", "new_mtime", "cur_check_time", "cur_mtime", "uidlist_mtime",
             "sync_mtime"}  # fmt: skip


@dataclass
class Comparison:
    """Running totals: values compared and the differences found."""

    values: int = 0
    files: int = 0
    differences: list[str] = field(default_factory=list)

    def eq(self, where: str, ours: Any, theirs: Any) -> None:
        self.values += 1
        if ours != theirs:
            self.differences.append(f"{where}: ours={ours!r} doveadm={theirs!r}")


def compare_index(ours: dict, theirs: dict, cmp: Comparison, where: str) -> None:
    cmp.files += 1
    for key in INDEX_HEADER_FIELDS:
        cmp.eq(f"{where} header.{key}", ours["header"][key], theirs["header"][key])
    cmp.eq(f"{where} extension count", len(ours["extensions"]), len(theirs["extensions"]))
    for i, (mine, dove) in enumerate(zip(ours["extensions"], theirs["extensions"], strict=False)):
        _compare_extension(mine, dove, cmp, f"{where} ext[{i}]")
    cmp.eq(f"{where} keywords", ours["keywords"], theirs["keywords"])
    _compare_cache(ours.get("cache"), theirs["cache"], cmp, where)
    cmp.eq(f"{where} record count", len(ours["records"]), len(theirs["records"]))
    cache_fields = _field_types(ours.get("cache"))
    for mine, dove in zip(ours["records"], theirs["records"], strict=False):
        _compare_record(mine, dove, cmp, f"{where} uid={dove['uid']}", cache_fields)


def _compare_extension(mine: dict, dove: dict, cmp: Comparison, where: str) -> None:
    for key in EXT_FIELDS:
        cmp.eq(f"{where}.{key}", mine[key], dove[key])
    header = dove.get("header")
    if not header:
        return
    if "hex" in header:
        cmp.eq(f"{where}.header", mine["header_hex"], header["hex"])
    decoded = mine.get("header") or {}
    if "list" in header:
        names = {int(k): v for k, v in decoded.get("names", {}).items()}
        cmp.eq(f"{where}.list.names", names, header["list"]["names"])
        cmp.eq(f"{where}.list.refresh", decoded.get("refresh_flag"), header["list"]["refresh_flag"])
    if "box_name" in header:
        cmp.eq(f"{where}.box-name", decoded.get("name_parts"), header["box_name"])
    for key, value in header.items():
        if key in {"hex", "list", "box_name", "mailboxes"}:
            continue
        mine_value = decoded.get(key)
        if key in DATE_KEYS and isinstance(mine_value, int):
            mine_value = unixdate2str(mine_value, UTC)
        cmp.eq(f"{where}.header.{key}", mine_value, value)


def _compare_cache(mine: dict | None, dove: Any, cmp: Comparison, where: str) -> None:
    if dove == "unusable" or dove is None:
        cmp.eq(f"{where} cache", mine, None)
        return
    if mine is None:
        cmp.eq(f"{where} cache", None, "present")
        return
    for theirs_key, our_key in CACHE_HEADER_MAP.items():
        cmp.eq(f"{where} cache.{theirs_key}", mine["header"][our_key], dove["header"][theirs_key])
    cmp.eq(f"{where} cache field count", len(mine["fields"]), len(dove["fields"]))
    for a, b in zip(mine["fields"], dove["fields"], strict=False):
        for key in ("index", "name", "type", "size"):
            cmp.eq(f"{where} cache field {b['name']}.{key}", a[key], b[key])
        cmp.eq(f"{where} cache field {b['name']}.decision", a["decision"].rstrip("!"),
               b["decision"])  # fmt: skip
        cmp.eq(f"{where} cache field {b['name']}.last_used",
               unixdate2str(a["last_used"], UTC)[:16], b["last_used"])  # fmt: skip


def _field_types(cache: dict | None) -> dict[str, str]:
    return {f["name"]: f["type"] for f in (cache or {}).get("fields", [])}


def _compare_record(mine: dict, dove: dict, cmp: Comparison, where: str, types: dict) -> None:
    for key in ("seq", "uid", "flags"):
        cmp.eq(f"{where}.{key}", mine[key], dove[key])
    cmp.eq(f"{where} ext names", sorted(mine["extensions"]), sorted(dove["ext"]))
    for name, value in dove["ext"].items():
        ours = mine["extensions"].get(name)
        if ours is None:
            continue
        # doveadm prints with the size the extension had when the index was opened
        cmp.eq(f"{where} ext {name}.hex", ours["hex"][: len(value["hex"])], value["hex"])
        if value["value"] is not None:
            cmp.eq(f"{where} ext {name}.value", ours["value"], value["value"])
        for key, sub in value.items():
            if key in {"ext_index", "value", "hex"}:
                continue
            cmp.eq(f"{where} ext {name}.{key}", (ours["value"] or {}).get(key), sub)
    _compare_chain(mine.get("cache"), dove["cache"], cmp, where, types)


def _compare_chain(mine: dict | None, dove: dict, cmp: Comparison, where: str, types) -> None:
    ours = (mine or {}).get("records", [])
    if dove["broken"]:
        cmp.eq(f"{where} cache broken", bool((mine or {}).get("error")), True)
    cmp.eq(f"{where} cache chain length", len(ours), len(dove["chain"]))
    for a, b in zip(ours, dove["chain"], strict=False):
        for key in ("offset", "size", "prev_offset"):
            cmp.eq(f"{where} cache@{b['offset']}.{key}", a[key], b[key])
        cmp.eq(f"{where} cache@{b['offset']} fields", [f["name"] for f in a["fields"]],
               [f["name"] for f in b["fields"]])  # fmt: skip
        for fa, fb in zip(a["fields"], b["fields"], strict=False):
            _compare_cache_value(fa, fb, cmp, f"{where} cache {fb['name']}")


def _compare_cache_value(mine: dict, dove: dict, cmp: Comparison, where: str) -> None:
    kind = mine["type"]
    if kind == "fix":
        cmp.eq(f"{where}.hex", mine["hex"], dove["hex"])
        if dove.get("value") is not None and not isinstance(mine["value"], dict):
            cmp.eq(f"{where}.value", mine["value"], dove["value"])  # date.sent: hex only
    elif kind in ("var", "bit"):
        cmp.eq(f"{where}.hex", mine["hex"], dove["hex"])
        if mine["name"] == "mime.parts" and isinstance(mine["value"], dict):
            cmp.eq(f"{where}.decoded", mime_parts_text(mine["value"]), dove.get("decoded"))
    elif kind == "str":
        cmp.eq(f"{where}.text", mine["value"], dove["text"])
    elif kind == "hdr":
        value = mine["value"]
        cmp.eq(f"{where}.lines", value["lines"], dove["lines"])
        text = value["text"]
        if text is not None and len(value["lines"]) == 1 and text.endswith("\n"):
            text = text[:-1]  # doveadm drops the newline of a single-line header
        cmp.eq(f"{where}.text", text or None, dove["value"] or None)


def compare_log(ours: dict, theirs: dict, cmp: Comparison, where: str) -> None:
    cmp.files += 1
    for key in LOG_HEADER_FIELDS:
        cmp.eq(f"{where} header.{key}", ours["header"][key], theirs["header"][key])
    cmp.eq(f"{where} record count", len(ours["records"]), len(theirs["records"]))
    modseq = ours["header"]["initial_modseq"]
    for mine, dove in zip(ours["records"], theirs["records"], strict=False):
        at = f"{where} @{dove['offset']}"
        for key in ("offset", "type", "external", "sync", "size"):
            cmp.eq(f"{at}.{key}", mine[key], dove[key])
        expected = dove["modseq"] if dove["modseq"] is not None else modseq
        cmp.eq(f"{at}.modseq", mine["modseq"], expected)
        modseq = mine["modseq"]
        _compare_payload(mine, dove["payload"], cmp, at)


def _compare_payload(mine: dict, dove: dict | None, cmp: Comparison, at: str) -> None:
    if dove is None:
        return
    kind = mine["type"]
    if kind == "append":
        cmp.eq(f"{at} uids", [(u["uid"], u["flags"]) for u in mine["uids"]],
               [(u["uid"], u["flags"]) for u in dove["uids"]])  # fmt: skip
    elif kind in ("expunge", "keyword-reset"):
        cmp.eq(f"{at} ranges", mine["uids"], [list(r) for r in dove["ranges"]])
    elif kind == "expunge-guid":
        cmp.eq(f"{at} uids", [(u["uid"], u["guid"]) for u in mine["uids"]],
               [(u["uid"], u["guid"]) for u in dove["items"]])  # fmt: skip
    elif kind == "flag-update":
        cmp.eq(f"{at} updates",
               [(u["uid1"], u["uid2"], u["add_flags"], u["remove_flags"], u["modseq_inc_flag"])
                for u in mine["updates"]],
               [(u["uid1"], u["uid2"], u["add"], u["remove"], u["modseq_inc_flag"])
                for u in dove["items"]])  # fmt: skip
    elif kind == "header-update":
        _compare_header_update(mine["updates"][0], dove["fields"], cmp, at)
    elif kind == "ext-intro":
        intro = mine["intros"][0]
        for key in ("ext_id", "reset_id", "hdr_size", "record_size", "record_align", "flags",
                    "name_size"):  # fmt: skip
            cmp.eq(f"{at}.{key}", intro[key], dove[key])
        cmp.eq(f"{at}.name", intro["name"] or None, dove["name"])
    elif kind == "ext-reset":
        cmp.eq(f"{at}.new_reset_id", mine["new_reset_id"], dove["new_reset_id"])
        cmp.eq(f"{at}.preserve_data", mine["preserve_data"], dove["preserve_data"])
    elif kind in ("ext-hdr", "ext-hdr32"):
        update = mine["updates"][0]
        cmp.eq(f"{at}.offset", update["offset"], dove["offset"])
        cmp.eq(f"{at}.size", update["size"], dove["size"])
        cmp.eq(f"{at}.hex", update["data"], dove["hex"])
    elif kind == "ext-rec":
        cmp.eq(f"{at} updates", [(u["uid"], u["data"]) for u in mine["updates"]],
               [(u["uid"], u["hex"]) for u in dove["items"]])  # fmt: skip
    elif kind == "ext-atomic-inc":
        cmp.eq(f"{at} updates", [(u["uid"], u["diff"]) for u in mine["updates"]],
               [(u["uid"], u["diff"]) for u in dove["items"]])  # fmt: skip
    elif kind == "keyword-update":
        cmp.eq(f"{at}.modify", mine["modify"], dove["modify"])
        cmp.eq(f"{at}.name", mine["name"], dove["name"])
        cmp.eq(f"{at}.ranges", mine["uids"], [list(r) for r in dove["ranges"]])
    elif kind == "modseq-update":
        cmp.eq(f"{at} updates", [(u["uid"], u["modseq"]) for u in mine["updates"]],
               [(u["uid"], u["modseq"]) for u in dove["items"]])  # fmt: skip
    elif kind == "boundary":
        cmp.eq(f"{at}.boundary", mine["boundary_size"], dove["size"])
    elif kind == "attribute-update":
        cmp.eq(f"{at} changes", [(c["operation"], c["key"], c["value_len"])
                                 for c in mine["updates"]],
               [(e["op"], e["key"], e["value_len"]) for e in dove["entries"]])  # fmt: skip


def _compare_header_update(update: dict, fields: list[dict], cmp: Comparison, at: str) -> None:
    ours = update.get("fields") or []
    consumed = 0
    for i, dove in enumerate(fields):
        if dove["name"] is not None and i < len(ours):
            cmp.eq(f"{at}.{dove['name']}", ours[i]["name"], dove["name"])
            cmp.eq(f"{at}.{dove['name']}.value", ours[i]["value"], dove["value"])
            consumed += dove["size"]
        elif dove["name"] is None:
            cmp.eq(f"{at}.offset", update["offset"] + consumed, dove["offset"])
            cmp.eq(f"{at}.size", update["size"] - consumed, dove["size"])
            if dove["hex"] is not None:
                cmp.eq(f"{at}.hex", update["hex"][2 * consumed :], dove["hex"])
