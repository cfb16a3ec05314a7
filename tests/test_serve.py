"""``serve`` over real HTTP: tokens, tenant isolation, the status JSON and the Atom feed."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import feedparser
import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from waitress import create_server

from conftest import FIXTURES
from dovecot_index_tool.cli import main
from dovecot_index_tool.serve import create_app
from dovecot_index_tool.serve_contract import RateLimit, load_tokens, openapi, token_hash

OPERATOR, ORG, NET = (
    "operator-token-0123456789",
    "org-token-0123456789abc",
    "net-token-0123456789abc",
)


def damage(index: Path) -> None:
    data = bytearray(index.read_bytes())
    data[40] += 1
    index.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> str:
    base = tmp_path_factory.mktemp("serve")
    vol, db = base / "vol", str(base / "db")
    for tenant, user in (("example.org", "alice"), ("example.net", "nick")):
        shutil.copytree(FIXTURES / "sdbox/bob", vol / tenant / user)
        damage(vol / tenant / user / "sdbox/mailboxes/INBOX/dbox-Mails/dovecot.index")
    CliRunner().invoke(main, ["scan", "--db", db, "-q", "--layout", "{domain}/{user}", str(vol)])
    return db


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The operator's token as a hash in the file, the tenants' as themselves."""
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    path.write_text(f"sha256:{token_hash(OPERATOR)} *  # the operator\n"
                    f"{ORG} example.org\n{NET} example.net\n")
    return load_tokens(path)


@pytest.fixture(scope="module")
def server(ledger: str, tokens: dict[str, str]):
    srv = create_server(create_app(ledger, tokens), host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}"
    srv.close()


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def mailboxes(status: dict) -> list[dict]:
    return [c for c in status["components"] if not c["group"]]


def test_no_token_or_a_wrong_one_is_refused(server: str) -> None:
    assert get(f"{server}/status.json")[0] == 401
    assert get(f"{server}/status.json", "wrong-token-0123456789")[0] == 401


def test_a_tenant_token_never_shows_another_tenants_mailboxes(server: str) -> None:
    for token, mine, other in ((ORG, "alice", "nick"), (NET, "nick", "alice")):
        status = json.loads(get(f"{server}/status.json", token)[1])
        assert {c["user"] for c in mailboxes(status)} == {mine}
        assert status["status"]["indicator"] == "major"
        paths = [p for p in openapi()["paths"]]
        for path in (*paths, "/status.json?tenant=example.org", "/feed.atom?tenant=example.net"):
            body = get(f"{server}{path}", token)[1].decode()
            assert other not in body


def test_the_operator_sees_every_tenant_or_one(server: str) -> None:
    status = json.loads(get(f"{server}/status.json", OPERATOR)[1])
    assert {c["user"] for c in mailboxes(status)} == {"alice", "nick"}
    one = json.loads(get(f"{server}/status.json?tenant=example.net", OPERATOR)[1])
    assert {c["user"] for c in mailboxes(one)} == {"nick"}


def test_the_atom_feed_parses_with_a_real_feed_parser(server: str) -> None:
    status, body = get(f"{server}/feed.atom", ORG)
    assert status == 200
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.bozo_exception
    assert feed.entries and all("alice" in e.title for e in feed.entries)


def test_the_page_is_html_with_the_tenants_counts(server: str) -> None:
    status, body = get(f"{server}/", ORG)
    assert status == 200 and b"alice" in body
    summary = body.split(b'<ul id="summary">', 1)[1].split(b"</ul>", 1)[0]
    assert b'<strong class="tenant">example.org</strong>: ' in summary
    assert b"1 affected" in summary and b"example.net" not in summary


def test_a_port_in_use_is_one_line_and_exit_8_before_it_says_serving(tmp_path):
    import socket

    db = tmp_path / "ledger.sqlite3"
    CliRunner().invoke(main, ["scan", "-q", "--db", str(db), str(FIXTURES / "maildir")])
    tokens = tmp_path / "tokens"
    tokens.write_text("0123456789abcdefXYZ *\n")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        result = CliRunner().invoke(main, ["serve", "--db", str(db), "--tokens", str(tokens),
                                           "--port", str(port)])
    finally:
        busy.close()

    assert result.exit_code == 8, result.output
    assert "cannot serve on" in result.stderr and "serving on" not in result.output


def test_status_json_is_read_unchanged_by_a_statuspage_summary_client(server: str) -> None:
    from statuspage_client import parse

    summary = parse(json.loads(get(f"{server}/status.json", ORG)[1]))
    assert summary.indicator == "major" and summary.description == "Partial System Outage"
    (alice,) = [c for c in summary.components if not c.group]
    group = summary.groups()[alice.group_id]
    assert alice.id in group.components and group.status == alice.status == "partial_outage"
    extra = alice.extra
    assert (extra["user"], extra["mailbox"], extra["state"], extra["worst"]) == (
        "alice", "INBOX", "affected", "error")
    assert isinstance(extra["checks"], list) and extra["checks"]
    assert extra["first_seen"].endswith("Z") and extra["usable_at"] is None
    (incident,) = summary.incidents
    assert incident["status"] == "investigating"
    assert incident["components"][0]["id"] == alice.id
    assert "1 mailbox affected, 0 usable again" in incident["incident_updates"][0]["body"]


def test_tokens_are_kept_only_as_hashes(tokens: dict[str, str]) -> None:
    assert OPERATOR not in tokens and ORG not in tokens
    assert tokens[token_hash(ORG)] == "example.org" and tokens[token_hash(OPERATOR)] == "*"


def test_a_token_that_asks_too_fast_is_told_to_wait_and_the_others_are_not(
        ledger: str, tokens: dict[str, str]) -> None:
    client = create_app(ledger, tokens, RateLimit(rate=0.01, burst=2)).test_client()
    org = {"Authorization": f"Bearer {ORG}"}
    assert [client.get("/status.json", headers=org).status_code for _ in range(3)] == [
        200, 200, 429]
    refused = client.get("/status.json", headers=org)
    assert int(refused.headers["Retry-After"]) > 0
    assert client.get("/status.json", headers={"Authorization": f"Bearer {NET}"}).status_code \
        == 200


def test_openapi_describes_every_endpoint_with_bearer_security(server: str) -> None:
    status, body = get(f"{server}/openapi.json")
    doc = json.loads(body)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/", "/status.json", "/feed.atom", "/openapi.json"}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_serve_keeps_its_openapi_contract(ledger: str, tokens: dict[str, str]) -> None:
    """schemathesis generates requests from /openapi.json and checks every answer."""
    app = create_app(ledger, tokens, RateLimit(rate=1000, burst=1000))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {o.path for o in operations} >= {"/", "/status.json", "/feed.atom"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            for token in (OPERATOR, ORG):
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"})

        check()
