"""Tests for tests/doveadm_dump.py, the parser of ``doveadm dump`` text.

Why: the comparison tests trust this parser to read Dovecot's own view of a
file; if it misread a line the comparison would pass or fail for the wrong
reason.  The samples below are copied (trimmed, paths shortened) from real
Dovecot 2.3.19.1 dumps of maildir, sdbox, mdbox, mbox and list indexes,
transaction logs and dbox files; the few shapes that doveadm only prints for
damaged files were produced by dumping hand-made damaged files.  No doveadm
is run here, so these tests are fast and run everywhere.
"""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest

from doveadm_dump import (
    parse_dbox_dump,
    parse_index_dump,
    parse_log_dump,
    unixdate2str,
    unixdate_range,
)

# ---------------------------------------------------------------------------
# Index dump samples

INDEX_HEADER = """\
-- INDEX: /m/Maildir/dovecot.index
version .................. = 7.3
base header size ......... = 120
header size .............. = 592
record size .............. = 16
compat flags ............. = 1
index id ................. = 1795880911 (2026-11-28 15:48:31)
flags .................... = 0
uid validity ............. = 1795880911 (2026-11-28 15:48:31)
next uid ................. = 7
messages count ........... = 5
seen messages count ...... = 3
deleted messages count ... = 0
first recent uid ......... = 1
first unseen uid lowwater  = 0
first deleted uid lowwater = 7
log file seq ............. = 2
log file tail offset ..... = 2716
log file head offset ..... = 3064
log2 rotate time ......... = 4294967295 (2106-02-07 06:28:15)
last temp file scan ...... = 0 (1970-01-01 00:00:00)
day stamp ................ = 1795824000 (2026-11-28 00:00:00)
day first uid[0] ......... = 1
day first uid[1] ......... = 0
day first uid[2] ......... = 0
day first uid[3] ......... = 0
day first uid[4] ......... = 0
day first uid[5] ......... = 0
day first uid[6] ......... = 0
day first uid[7] ......... = 0
"""

MAILDIR_EXTENSIONS = """\
-- Extension 0 --
name ........ = maildir
hdr_size .... = 36
reset_id .... = 0
record_offset = 0
record_size . = 0
record_align  = 0
header
 - new_check_time .... = 2026-11-28 15:48:35
 - new_mtime ......... = 2026-11-28 15:48:35
 - new_mtime_nsecs ... = 284771500
 - cur_check_time .... = 2026-11-28 15:48:35
 - cur_mtime ......... = 2026-11-28 15:48:31
 - cur_mtime_nsecs.... = 349120194
 - uidlist_mtime ..... = 2026-11-28 15:48:31
 - uidlist_mtime_nsecs = 439104925
 - uidlist_size ...... = 303
-- Extension 1 --
name ........ = cache
hdr_size .... = 0
reset_id .... = 1795880911
record_offset = 8
record_size . = 4
record_align  = 4
-- Extension 2 --
name ........ = keywords
hdr_size .... = 284
reset_id .... = 0
record_offset = 5
record_size . = 3
record_align  = 1
-- Extension 3 --
name ........ = hdr-vsize
hdr_size .... = 16
reset_id .... = 0
record_offset = 0
record_size . = 0
record_align  = 8
header
 - highest uid . = 6
 - message count = 5
 - vsize ....... = 2935
-- Extension 4 --
name ........ = vsize
hdr_size .... = 0
reset_id .... = 0
record_offset = 12
record_size . = 4
record_align  = 4
"""

TEN_KEYWORDS = """\
  0 = kwone
  1 = kwtwo
  2 = kwthree
  3 = kwfour
  4 = kwfive
  5 = kwsix
  6 = kwseven
  7 = kweight
  8 = kwnine
  9 = kwten
"""

MAILDIR_CACHE = """\
major version ........ = 1
minor version ........ = 1
indexid .............. = 1795880911 (2026-11-28 15:48:31)
file_seq ............. = 1795880911 (2026-11-28 15:48:31) (0 purges)
continued_record_count = 8
record_count ......... = 5
used_file_size (old) . = 388
deleted_record_count . = 1
field_header_offset .. = 32 (0x88808080 nontranslated)
-- Cache fields --
 #  Name                                         Type Size Dec  Last used
 0: flags                                        bit     4 tmp  2026-11-28 15:48
 1: date.sent                                    fix     8 no   1970-01-01 00:00
 2: date.received                                fix     4 tmp  2026-11-28 15:48
 3: date.save                                    fix     4 tmp  2026-11-28 15:48
 4: size.virtual                                 fix     8 no   1970-01-01 00:00
 5: size.physical                                fix     8 no   1970-01-01 00:00
 6: imap.body                                    str     - no   1970-01-01 00:00
 7: imap.bodystructure                           str     - tmp  2026-11-28 15:48
 8: imap.envelope                                str     - no   1970-01-01 00:00
 9: pop3.uidl                                    str     - no   1970-01-01 00:00
10: pop3.order                                   fix     4 no   1970-01-01 00:00
11: guid                                         str     - no   1970-01-01 00:00
12: mime.parts                                   var     - no   2026-11-28 15:48
13: binary.parts                                 var     - no   1970-01-01 00:00
14: body.snippet                                 var     - tmp  2026-11-28 15:48
15: hdr.Date                                     hdr     - no   1970-01-01 00:00
16: hdr.from                                     hdr     - tmp  2026-11-28 15:48
17: hdr.received                                 hdr     - tmp  2026-11-28 15:48
18: hdr.subject                                  hdr     - tmp  2026-11-28 15:48
"""

