"""The HTML report as a person sees it in headless Chromium (Debian's ``chromium``).

Chromium is driven over its DevTools pipe (``--remote-debugging-pipe``: JSON messages
ending in NUL on fds 3 and 4), so the test reads the text the browser laid out
(``innerText`` leaves out what is not rendered), the badges' computed colours and
boxes, and takes a screenshot, with JavaScript disabled for the page as a mail
client or a strict browser would have it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, IN_CI
from dovecot_index_tool.cli import main
from dovecot_index_tool.present.html_page import BADGES

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]
WIDTH = 1280


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if IN_CI:
            pytest.fail("chromium is not installed, but CI=true requires the browser test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


class DevTools:
    """A minimal DevTools client over the pipe: one page, commands answered in order."""

    def __init__(self, browser: str, home: Path) -> None:
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_child} 4>&{from_child}', browser, *FLAGS,
             f"--user-data-dir={home / 'profile'}", "about:blank"],
            pass_fds=(to_child, from_child), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**os.environ, "HOME": str(home)},
        )
        os.close(to_child)
        os.close(from_child)
        self._buf, self._id, self.session = b"", 0, None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def send(self, method: str, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]

    def wait_for(self, event: str) -> None:
        while self._next().get("method") != event:
            pass

    def _next(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._r, 1 << 16)
            assert chunk, "chromium closed its DevTools pipe"
            self._buf += chunk
        line, self._buf = self._buf.split(b"\0", 1)
        return json.loads(line)

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"]["value"]

    def close(self) -> None:
        try:
            self.send("Browser.close")
        finally:
            os.close(self._w)
            os.close(self._r)
            self.proc.wait(timeout=30)


def open_page(browser: str, tmp_path: Path, page: Path) -> tuple[DevTools, int]:
    """The page loaded without JavaScript, in a window as tall as the page."""
    tools = DevTools(browser, tmp_path)
    tools.send("Page.enable")
    tools.send("Emulation.setScriptExecutionDisabled", value=True)
    tools.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=800,
               deviceScaleFactor=1, mobile=False)
    tools.send("Page.navigate", url=page.as_uri())
    tools.wait_for("Page.loadEventFired")
    height = tools.evaluate("document.documentElement.scrollHeight")
    tools.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height,
               deviceScaleFactor=1, mobile=False)
    return tools, height


def pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB(A) rows of an 8-bit truecolour PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width = 8, b"", 0
    while pos < len(png):
        size, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + size]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + size
    raw, stride, rows, prev = zlib.decompress(data), width * bpp, [], bytes(width * bpp)
    for y in range(height):
        at = y * (stride + 1)
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i:i + 3]) for r in rows for i in range(0, stride, bpp)]


def incident(tmp_path: Path) -> Path:
    """Four users, three damaged: one repaired by hand and scanned again, one queued
    with no worker, one only affected; the page of that ledger."""
    vol, db = tmp_path / "vol", str(tmp_path / "db")
    for user in ("u1", "u2", "u3", "u4"):
        shutil.copytree(FIXTURES / "sdbox/bob", vol / user)
    for user in ("u1", "u2", "u3"):
        index = vol / user / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index"
        data = bytearray(index.read_bytes())
        data[40] += 1
        index.write_bytes(bytes(data))
    runner = CliRunner()
    runner.invoke(main, ["scan", "--db", db, "-q", str(vol)])
    shutil.rmtree(vol / "u3")
    shutil.copytree(FIXTURES / "sdbox/bob", vol / "u3")
    runner.invoke(main, ["scan", "--db", db, "-q", str(vol)])
    runner.invoke(main, ["queue", "add", "--db", db, "--user", "u1"])
    page = tmp_path / "status.html"
    page.write_text(runner.invoke(main, ["report", "--db", db, "--format", "html"]).output)
    return page


def test_a_person_sees_the_counts_the_states_and_why_no_time_is_given(tmp_path: Path) -> None:
    browser = chromium()
    tools, height = open_page(browser, tmp_path, incident(tmp_path))
    try:
        text = tools.evaluate("document.body.innerText")
        badges = tools.evaluate("""[...document.querySelectorAll('#mailboxes .badge')].map(b => {
            const r = b.getBoundingClientRect(), s = getComputedStyle(b);
            return [b.innerText, s.backgroundColor, r.width, r.height]; })""")
        chart = tools.evaluate("""(() => { const r = document.querySelector('#chart')
            .getBoundingClientRect(); return [r.width, r.height,
            [...document.querySelectorAll('#chart text')].map(t => t.textContent)]; })()""")
        shot = base64.b64decode(tools.send("Page.captureScreenshot", format="png")["data"])
    finally:
        tools.close()
    assert re.search(r"^no tenant: 3 affected, 1 usable again, 2 waiting; next expected: "
                     r"unknown \(1 no repair queued, 1 no worker\)$", text, re.M), text
    assert sorted(b[0] for b in badges) == ["affected", "queued", "repaired"]
    colours = {b[0]: b[1] for b in badges}
    assert len(set(colours.values())) == 3 and "rgba(0, 0, 0, 0)" not in colours.values()
    assert all(w > 20 and h > 8 for _, _, w, h in badges)
    assert "unknown: no worker" in text and "unknown: no repair queued" in text
    width, tall, labels = chart
    assert width > 400 and tall > 200
    assert {"affected", "usable again", "complete", "mailboxes"} <= set(labels)

    (tmp_path / "page.png").write_bytes(shot)
    assert len(shot) > 20_000
    w, h, px = pixels(shot)
    assert (w, h) == (WIDTH, height)
    assert len(set(px)) > 50  # text, badges, bars: not a blank or one-colour page
    queued = bytes.fromhex(BADGES["queued"][0][1:])
    assert px.count(queued) > 100  # the queued badge is drawn in its colour
