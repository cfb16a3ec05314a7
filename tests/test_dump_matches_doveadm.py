"""Every value ``doveadm dump`` prints equals what our parsers decode.

For each index prefix, log file and dbox file of the committed fixtures, the
text doveadm printed when the fixtures were made is parsed and compared with
our ``dump --json`` document. In CI the same comparison runs on a store made
freshly by ``scripts/make-fixtures``, so new Dovecot output is covered too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT
from doveadm_dump import parse_dbox_dump, parse_index_dump, parse_log_dump
from dovecot_index_tool.dump import build_dump
from dump_compare import Comparison, compare_index, compare_log

INDEX_PREFIXES = ("dovecot.index", "dovecot.list.index", "dovecot.map.index")


def dump_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(file in the store, doveadm's dump of it) for every dump under ``root/dumps``."""
    dumps = root / "dumps"
    if not dumps.exists():
        return []
    pairs = []
    for text in sorted(dumps.rglob("*.txt")):
        target = root / text.relative_to(dumps).with_suffix("")
        pairs.append((target, text))
    return pairs


def compare_pair(target: Path, text: Path, cmp: Comparison) -> None:
    where = str(target)
    name = target.name
    if name in INDEX_PREFIXES:
        compare_index(build_dump(str(target)), parse_index_dump(text.read_bytes()), cmp, where)
    elif name.endswith((".log", ".log.2")):
        compare_log(build_dump(str(target)), parse_log_dump(text.read_bytes()), cmp, where)
    elif name.startswith(("u.", "m.")):
        compare_dbox(build_dump(str(target)), parse_dbox_dump(text.read_bytes()), cmp, where)
    else:
        raise AssertionError(f"no comparison for {target}")


def compare_dbox(ours: dict, theirs: dict, cmp: Comparison, where: str) -> None:
    cmp.files += 1
    cmp.eq(f"{where} msg_header_size", ours["msg_header_size"], theirs["header"]["msg_header_size"])
    cmp.eq(f"{where} messages", len(ours["messages"]), len(theirs["messages"]))
    for mine, dove in zip(ours["messages"], theirs["messages"], strict=False):
        cmp.eq(f"{where} @{dove['offset']} offset", mine["offset"], dove["offset"])
        cmp.eq(f"{where} @{dove['offset']} size", mine["size"], dove["size"])
        cmp.eq(f"{where} @{dove['offset']} guid", mine["guid"], dove.get("guid"))


PAIRS = dump_pairs(FIXTURES)


@pytest.mark.parametrize(
    ("target", "text"), PAIRS, ids=[str(t.relative_to(FIXTURES)) for t, _ in PAIRS]
)
def test_committed_file_decodes_like_doveadm(target: Path, text: Path) -> None:
    assert_decodes_like_doveadm(target, text)


def assert_decodes_like_doveadm(target: Path, text: Path) -> None:
    """Every value of doveadm's dump ``text`` equals our decoding of ``target``."""
    cmp = Comparison()
    compare_pair(target, text, cmp)
    assert cmp.values > 0
    assert not cmp.differences, "\n".join(cmp.differences[:40])


def test_committed_fixtures_cover_every_kind_of_file() -> None:
    names = {t.name for t, _ in PAIRS}
    for wanted in ("dovecot.index", "dovecot.index.log", "dovecot.index.log.2",
                   "dovecot.list.index", "dovecot.map.index"):  # fmt: skip
        assert wanted in names
    assert any(n.startswith("u.") for n in names)
    assert any(n.startswith("m.") for n in names)


@pytest.mark.dovecot
def test_fresh_store_decodes_like_doveadm(fresh_store: Path) -> None:
    pairs = dump_pairs(fresh_store)
    assert len(pairs) > 20
    cmp = Comparison()
    for target, text in pairs:
        compare_pair(target, text, cmp)
    assert not cmp.differences, "\n".join(cmp.differences[:40])


@pytest.mark.dovecot
def test_dump_agrees_with_doveadm_while_dovecot_keeps_writing(fresh_store: Path) -> None:
    """A short seeded run of real Dovecot activity (the mail user exists once the fresh
    store is made); the script compares every index after every step."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dump-under-activity"), "--steps", "12",
         "--seed", "20261202"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " 0 differences" in done.stdout
