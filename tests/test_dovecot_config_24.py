"""``scan --dovecot-config`` on stores that Dovecot 2.4 built, under a 2.4
configuration read by 2.4's doveconf, finds exactly the mailboxes 2.4's
``doveadm mailbox list`` shows for each user: maildir (Maildir++ and LAYOUT=fs),
sdbox, mdbox and split index/control paths, and a user whose userdb fields give a
location of its own.

Without the chroot (``scripts/setup-dovecot24``) or root these tests skip; with
CI=true they fail.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from config_stores import MAILBOXES, OWN_USER
from config_stores24 import LOCATIONS_24, build
from test_dovecot_config import found_mailboxes, scan_ndjson

from conftest import need_dovecot24


@pytest.fixture(scope="module", params=sorted(LOCATIONS_24))
def built24(request):
    chroot = need_dovecot24()
    stores = build(request.param, chroot)
    yield stores
    stores.remove()
    shutil.rmtree(stores.base, ignore_errors=True)


def test_scan_finds_what_24s_doveadm_lists(built24, tmp_path: Path) -> None:
    status, lines = scan_ndjson(tmp_path, "--dovecot-config", str(built24.conf),
                                "--doveconf", f"chroot {built24.chroot} doveconf")
    assert status == 0, lines
    shown = {user: built24.mailbox_list(user) for user in MAILBOXES}
    assert all(len(boxes) > 1 for boxes in shown.values()), shown  # 2.4 made them all
    assert found_mailboxes(lines) == shown
    own = [line for line in lines if line["type"] == "mailbox"
           and line["user"] == OWN_USER and line["mailbox"] == "INBOX"]
    assert own[0]["format"] == "mdbox"  # its userdb_mail_driver, not the global one
    assert str(built24.base / "index2" / "carol") in own[0]["path"]
