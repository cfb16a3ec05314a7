"""Repairs through Dovecot 2.4 in a chroot (``--doveadm 'chroot DIR doveadm'``) keep what
2.3 repairs keep: every message, flag, keyword, UID and UIDVALIDITY.

The stores are copies of the 2.4 fixtures, fresh and aged (an old ``.log.2`` is
deleted by Dovecot while it repairs), bind-mounted into the chroot at the same path.
Without the chroot (``scripts/setup-dovecot24``) these tests skip; with CI=true they fail.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from click.testing import CliRunner
from test_rebuild import STORES, _files_owned_by_others, _needs_repair, _repair

from damage import STORE_AGES, truncate
from dovecot_index_tool.cli import main
from dovecot_index_tool.repair.doveadm import DoveadmCommand, DovecotSetup
from dovecot_index_tool.repair.doveadm_command import PathMap
from mail_sandbox import Sandbox


@pytest.fixture(params=sorted(STORE_AGES))
def sandbox24(request):
    box = Sandbox.create(request.param, dovecot24=True)
    yield box
    box.remove()


def _shown(sandbox: Sandbox, store) -> tuple[dict, int, int]:
    """What Dovecot 2.4 shows of the store, asked of a throwaway copy."""
    oracle = sandbox.throwaway(store)
    return (sandbox.fetch(oracle), sandbox.status(oracle, "uidvalidity"),
            sandbox.status(oracle, "highestmodseq"))


@pytest.mark.parametrize("name", STORES)
def test_24_truncated_index_is_rebuilt_with_every_message_flag_and_uid(sandbox24, name,
                                                                      tmp_path):
    store = sandbox24.store(name)
    before, validity, modseq = _shown(sandbox24, store)
    assert any(len(flags) > 2 for _, flags in before.values())  # keywords are at stake
    index = store.index("INBOX")
    truncate(index, index.stat().st_size // 2)

    plans, outcomes = _repair(store, tmp_path / "backups", sandbox24.setup())

    assert [o.state for o in outcomes] == ["repaired"] * len(plans), outcomes
    assert sandbox24.fetch(store) == before
    assert sandbox24.status(store, "uidvalidity") == validity
    assert sandbox24.status(store, "highestmodseq") >= modseq
    assert outcomes[0].lost == ()
    assert _needs_repair(store) == []
    assert _files_owned_by_others(store, sandbox24.uid) == []


@pytest.mark.parametrize("name", ["maildir", "mdbox"])
def test_24_random_bytes_in_the_index_come_back_with_exactly_the_flags(sandbox24, name,
                                                                      tmp_path):
    store = sandbox24.store(name)
    before, validity, _ = _shown(sandbox24, store)
    index = store.index("INBOX")
    data = bytearray(index.read_bytes())
    data[700:764] = random.Random(7).randbytes(64)
    index.write_bytes(bytes(data))

    _, outcomes = _repair(store, tmp_path / "backups", sandbox24.setup())

    assert [o.state for o in outcomes] == ["repaired"], outcomes
    assert sandbox24.fetch(store) == before
    assert sandbox24.status(store, "uidvalidity") == validity


def test_24_repair_command_reaches_doveadm_in_the_chroot(sandbox24, tmp_path):
    store = sandbox24.store("sdbox")
    before, validity, _ = _shown(sandbox24, store)
    index = store.index("INBOX")
    truncate(index, index.stat().st_size // 2)
    home, _, _ = store.check_args()

    result = CliRunner().invoke(main, [
        "repair", "--yes", "--json", "--backup-dir", str(tmp_path / "backups"),
        "--dovecot-config", str(sandbox24.conf),
        "--doveadm", f"chroot {sandbox24.chroot} doveadm", str(home)])

    assert result.exit_code == 1, result.output  # problems corrected
    states = [o["state"] for o in json.loads(result.stdout)["outcomes"]]
    assert states == ["repaired"]
    assert sandbox24.fetch(store) == before
    assert sandbox24.status(store, "uidvalidity") == validity


def test_24_repair_through_a_path_map_when_doveadm_sees_other_paths(sandbox24, tmp_path):
    """The store is also mounted at /mnt/dit-mapped in the chroot, and doveadm is given
    only that path: every path it is given goes through the map."""
    store = sandbox24.store("maildir-split")
    before, validity, _ = _shown(sandbox24, store)
    truncate(store.index("INBOX"), store.index("INBOX").stat().st_size // 2)
    inside = sandbox24.chroot / "mnt" / "dit-mapped"
    inside.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(sandbox24.base), str(inside)], check=True)
    try:
        command = DoveadmCommand(sandbox24.command().argv,
                                 (PathMap(str(sandbox24.base), "/mnt/dit-mapped"),))
        setup = DovecotSetup(config=str(sandbox24.conf), doveadm=command)
        cmd, env = setup.for_mailbox(*_inbox(store)).command("index", "INBOX")
        assert str(sandbox24.base) not in " ".join(cmd[4:]) + env["HOME"]

        _, outcomes = _repair(store, tmp_path / "backups", setup)
    finally:
        subprocess.run(["umount", str(inside)], check=False)
        inside.rmdir()

    assert [o.state for o in outcomes] == ["repaired"], outcomes
    assert sandbox24.fetch(store) == before
    assert sandbox24.status(store, "uidvalidity") == validity


def _inbox(store):
    from dovecot_index_tool.repair.incident import plan_path

    home, index_root, control_root = store.check_args()
    plan = next(p for p in plan_path(home, index_root, control_root))
    return plan.root, plan.location