# Real maildir record: the two Received: lines make the cached value end
# with "\n", so an empty line follows it inside the record.
MAILDIR_RECORDS = """\
RECORD: seq=1, uid=1, flags=0x0a (Seen Flagged)
 - ext 0 keywords  :            (0000)
 - ext 3 cache     :       3328 (000d0000)
 - ext 5 vsize     :        588 (4c020000)
 - cache offset=3328 size=16, prev_offset = 2904
    - date.save: 1795880915 (d3f70a6b)
 - cache offset=2904 size=212, prev_offset = 904
    - imap.bodystructure: ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 44 1 NIL NIL \
NIL NIL) "alternative" ("boundary" "b1") NIL NIL NIL
 - cache offset=904 size=400, prev_offset = 388
    - hdr.from: 5: From: Sender 1 <sender1@example.com>
    - hdr.received: 1, 3: Received: from a.example by b.example with SMTP id 1;
\tMon, 1 Jan 2024 10:01:00 +0000
Received: from c.example by a.example;
\tMon, 1 Jan 2024 10:00:01 +0000

    - hdr.subject: 7: Subject: Test message 1 with a long subject that is
 folded onto a second line
    - date.received: 1795880911 (cff70a6b)
    - body.snippet: (3148656c6c6f20626f647920312e) (version=49: Hello body 1.)
 - cache offset=388 size=16, prev_offset = 0
    - flags: (20000000)

RECORD: seq=2, uid=4, flags=0x00\x20
 - ext 0 keywords  :            (0003)
 - ext 3 cache     :       2104 (38080000)
 - ext 5 vsize     :        588 (4c020000)
 - cache offset=2104 size=400, prev_offset = 436
    - hdr.received: 1, 3: Received: from a.example by b.example with SMTP id 4;
\tMon, 1 Jan 2024 10:04:00 +0000
Received: from c.example by a.example;
\tMon, 1 Jan 2024 10:00:04 +0000


"""


def index_dump(
    extensions: str = MAILDIR_EXTENSIONS,
    keywords: str = TEN_KEYWORDS,
    cache: str = MAILDIR_CACHE,
    records: str = MAILDIR_RECORDS,
    header: str = INDEX_HEADER,
    count: int | None = None,
) -> str:
    """Assemble a dump the way cmd_dump_index() orders its sections."""
    if count is None:
        count = sum(line.startswith("RECORD: ") for line in records.split("\n"))
    return (
        f"{header}{extensions}-- Keywords --\n{keywords}\n"
        f"-- CACHE: /m/Maildir/dovecot.index.cache\n{cache}\n"
        f"-- RECORDS: {count}\n{records}"
    )


def cached_fields(record: dict) -> dict[str, dict]:
    """Map cache field name -> parsed field over a record's whole chain."""
    return {f["name"]: f for rec in record["cache"]["chain"] for f in rec["fields"]}


# ---------------------------------------------------------------------------
# Index dump: header, extensions, keywords


def test_index_header_values_are_ints_under_struct_field_names():
    dump = parse_index_dump(index_dump())
    assert dump["path"] == "/m/Maildir/dovecot.index"
    header = dump["header"]
    assert header["major_version"] == 7 and header["minor_version"] == 3
    assert header["indexid"] == 1795880911
    assert header["first_unseen_uid_lowwater"] == 0
    assert header["log2_rotate_time"] == 4294967295
    assert header["day_first_uid"] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert len(header) == 23


def test_minor_version_0_header_maps_int_and_ext_offsets_to_tail_and_head():
    old = (
        INDEX_HEADER.replace("= 7.3", "= 7.0")
        .replace("log file tail offset .....", "log file int offset ......")
        .replace("log file head offset .....", "log file ext offset ......")
    )
    old = "".join(line + "\n" for line in old.split("\n") if line and "log2" not in line)
    old = old.replace("last temp file scan ...... = 0 (1970-01-01 00:00:00)\n", "")
    header = parse_index_header_only(old)
    assert header["log_file_tail_offset"] == 2716
    assert header["log_file_head_offset"] == 3064
    assert "log2_rotate_time" not in header


def parse_index_header_only(header: str) -> dict:
    """Parse a dump with no extensions, keywords, cache or records."""
    text = index_dump(
        extensions="no extensions\n", keywords="", cache="cache is unusable\n", records=""
    )
    return parse_index_dump(text.replace(INDEX_HEADER, header))["header"]


def test_missing_index_header_line_is_an_error():
    header = INDEX_HEADER.replace("next uid ................. = 7\n", "")
    with pytest.raises(ValueError, match="next_uid"):
        parse_index_header_only(header)


def test_maildir_extension_header_keeps_dates_as_printed_and_numbers_as_ints():
    ext = parse_index_dump(index_dump())["extensions"][0]
    assert ext["name"] == "maildir"
    assert ext["hdr_size"] == 36 and ext["record_align"] == 0
    assert ext["header"]["new_check_time"] == "2026-11-28 15:48:35"
    assert ext["header"]["cur_mtime_nsecs"] == 349120194
    assert ext["header"]["uidlist_size"] == 303


def test_header_less_and_keywords_extensions_have_no_header():
    exts = parse_index_dump(index_dump())["extensions"]
    assert [e["name"] for e in exts] == ["maildir", "cache", "keywords", "hdr-vsize", "vsize"]
    assert exts[1]["header"] is None
    assert exts[2]["hdr_size"] == 284 and exts[2]["header"] is None
    assert exts[3]["header"] == {"highest_uid": 6, "message_count": 5, "vsize": 2935}


