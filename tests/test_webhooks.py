"""Webhooks: signed state-change events reach a receiver on 127.0.0.1, after a failed
first attempt too, for the subscribed tenant only, with every attempt in the ledger."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from dovecot_index_tool.cli import main
from dovecot_index_tool.ledger.store import Ledger
from dovecot_index_tool.ledger.webhooks import Webhooks
from dovecot_index_tool.webhook_delivery import BACKOFF_BASE, SIGNATURE_HEADER, deliver_due

SECRET = "s3cret-for-the-test"


class Receiver(ThreadingHTTPServer):
    """Checks each POST's signature; answers ``first_status`` to the first attempt at
    each event, then 204."""

    def __init__(self, first_status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.first_status = first_status
        self.events: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.bad_signatures = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Receiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not valid(self.headers.get(SIGNATURE_HEADER, ""), body):
            server.bad_signatures += 1
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        tries = server.attempts[event["id"]] = server.attempts.get(event["id"], 0) + 1
        if tries == 1:
            self.send_response(server.first_status)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
            return
        server.events.append(event)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def valid(header: str, body: bytes) -> bool:
    """The receiver's side of the signature: ``t=UNIX,v1=HMAC(secret, UNIX.body)``, fresh."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if abs(time.time() - int(fields.get("t", "0"))) > 300:
        return False
    mac = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), fields.get("v1", ""))


@pytest.fixture(params=[500, 302])
def receiver(request):
    server = Receiver(request.param)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 4), result.output
    return result.output


def damaged_tenants(base: Path, db: str) -> None:
    vol = base / "vol"
    for tenant, user in (("example.org", "alice"), ("example.net", "nick")):
        shutil.copytree(FIXTURES / "sdbox/bob", vol / tenant / user)
        index = vol / tenant / user / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index"
        data = bytearray(index.read_bytes())
        data[40] += 1
        index.write_bytes(bytes(data))
    invoke("scan", "--db", db, "-q", "--layout", "{domain}/{user}", str(vol))


def test_a_signed_event_reaches_the_receiver_after_a_failed_first_attempt(
        receiver, ledger_target, tmp_path):
    db = ledger_target
    invoke("scan", "--db", db, "-q", str(FIXTURES / "maildir"))  # the ledger exists
    invoke("report", "webhooks", "add", "--db", db, "--tenant", "example.org",
           "--url", receiver.url, "--secret", SECRET)
    damaged_tenants(tmp_path, db)
    invoke("queue", "add", "--db", db, "--user", "alice")

    invoke("report", "deliver", "--db", db, "--once")  # the first attempts fail
    assert receiver.events == [] and set(receiver.attempts.values()) == {1}
    hooks = Webhooks(Ledger.open(db).db)
    assert deliver_due(hooks) == []  # not due again before the backoff
    later = time.time() + BACKOFF_BASE + 1
    assert all(a.ok for a in deliver_due(hooks, now=later))

    assert receiver.bad_signatures == 0
    changes = [(e["old_state"], e["new_state"]) for e in receiver.events]
    assert changes == [(None, "affected"), ("affected", "queued")]
    assert {e["tenant"] for e in receiver.events} == {"example.org"}  # never example.net
    assert {e["component"]["user"] for e in receiver.events} == {"alice"}
    assert all(e["component"]["status"] for e in receiver.events)
    log = hooks.log()
    assert [row["status"] for row in log] == [receiver.first_status] * 2 + [204] * 2
    invoke("report", "deliver", "--db", db, "--once")  # nothing is sent twice
    assert len(receiver.events) == 2


def test_webhooks_are_listed_and_removed(tmp_path):
    db = str(tmp_path / "db")
    invoke("scan", "--db", db, "-q", str(FIXTURES / "maildir"))
    out = invoke("report", "webhooks", "add", "--db", db, "--tenant", "example.org",
                 "--url", "https://status.example.org/hook")
    assert "secret: " in out
    listed = json.loads(invoke("report", "webhooks", "list", "--db", db, "--format", "json"))
    assert [(w["tenant"], w["url"]) for w in listed["webhooks"]] == [
        ("example.org", "https://status.example.org/hook")]
    assert "secret" not in json.dumps(listed)
    invoke("report", "webhooks", "remove", "--db", db, str(listed["webhooks"][0]["id"]))
    assert json.loads(invoke("report", "webhooks", "list", "--db", db, "--format",
                             "json"))["webhooks"] == []
    bad = CliRunner().invoke(main, ["report", "webhooks", "add", "--db", db, "--tenant", "t",
                                    "--url", "ftp://x"])
    assert bad.exit_code == 16 and "Traceback" not in bad.output
