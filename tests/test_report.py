"""``report``: states from the ledger and queue, formats, and untrusted names escaped."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from conftest import FIXTURES
from dovecot_index_tool.cli import main

HOSTILE = 'eve<script>alert("x")<&'


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 4), result.output
    return result.output


def damage(index: Path) -> None:
    data = bytearray(index.read_bytes())
    data[40] += 1
    index.write_bytes(bytes(data))


def test_states_follow_the_incident_from_affected_to_repaired(tmp_path: Path) -> None:
    vol, db = tmp_path / "vol", str(tmp_path / "db")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / HOSTILE)
    for user in ("bob", HOSTILE):
        damage(vol / user / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index")
    run("scan", "--db", db, "-q", str(vol))
    rows = json.loads(run("report", "--db", db, "--format", "json"))["mailboxes"]
    assert {(r["user"], r["state"], r["worst"]) for r in rows} == {
        ("bob", "affected", "error"),
        (HOSTILE, "affected", "error"),
    }
    run("queue", "add", "--db", db, "--user", "bob")
    rows = json.loads(run("report", "--db", db, "--format", "json", "--state", "queued"))
    (queued,) = rows["mailboxes"]
    assert queued["user"] == "bob" and queued["eta"] >= queued["first_seen"]
    shutil.rmtree(vol / "bob")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "bob")  # repaired by hand
    run("scan", "--db", db, "-q", str(vol))
    states = {
        r["user"]: r["state"]
        for r in json.loads(run("report", "--db", db, "--format", "json"))["mailboxes"]
    }
    assert states == {"bob": "repaired", HOSTILE: "affected"}
    table = list(csv.DictReader(io.StringIO(run("report", "--db", db, "--format", "csv"))))
    assert {r["user"] for r in table} == {"bob", HOSTILE}


def test_html_page_escapes_every_untrusted_name(tmp_path: Path) -> None:
    vol, db = tmp_path / "vol", str(tmp_path / "db")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / HOSTILE)
    damage(vol / HOSTILE / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index")
    run("scan", "--db", db, "-q", str(vol))
    page = run("report", "--db", db, "--format", "html")
    assert "<script>" not in page
    assert "eve&lt;script&gt;alert(&quot;x&quot;)&lt;&amp;" in page
    assert 'id="per-volume"' in page and 'id="chart"' in page