SDBOX_EXTENSIONS = """\
-- Extension 0 --
name ........ = dbox-hdr
hdr_size .... = 24
reset_id .... = 0
record_offset = 0
record_size . = 0
record_align  = 0
header
 - rebuild_count . = 0
 - mailbox_guid .. = 0dd9821ccff70a6b2f1a000083ecc375
 - flags ......... = 0x0
-- Extension 1 --
name ........ = hdr-pop3-uidl
hdr_size .... = 4
reset_id .... = 0
record_offset = 0
record_size . = 0
record_align  = 0
header
 - max_uid_with_pop3_uidl = 0
-- Extension 2 --
name ........ = mdbox-hdr
hdr_size .... = 24
reset_id .... = 0
record_offset = 0
record_size . = 0
record_align  = 0
header
 - map_uid_validity .. = 1795880911
 - mailbox_guid ...... = 7abd9e23cff70a6b4e1a000083ecc375
 - flags ............. = 0x1a
-- Extension 3 --
name ........ = mbox
hdr_size .... = 32
reset_id .... = 0
record_offset = 8
record_size . = 8
record_align  = 8
header
 - sync_mtime . = 2026-11-28 15:50:44
 - sync_size .. = 1480
 - dirty_flag . = 0
 - mailbox_guid = 12345678901234567890123456789012
-- Extension 4 --
name ........ = modseq
hdr_size .... = 16
reset_id .... = 0
record_offset = 16
record_size . = 8
record_align  = 8
header
 - highest_modseq = 4
 - log_seq ...... = 2
 - log_offset ... = 1104
"""


def test_decoded_extension_headers_use_printed_keys_and_typed_values():
    exts = parse_index_dump(index_dump(SDBOX_EXTENSIONS, records=""))["extensions"]
    assert exts[0]["header"] == {
        "rebuild_count": 0,
        "mailbox_guid": "0dd9821ccff70a6b2f1a000083ecc375",
        "flags": 0,
    }
    assert exts[1]["header"] == {"max_uid_with_pop3_uidl": 0}
    assert exts[2]["header"]["map_uid_validity"] == 1795880911
    assert exts[2]["header"]["flags"] == 0x1A
    # an all-digit GUID must stay a string
    assert exts[3]["header"]["mailbox_guid"] == "12345678901234567890123456789012"
    assert exts[3]["header"]["sync_mtime"] == "2026-11-28 15:50:44"
    assert exts[4]["header"] == {"highest_modseq": 4, "log_seq": 2, "log_offset": 1104}


LIST_EXTENSIONS = """\
-- Extension 0 --
name ........ = list
hdr_size .... = 32
reset_id .... = 0
record_offset = 32
record_size . = 28
record_align  = 4
header ........ = 00010000004c697374730002000000646f7665636f7400000000000000000000
 - refresh_flag = 0
 - 1 : Lists
 - 2 : dovecot
-- Extension 1 --
name ........ = msgs
hdr_size .... = 0
reset_id .... = 0
record_offset = 60
record_size . = 16
record_align  = 4
-- Extension 2 --
name ........ = hmodseq
hdr_size .... = 0
reset_id .... = 0
record_offset = 8
record_size . = 8
record_align  = 8
-- Extension 3 --
name ........ = index sync
hdr_size .... = 0
reset_id .... = 0
record_offset = 76
record_size . = 8
record_align  = 4
-- Extension 4 --
name ........ = vsize
hdr_size .... = 0
reset_id .... = 0
record_offset = 16
record_size . = 16
record_align  = 8
"""

LIST_RECORD = """\
RECORD: seq=1, uid=2, flags=0x02 (Flagged)
 - ext 2 list      :            (0200000001000000cd06c21967f80a6bbc1e000083ecc37567f80a6b)
                   : name_id      = 2
                   : parent_uid   = 1
                   : guid         = cd06c21967f80a6bbc1e000083ecc375
                   : uid_validity = 1795881063
 - ext 3 msgs      :            (01000000010000000100000002000000)
                   : messages = 1
                   : unseen   = 1
                   : recent   = 1
                   : uidnext  = 2
 - ext 4 hmodseq   :          2 (0200000000000000)
 - ext 5 index sync:            (f402000067f80a6b)
 - ext 6 vsize     :            (4b020000000000000100000001000000)
                   : vsize         = 587
                   : highest_uid   = 1
                   : message_count = 1

"""


def list_index_dump() -> dict:
    """Parse the real dovecot.list.index sample (LAYOUT=index sdbox)."""
    return parse_index_dump(index_dump(LIST_EXTENSIONS, "", "cache is unusable\n", LIST_RECORD))


def test_list_index_header_gives_hex_and_the_name_table():
    ext = list_index_dump()["extensions"][0]
    assert ext["header"]["hex"].startswith("00010000004c69737473")
    assert ext["list"] == {
        "refresh_flag": 0,
        "names": {1: "Lists", 2: "dovecot"},
        "corrupted": False,
    }


def test_box_name_header_gives_hex_and_one_entry_per_nul_separated_part():
    box = """\
-- Extension 0 --
name ........ = box-name
hdr_size .... = 13
reset_id .... = 0
record_offset = 0
record_size . = 0
record_align  = 0
header ........ = 4c6973747300646f7665636f74
 Lists
 dovecot
"""
    ext = parse_index_dump(index_dump(box, records=""))["extensions"][0]
    assert ext["header"] == {"hex": "4c6973747300646f7665636f74"}
    assert ext["box_name"] == ["Lists", "dovecot"]


def test_unknown_extension_header_is_kept_as_hex():
    map_ext = """\
-- Extension 0 --
name ........ = map
hdr_size .... = 8
reset_id .... = 0
record_offset = 8
record_size . = 12
record_align  = 4
header ........ = 0100000000000000
"""
    ext = parse_index_dump(index_dump(map_ext, records=""))["extensions"][0]
    assert ext["header"] == {"hex": "0100000000000000"}


