"""mime.parts: the MIME tree Dovecot caches, decoded from the bytes real Dovecot wrote."""

from __future__ import annotations

import re
import struct

import pytest

from conftest import FIXTURES
from dovecot_index_tool.format.errors import FormatError
from dovecot_index_tool.format.mime_parts import decode_mime_parts
from dovecot_index_tool.present.dump_view import mime_parts_text

# doveadm dump of the mdbox fixture's INBOX index: each mime.parts line is
# "(hex) (tree)"; the multipart one (uid 17, flags=41) has two children
DUMP = FIXTURES / "dumps/mdbox/carol/mdbox/mailboxes/INBOX/dbox-Mails/dovecot.index.txt"


def _printed() -> list[tuple[bytes, str]]:
    found = []
    for line in DUMP.read_text().splitlines():
        m = re.search(r"- mime\.parts: \(([0-9a-f]+)\) (\(.*\))$", line)
        if m:
            found.append((bytes.fromhex(m.group(1)), m.group(2)))
    return found


MULTIPART, DOVEADM = next((raw, text) for raw, text in _printed() if "flags=41" in text)


def test_every_cached_tree_reads_as_doveadm_printed_it():
    printed = _printed()
    assert len(printed) > 10
    for raw, text in printed:
        assert mime_parts_text(decode_mime_parts(raw, "<")) == text


def test_multipart_tree_has_its_children_and_their_lines():
    root = decode_mime_parts(MULTIPART, "<")
    assert [c["body_lines"] for c in root["children"]] == [7, 0]
    assert mime_parts_text(root) == DOVEADM


def test_truncated_tree_names_the_offset():
    with pytest.raises(FormatError) as err:
        decode_mime_parts(MULTIPART[:-6], "<")
    assert err.value.offset is not None and err.value.field.startswith("mime.parts")


def test_huge_children_count_is_refused_before_walking():
    root = struct.pack("<I4QI", 0x01, 1, 1, 1, 1, 0xFFFFFFFF)
    with pytest.raises(FormatError, match="more children"):
        decode_mime_parts(root, "<")


def test_trailing_bytes_are_damage():
    with pytest.raises(FormatError, match="after the last part"):
        decode_mime_parts(MULTIPART + b"\0", "<")


@pytest.mark.parametrize("bo", ["<", ">"])
def test_a_one_part_tree_is_judged_as_dovecots_full_walk_judges_it(bo: str) -> None:
    """The one-unpack path for childless parts says what the step-by-step walk says."""
    import random
    import struct

    from dovecot_index_tool.format import mime_parts

    draw = random.Random(7)
    for _ in range(500):
        flags = draw.choice([0, mime_parts.TEXT, mime_parts.MULTIPART, mime_parts.MESSAGE_RFC822,
                             mime_parts.TEXT | 0x40])
        sizes = [draw.randrange(0, 5) for _ in range(4)]
        data = struct.pack(bo + "I4Q", flags, *sizes)
        if draw.random() < 0.5:
            data += struct.pack(bo + "I", draw.randrange(3))
        walker = mime_parts._Deserializer(data, mime_parts.for_order(bo))
        try:
            walker.parts(None, 1, 0)
            slow = None if walker.at == len(data) else "Too much data"
        except mime_parts._Refused as err:
            slow = str(err)
        assert mime_parts.deserialize_problem(data, bo) == slow, (flags, sizes, len(data))
