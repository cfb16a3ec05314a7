"""The HTML report opens in headless Chromium (Debian's ``chromium``) with the right counts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, IN_CI
from dovecot_index_tool.cli import main

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if IN_CI:
            pytest.fail("chromium is not installed, but CI=true requires the browser test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def test_html_report_shows_the_incident_counts_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    vol, db = tmp_path / "vol", str(tmp_path / "db")
    users = ["u1", "u2", "u3", "u4"]
    for user in users:
        shutil.copytree(FIXTURES / "sdbox/bob", vol / user)
    for user in users[:3]:  # an incident: three of four users damaged
        index = vol / user / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index"
        data = bytearray(index.read_bytes())
        data[40] += 1
        index.write_bytes(bytes(data))
    runner = CliRunner()
    runner.invoke(main, ["scan", "--db", db, "-q", str(vol)])
    runner.invoke(main, ["queue", "add", "--db", db, "--user", "u1"])
    page = tmp_path / "status.html"
    page.write_text(runner.invoke(main, ["report", "--db", db, "--format", "html"]).output)
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "HOME": str(tmp_path)},
    ).stdout
    rows = re.findall(r"<tr>(.*?)</tr>", dom.split('id="mailboxes"', 1)[1].split("<tbody>", 1)[1])
    assert len(rows) == 3
    volume_row = re.search(
        r'id="per-volume".*?<tr><td>[^<]*</td>((?:<td>\d+</td>)+)</tr>', dom, re.S
    )
    counts = [int(x) for x in re.findall(r"<td>(\d+)</td>", volume_row.group(1))]
    assert counts[:2] == [2, 1]  # affected, queued (in the order of the column headings)
    assert 'id="chart"' in dom