def test_keywords_are_listed_in_keyword_index_order():
    assert parse_index_dump(index_dump())["keywords"][8:] == ["kwnine", "kwten"]


def test_no_extensions_empty_keywords_and_unusable_cache():
    text = index_dump(
        extensions="no extensions\n", keywords="", cache="cache is unusable\n", records=""
    )
    dump = parse_index_dump(text)
    assert dump["extensions"] == [] and dump["keywords"] == []
    assert dump["cache"] == "unusable" and dump["records"] == []


# ---------------------------------------------------------------------------
# Index dump: cache header and field table


def test_cache_header_decodes_purges_and_raw_field_header_offset():
    cache = parse_index_dump(index_dump())["cache"]
    assert cache["header"] == {
        "major_version": 1,
        "minor_version": 1,
        "indexid": 1795880911,
        "file_seq": 1795880911,
        "purges": 0,
        "continued_record_count": 8,
        "record_count": 5,
        "used_file_size_old": 388,
        "deleted_record_count": 1,
        "field_header_offset": 32,
        "field_header_offset_raw": 0x88808080,
    }


def test_cache_field_table_keeps_type_size_decision_and_minute_date():
    fields = parse_index_dump(index_dump())["cache"]["fields"]
    assert len(fields) == 19
    assert fields[1] == {
        "index": 1,
        "name": "date.sent",
        "type": "fix",
        "size": 8,
        "decision": "no",
        "last_used": "1970-01-01 00:00",
    }
    assert fields[17]["type"] == "hdr" and fields[17]["size"] is None


def test_cache_field_table_accepts_forced_decision_and_unknown_type():
    cache = MAILDIR_CACHE.replace(
        " 6: imap.body                                    str     - no  ",
        " 6: imap.body                                    0x9     - yes!",
    )
    field = parse_index_dump(index_dump(cache=cache, records=""))["cache"]["fields"][6]
    assert (field["type"], field["decision"]) == ("0x9", "yes!")


def test_cache_field_line_not_in_doveadm_layout_is_rejected():
    cache = MAILDIR_CACHE.replace("4 tmp  2026", "4 tmp 2026", 1)
    with pytest.raises(ValueError, match="layout"):
        parse_index_dump(index_dump(cache=cache, records=""))


# ---------------------------------------------------------------------------
# Index dump: records


def test_record_flags_and_extension_values_in_registration_order():
    record = parse_index_dump(index_dump())["records"][0]
    assert (record["seq"], record["uid"], record["flags"]) == (1, 1, 0x0A)
    # "ext N" is the registered extension id, not the "-- Extension N --" number
    assert record["ext"]["cache"] == {"ext_index": 3, "value": 3328, "hex": "000d0000"}
    # record_size 3 / align 1: no number is printed, only hex
    assert record["ext"]["keywords"] == {"ext_index": 0, "value": None, "hex": "0000"}


def test_record_without_flags_has_trailing_space_and_zero_flags():
    record = parse_index_dump(index_dump())["records"][1]
    assert record["flags"] == 0 and record["uid"] == 4


def test_extension_name_padded_to_ten_columns_is_recovered():
    ext = list_index_dump()["records"][0]["ext"]
    assert ext["index sync"] == {"ext_index": 5, "value": None, "hex": "f402000067f80a6b"}
    assert ext["hmodseq"]["value"] == 2


def test_extension_name_longer_than_ten_columns_is_not_truncated():
    long_ext = LIST_EXTENSIONS.replace("= index sync", "= index-sync-2")
    record = LIST_RECORD.replace("ext 5 index sync:", "ext 5 index-sync-2:")
    dump = parse_index_dump(index_dump(long_ext, "", "cache is unusable\n", record))
    assert dump["records"][0]["ext"]["index-sync-2"]["ext_index"] == 5


def test_list_index_record_sub_fields_are_decoded():
    ext = list_index_dump()["records"][0]["ext"]
    assert ext["list"]["guid"] == "cd06c21967f80a6bbc1e000083ecc375"
    assert ext["list"]["parent_uid"] == 1 and ext["list"]["uid_validity"] == 1795881063
    assert ext["msgs"]["uidnext"] == 2
    assert ext["vsize"] == {
        "ext_index": 6,
        "value": None,
        "hex": "4b020000000000000100000001000000",
        "vsize": 587,
        "highest_uid": 1,
        "message_count": 1,
    }


def test_mdbox_and_map_records_decode_their_sub_fields():
    exts = """\
-- Extension 0 --
name ........ = mdbox
hdr_size .... = 0
reset_id .... = 0
record_offset = 28
record_size . = 8
record_align  = 4
-- Extension 1 --
name ........ = map
hdr_size .... = 0
reset_id .... = 0
record_offset = 8
record_size . = 12
record_align  = 4
-- Extension 2 --
name ........ = ref
hdr_size .... = 0
reset_id .... = 0
record_offset = 6
record_size . = 2
record_align  = 2
"""
    records = """\
RECORD: seq=1, uid=1, flags=0x0a (Seen Flagged)
 - ext 5 mdbox     :            (01000000cff70a6b)
                   : map_uid   = 1
                   : save_date = 1795880911 (2026-11-28 15:48:31)
 - ext 2 map       :            (01000000100000008f020000)
                   : file_id = 1
                   : offset  = 16
                   : size    = 655
 - ext 3 ref       :          1 (0100)

"""
    ext = parse_index_dump(index_dump(exts, "", "cache is unusable\n", records))["records"][0]
    assert ext["ext"]["mdbox"]["map_uid"] == 1
    assert ext["ext"]["mdbox"]["save_date"] == 1795880911
    assert ext["ext"]["map"] == {
        "ext_index": 2,
        "value": None,
        "hex": "01000000100000008f020000",
        "file_id": 1,
        "offset": 16,
        "size": 655,
    }
    assert ext["ext"]["ref"]["value"] == 1


def test_cache_chain_keeps_each_cache_record_in_order():
    chain = parse_index_dump(index_dump())["records"][0]["cache"]["chain"]
    assert [(c["offset"], c["size"], c["prev_offset"]) for c in chain] == [
        (3328, 16, 2904),
        (2904, 212, 904),
        (904, 400, 388),
        (388, 16, 0),
    ]
    assert [f["name"] for f in chain[2]["fields"]] == [
        "hdr.from",
        "hdr.received",
        "hdr.subject",
        "date.received",
        "body.snippet",
    ]


def test_multi_line_header_value_keeps_its_newlines_and_trailing_empty_line():
    fields = cached_fields(parse_index_dump(index_dump())["records"][0])
    received = fields["hdr.received"]
    assert received["lines"] == [1, 3]
    assert received["value"] == (
        "Received: from a.example by b.example with SMTP id 1;\n"
        "\tMon, 1 Jan 2024 10:01:00 +0000\n"
        "Received: from c.example by a.example;\n"
        "\tMon, 1 Jan 2024 10:00:01 +0000\n"
    )
    assert received["text"] == "1, 3: " + received["value"]
    assert fields["hdr.subject"]["value"].endswith("is\n folded onto a second line")


def test_multi_line_header_value_as_last_field_of_last_record():
    record = parse_index_dump(index_dump())["records"][1]
    assert cached_fields(record)["hdr.received"]["value"].endswith("+0000\n")


def test_header_lines_that_look_like_dump_lines_stay_in_the_value():
    records = """\
RECORD: seq=1, uid=1, flags=0x00\x20
 - cache offset=388 size=16, prev_offset = 0
    - hdr.subject: 7, 8: Subject: x
 - cache offset=1 size=2, prev_offset = 3
    - hdr.unknown: not a field
RECORD: seq=2, uid=2, flags=0x00\x20

    - flags: (20000000)

"""
    dump = parse_index_dump(index_dump(records=records, count=1))
    assert len(dump["records"]) == 1
    fields = cached_fields(dump["records"][0])
    assert list(fields) == ["hdr.subject", "flags"]
    assert fields["hdr.subject"]["value"] == (
        "Subject: x\n - cache offset=1 size=2, prev_offset = 3\n"
        "    - hdr.unknown: not a field\nRECORD: seq=2, uid=2, flags=0x00 \n"
    )


def test_missing_header_prints_nothing_after_the_name():
    records = "RECORD: seq=1, uid=1, flags=0x00 \n - cache offset=9 size=9, prev_offset = 0\n"
    records += "    - hdr.from:\x20\n\n"
    field = cached_fields(parse_index_dump(index_dump(records=records))["records"][0])["hdr.from"]
    assert field == {"name": "hdr.from", "text": "", "lines": [], "value": None, "broken": False}


def test_header_field_without_terminating_zero_line_is_flagged_broken():
    records = "RECORD: seq=1, uid=1, flags=0x00 \n - cache offset=9 size=9, prev_offset = 0\n"
    records += "    - hdr.from: 5\n - BROKEN: header field doesn't end with 0 line\n\n"
    field = cached_fields(parse_index_dump(index_dump(records=records))["records"][0])["hdr.from"]
    assert field["lines"] == [5] and field["broken"] and field["value"] is None


RICH_CACHE_FIELDS = """\
major version ........ = 1
minor version ........ = 1
indexid .............. = 1795880956 (2026-11-28 15:49:16)
file_seq ............. = 1795880956 (2026-11-28 15:49:16) (0 purges)
continued_record_count = 4
record_count ......... = 4
used_file_size (old) . = 460
deleted_record_count . = 0
field_header_offset .. = 32 (0x88808080 nontranslated)
-- Cache fields --
 #  Name                                         Type Size Dec  Last used
 0: flags                                        bit     4 yes  2026-11-28 15:49
 1: date.sent                                    fix     8 yes  2026-11-28 15:49
 2: date.save                                    fix     4 yes  2026-11-28 15:49
 3: size.virtual                                 fix     8 yes  2026-11-28 15:49
 4: guid                                         str     - yes  1970-01-01 00:00
 5: mime.parts                                   var     - yes  2026-11-28 15:49
 6: imap.body                                    str     - yes  2026-11-28 15:49
 7: hdr.x-weird                                  hdr     - yes  2026-11-28 15:49
"""

RICH_RECORD = """\
RECORD: seq=1, uid=4, flags=0x05 (Answered Deleted)
 - ext 4 cache     :       1684 (94060000)
 - cache offset=1684 size=176, prev_offset = 0
    - hdr.x-weird: 3: X-Weird:     - hdr.subject: fake
    - flags: (30000000)
    - mime.parts: (080000008f000000000000009400000000000000340000000000000036000000000000\
0002000000) (pos=0 hdr.p=143 hdr.v=148 body.p=52 body.v=54 flags=8)
    - size.virtual: 202(ca00000000000000)
    - date.save: 1795880956 (fcf70a6b)
    - date.sent: 1704189600(a0de936500000000)
    - guid: 1001.M1P1.host
    - imap.body: ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 44 1) "alternative"

"""


def rich_fields() -> dict[str, dict]:
    """Parse the sdbox record whose cache holds one field of each type."""
    dump = parse_index_dump(index_dump(cache=RICH_CACHE_FIELDS, records=RICH_RECORD))
    return cached_fields(dump["records"][0])


def test_fixed_size_cache_fields_print_host_order_number_and_hex():
    fields = rich_fields()
    # 4-byte values are printed "%u (hex)", 8-byte ones "%llu(hex)" (no space)
    assert fields["date.save"] == {
        "name": "date.save",
        "text": "1795880956 (fcf70a6b)",
        "value": 1795880956,
        "hex": "fcf70a6b",
    }
    assert fields["size.virtual"]["value"] == 202
    assert fields["date.sent"]["hex"] == "a0de936500000000"


def test_bitmask_string_and_mime_parts_fields():
    fields = rich_fields()
    assert fields["flags"] == {"name": "flags", "text": "(30000000)", "hex": "30000000"}
    assert fields["guid"]["text"] == "1001.M1P1.host"
    assert fields["imap.body"]["text"].endswith('44 1) "alternative"')
    assert fields["mime.parts"]["decoded"].startswith("(pos=0 hdr.p=143")
    assert fields["mime.parts"]["hex"].startswith("080000008f")


def test_body_snippet_version_byte_and_text_are_split():
    snippet = cached_fields(parse_index_dump(index_dump())["records"][0])["body.snippet"]
    # the version byte is the character '1', printed with %u
    assert snippet["snippet_version"] == 49
    assert snippet["snippet"] == "Hello body 1."
    assert snippet["hex"] == "3148656c6c6f20626f647920312e"


def test_single_line_header_value_that_looks_like_a_field_line():
    value = rich_fields()["hdr.x-weird"]["value"]
    assert value == "X-Weird:     - hdr.subject: fake"


def test_broken_cache_ends_the_chain():
    records = """\
RECORD: seq=1, uid=1, flags=0x0b (Seen Answered Flagged)
 - ext 4 cache     :       4168 (48100000)
 - cache offset=4168 size=32, prev_offset = 2448
    - guid: 1001.M1P1.host
 - cache offset=2448 size=500, prev_offset = 999999
    - imap.body: x
 - broken cache

RECORD: seq=2, uid=2, flags=0x08 (Seen)
 - ext 4 cache     :       4200 (68100000)

"""
    dump = parse_index_dump(index_dump(cache=RICH_CACHE_FIELDS, records=records))
    first, second = dump["records"]
    assert first["cache"]["broken"] and len(first["cache"]["chain"]) == 2
    assert second["cache"] == {"chain": [], "broken": False}


def test_bytes_input_keeps_8bit_and_carriage_returns_inside_values():
    records = (
        "RECORD: seq=1, uid=1, flags=0x00 \n - cache offset=9 size=9, prev_offset = 0\n"
        "    - hdr.subject: 7: Subject: caf\xe9\r\n\n"
    )
    text = index_dump(records=records).encode("latin-1")
    value = cached_fields(parse_index_dump(text)["records"][0])["hdr.subject"]["value"]
    assert value == "Subject: caf\udce9\r"


def test_flag_names_that_do_not_match_the_flags_are_rejected():
    records = MAILDIR_RECORDS.replace("(Seen Flagged)", "(Seen)")
    with pytest.raises(ValueError, match="flag names"):
        parse_index_dump(index_dump(records=records))


def test_record_count_must_match_the_records_printed():
    text = index_dump().replace("-- RECORDS: 2", "-- RECORDS: 3")
    with pytest.raises(ValueError, match="expected 3 records"):
        parse_index_dump(text)


def test_unrecognised_line_raises_and_names_it():
    text = index_dump().replace(" - new_mtime_nsecs ... = 284771500", "surprise")
    with pytest.raises(ValueError, match="surprise"):
        parse_index_dump(text)


def test_record_extension_missing_from_the_extension_list_is_rejected():
    records = MAILDIR_RECORDS.replace("ext 5 vsize     :", "ext 5 vsizes    :")
    with pytest.raises(ValueError, match="not in the extension list"):
        parse_index_dump(index_dump(records=records))


# ---------------------------------------------------------------------------
# Transaction log dump

LOG_HEADER = """\
version = 1.3
hdr size = 40
index id = 1795880911
file seq = 2
prev file = 1/2044
create stamp = 1795880912
initial modseq = 1
compat flags = 1
"""


def log_records(records: str) -> list[dict]:
    """Parse log records printed after the real header sample."""
    return parse_log_dump(LOG_HEADER + records)["records"]


def payload(record_text: str) -> dict | None:
    """Parse one log record and return its decoded payload."""
    (record,) = log_records(record_text)
    return record["payload"]


def test_log_header_fields():
    dump = parse_log_dump(LOG_HEADER)
    assert dump["header"] == {
        "major_version": 1,
        "minor_version": 3,
        "hdr_size": 40,
        "indexid": 1795880911,
        "file_seq": 2,
        "prev_file_seq": 1,
        "prev_file_offset": 2044,
        "create_stamp": 1795880912,
        "initial_modseq": 1,
        "compat_flags": 1,
    }
    assert dump["records"] == [] and dump["truncated"] is False


def test_log_compat_flags_are_printed_in_hex():
    dump = parse_log_dump(LOG_HEADER.replace("compat flags = 1", "compat flags = 1a"))
    assert dump["header"]["compat_flags"] == 0x1A


def test_record_line_splits_type_external_sync_size_and_modseq():
    (record,) = log_records(
        "record: offset=772, type=modseq-update (ext) (sync), size=20, modseq=25\n"
        " - uid=1 modseq=25\n"
    )
    assert record == {
        "offset": 772,
        "type": "modseq-update",
        "external": True,
        "sync": True,
        "size": 20,
        "raw_size": None,
        "modseq": 25,
        "payload": {"items": [{"uid": 1, "modseq": 25}]},
    }


def test_append_flags_are_hex_and_only_printed_when_set():
    rec = "record: offset=428, type=append, size=24, modseq=11\n - uids=10 (flags=8a),11,\n"
    assert payload(rec) == {"uids": [{"uid": 10, "flags": 0x8A}, {"uid": 11, "flags": 0}]}


def test_expunge_and_keyword_reset_use_different_range_separators():
    expunge = "record: offset=40, type=expunge, size=24\n - uids=1-3,7-7,\n"
    reset = "record: offset=80, type=keyword-reset, size=24, modseq=8\n - uids=2-4, 9-9, \n"
    assert payload(expunge) == {"ranges": [[1, 3], [7, 7]]}
    assert payload(reset) == {"ranges": [[2, 4], [9, 9]]}


def test_expunge_guid_items():
    rec = (
        "record: offset=2044, type=expunge-guid (ext), size=28, modseq=24\n"
        " - uid=5 (guid 8bb23527cff70a6b5e1a000083ecc375)\n"
    )
    assert payload(rec) == {"items": [{"uid": 5, "guid": "8bb23527cff70a6b5e1a000083ecc375"}]}


def test_flag_update_add_and_remove_are_hex():
    rec = (
        "record: offset=948, type=flag-update, size=20, modseq=12\n"
        " - uids=2-2 (flags +8-17, modseq_inc_flag=0)\n"
    )
    item = {"uid1": 2, "uid2": 2, "add": 0x8, "remove": 0x17, "modseq_inc_flag": 0}
    assert payload(rec) == {"items": [item]}


def test_header_update_named_fields_then_raw_bytes():
    rec = (
        "record: offset=480, type=header-update (ext), size=48\n"
        " - day_stamp = 1795824000\n"
        " - offset = 88, size = 32: 01000000000000000000000000000000"
        "00000000000000000000000000000000\n"
    )
    day, raw = payload(rec)["fields"]
    assert day == {
        "name": "day_stamp",
        "offset": 84,
        "size": 4,
        "value": 1795824000,
        "hex": None,
        "too_large": False,
    }
    assert (raw["name"], raw["offset"], raw["size"], raw["value"]) == (None, 88, 32, None)
    assert raw["hex"] == "01" + "00" * 31


def test_header_update_four_raw_bytes_carry_the_dec_value():
    rec = (
        "record: offset=40, type=header-update (ext), size=16\n"
        " - offset = 80, size = 4: cff70a6b (dec=1795880911)\n"
    )
    (field,) = payload(rec)["fields"]
    assert (field["hex"], field["value"]) == ("cff70a6b", 1795880911)


def test_header_update_too_large():
    rec = "record: offset=344, type=header-update, size=16\n"
    rec += " - offset = 60, size = 200 (too large)\n"
    (field,) = payload(rec)["fields"]
    assert field["too_large"] and field["hex"] is None and field["size"] == 200


def test_ext_intro_with_and_without_name():
    named = """\
record: offset=68, type=ext-intro (ext), size=44
 - ext_id = 4294967295
 - reset_id = 0
 - hdr_size = 4
 - record_size = 0
 - record_align = 0
 - flags = 1
 - name_size = 13
 - name = 'hdr-pop3-uidl'
"""
    intro = payload(named)
    assert intro["ext_id"] == 4294967295 and intro["name"] == "hdr-pop3-uidl"
    unnamed = "\n".join(named.split("\n")[:8]).replace("= 13", "= 0") + "\n"
    assert payload(unnamed)["name"] is None


def test_ext_reset():
    rec = (
        "record: offset=276, type=ext-reset (ext), size=16\n"
        " - new_reset_id = 1795880911\n - preserve_data = 0\n"
    )
    assert payload(rec) == {"new_reset_id": 1795880911, "preserve_data": 0}


def test_ext_hdr_and_ext_hdr32():
    hdr = "record: offset=112, type=ext-hdr (ext), size=16\n"
    hdr += " - offset = 0, size = 4: 00000000 (dec=0)\n"
    hdr32 = "record: offset=172, type=ext-hdr32, size=20\n - offset = 0, size = 100 (too large)\n"
    three = "record: offset=192, type=ext-hdr, size=16\n - offset = 2, size = 3: 616263\n"
    assert payload(hdr) == {
        "offset": 0,
        "size": 4,
        "hex": "00000000",
        "value": 0,
        "too_large": False,
    }
    assert payload(hdr32)["too_large"] is True
    assert payload(three) == {
        "offset": 2,
        "size": 3,
        "hex": "616263",
        "value": None,
        "too_large": False,
    }


def test_ext_rec_items_with_dec_without_and_too_large():
    rec = """\
record: offset=208, type=ext-rec, size=28
 - uid=1: 88030000 (dec=904)
 - uid=5: 3132333435363738
 - uid=6: (record_size too large)
"""
    items = payload(rec)["items"]
    assert items[0] == {"uid": 1, "hex": "88030000", "value": 904, "too_large": False}
    assert items[1]["value"] is None and items[1]["hex"] == "3132333435363738"
    assert items[2] == {"uid": 6, "hex": None, "value": None, "too_large": True}


def test_ext_atomic_inc_signed_diffs():
    rec = "record: offset=236, type=ext-atomic-inc, size=32\n"
    rec += " - uid=5: +3\n - uid=6: -2\n - uid=7: 0\n"
    diffs = [item["diff"] for item in payload(rec)["items"]]
    assert diffs == [3, -2, 0]


def test_keyword_update():
    rec = "record: offset=1856, type=keyword-update, size=28, modseq=22\n"
    rec += " - modify=1, name=kwtwo, uids=2-2,4-6,\n"
    assert payload(rec) == {"modify": 1, "name": "kwtwo", "ranges": [[2, 2], [4, 6]]}


def test_boundary():
    assert payload("record: offset=56, type=boundary (ext), size=12\n - size=172\n") == {
        "size": 172
    }


def test_attribute_update_entries_and_broken_entry():
    rec = """\
record: offset=376, type=attribute-update, size=32, modseq=9
 - add: private/comment : timestamp=2026-11-28 15:49:19 value_len=5
 - remove: shared/bar : timestamp=2023-11-14 22:13:21
record: offset=408, type=attribute-update, size=20, modseq=10
 - broken entry
"""
    first, second = log_records(rec)
    assert first["payload"]["entries"] == [
        {
            "op": "add",
            "scope": "private",
            "key": "comment",
            "timestamp": "2026-11-28 15:49:19",
            "value_len": 5,
        },
        {
            "op": "remove",
            "scope": "shared",
            "key": "bar",
            "timestamp": "2023-11-14 22:13:21",
            "value_len": None,
        },
    ]
    assert second["payload"] == {"broken": True, "entries": []}


def test_index_deleted_and_unknown_types_have_no_payload():
    records = log_records(
        "record: offset=268, type=index-deleted, size=12\n"
        "record: offset=280, type=index-undeleted (ext), size=12\n"
        "record: offset=292, type=unknown: 24000000 (sync), size=12\n"
        "record: offset=64, type=unknown: 1, size=16\n"
    )
    assert [(r["type"], r["external"], r["sync"]) for r in records] == [
        ("index-deleted", False, False),
        ("index-undeleted", True, False),
        ("unknown: 24000000", False, True),
        ("unknown: 1", False, False),
    ]
    assert all(r["payload"] is None for r in records)


def test_broken_size_record_ends_the_dump():
    (record,) = log_records("record: offset=564, type=unknown: 0, size=broken (0)\n")
    assert record["size"] is None and record["raw_size"] == 0 and record["payload"] is None
    with pytest.raises(ValueError, match="after a broken record"):
        log_records(
            "record: offset=564, type=append, size=broken (80800307)\n"
            "record: offset=600, type=boundary, size=12\n - size=12\n"
        )


def test_output_cut_inside_a_record_is_reported_as_truncated():
    dump = parse_log_dump(
        LOG_HEADER + "record: offset=408, type=boundary, size=12\n - size=20\n"
        "record: offset=428, type=append, size=24"
    )
    assert dump["truncated"] is True
    assert dump["records"][-1]["payload"] is None and dump["records"][-1]["modseq"] is None


def test_log_payload_line_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match="uids=1-2"):
        log_records("record: offset=40, type=append, size=16\n - uids=1-2,\n")
    with pytest.raises(ValueError, match="unknown log record type"):
        log_records("record: offset=40, type=appendix, size=16\n")


# ---------------------------------------------------------------------------
# dbox dump

SDBOX_FILE = """\
file.msg_header_size = 30
file.create_stamp = 1795880911 (2026-11-28 15:48:31)

offset 16:
msg.size = 564
msg.received = 1795880911 (2026-11-28 15:48:31)
msg.virtual-size = 587
msg.guid = 0fd9821ccff70a6b2f1a000083ecc375

"""

ODD_DBOX_FILE = """\
file.msg_header_size = 30
file.create_stamp = 0 (1970-01-01 00:00:00)
file.unknown-A = 10

offset 18:
msg.size = 15
msg.guid = guidone
msg.pop3-uidl = uidl-1
msg.pop3-order = 3
msg.received = 0 (1970-01-01 00:00:00)
msg.physical-size = 16
msg.ext-ref = 0 10 0 ref
msg.orig-mailbox = Some Box
msg.obsolete-E =\x20
msg.obsolete-  = pad

offset 148:
msg.size = 2
msg.guid = g2

"""


def test_sdbox_file_header_and_message():
    assert parse_dbox_dump(SDBOX_FILE) == {
        "header": {"msg_header_size": 30, "create_stamp": 1795880911},
        "messages": [
            {
                "offset": 16,
                "size": 564,
                "received": 1795880911,
                "virtual-size": 587,
                "guid": "0fd9821ccff70a6b2f1a000083ecc375",
            }
        ],
    }


def test_dbox_all_metadata_keys_unknown_header_keys_and_several_messages():
    dump = parse_dbox_dump(ODD_DBOX_FILE)
    assert dump["header"]["unknown-A"] == "10"
    first, second = dump["messages"]
    assert first["pop3-uidl"] == "uidl-1" and first["pop3-order"] == "3"
    assert first["physical-size"] == 16 and first["orig-mailbox"] == "Some Box"
    assert first["obsolete-E"] == "" and first["obsolete- "] == "pad"
    assert second == {"offset": 148, "size": 2, "guid": "g2"}


def test_dbox_file_without_messages():
    assert parse_dbox_dump(SDBOX_FILE.split("offset")[0])["messages"] == []


def test_dbox_unrecognised_metadata_line_is_rejected():
    with pytest.raises(ValueError, match=r"msg\.colour"):
        parse_dbox_dump(SDBOX_FILE.replace("msg.guid", "msg.colour"))


# ---------------------------------------------------------------------------
# Date helpers


def test_unixdate2str_matches_doveadm_format_in_a_given_zone():
    assert unixdate2str(1795880911, UTC) == "2026-11-28 15:48:31"
    assert unixdate2str(0, timezone(timedelta(hours=2))) == "1970-01-01 02:00:00"


def test_unixdate_range_covers_a_minute_for_the_cache_table_date():
    assert unixdate_range("2026-11-28 15:48:31") == (1795880911, 1795880911)
    assert unixdate_range("2026-11-28 15:48") == (1795880880, 1795880939)
