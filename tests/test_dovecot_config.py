"""Dovecot's configuration as the front door: doveconf's output, each user's store,
and scan/check/repair --dovecot-config on stores the real Dovecot built.

The ``*.n.txt`` files are what the real ``doveconf -n`` (2.3.19 on the host, 2.4.1 in
a Debian 13 chroot) printed for the ``*.conf`` beside them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from config_stores24 import config_24, users_24

from conftest import FIXTURES, IN_CI
from dovecot_index_tool.cli.app import main
from dovecot_index_tool.dovecot_config import doveconf as doveconf_module
from dovecot_index_tool.dovecot_config.doveconf import Doveconf
from dovecot_index_tool.dovecot_config.locations import LocationProblem, parse_mail_location
from dovecot_index_tool.dovecot_config.model import derive_store, user_stores
from dovecot_index_tool.dovecot_config.sections import parse_doveconf
from dovecot_index_tool.dovecot_config.userdb import UserEntry, passwd_file_userdbs
from dovecot_index_tool.dovecot_config.variables import VariableError, expand
from dovecot_index_tool.errors import DovecotConfigUnavailable, UsersNotListable

DOVECONF = FIXTURES / "doveconf"
DC24 = Path("/srv/dc24")


def recorded(name: str):
    return parse_doveconf((DOVECONF / f"{name}.n.txt").read_text())


# --- doveconf's output and one user's store (recorded outputs, no Dovecot needed) ----


def test_sections_and_version_of_real_outputs() -> None:
    config = recorded("23-maildir-split")
    assert config.version == "2.3.19.1"
    inbox = config.root.child("namespace", "inbox")
    assert inbox is not None and inbox.child("mailbox", "Sent").get("special_use") == "\\Sent"
    assert config.root.child("plugin").get("quota") == "maildir:User quota"
    config24 = recorded("24-maildir-split")
    assert config24.version.startswith("2.4.1")
    sent = config24.root.child("namespace", "inbox").child("mailbox", "Sent")
    assert sent.get("special_use") == "\\Sent"  # 2.4 prints it quoted
    assert config24.root.child("userdb", "passwd-file").child("fields").get("home")


def test_23_location_with_index_control_layout_and_mail_home() -> None:
    store = derive_store(recorded("23-maildir-split"), UserEntry("alice@example.org", ""),
                         "/srv/mail/%d/%n")
    assert store.problem is None
    assert store.home == Path("/srv/mail/example.org/alice")
    assert (store.format, store.layout) == ("maildir", "fs")
    assert store.mail_root == Path("/srv/mail/example.org/alice/Maildir")
    assert store.index_root == Path("/srv/index/example.org/alice")
    assert store.control_root == Path("/srv/control/alice@example.org")


def test_23_userdb_mail_overrides_and_inbox_namespace_location() -> None:
    own = UserEntry("bob@example.org", "/h/bob", {"mail": "mdbox:~/box:INDEX=/i/%n"})
    store = derive_store(recorded("23-maildir-split"), own)
    assert (store.format, store.mail_root, store.index_root) == (
        "mdbox", Path("/h/bob/box"), Path("/i/bob"))
    store = derive_store(recorded("23-namespace-location"), UserEntry("carol@example.net", "/h"))
    assert (store.format, store.mail_root) == ("sdbox", Path("/h/sdbox"))
    assert store.index_root == Path("/srv/index/example.net/carol")


def test_23_userdb_fields(tmp_path: Path) -> None:
    (userdb,) = passwd_file_userdbs(recorded("23-maildir-split").root, "conf")
    assert userdb.path == Path("/etc/dovecot/users")
    assert userdb.default_fields == {"uid": "vmail", "gid": "vmail"}
    users = tmp_path / "users"
    users.write_text("# comment\nalice@example.org:{PLAIN}x:5000:5000::/h/alice::"
                     "userdb_mail=sdbox:~/s userdb_quota_rule=*:storage=2G\nbob@x:{PLAIN}y\n")
    entries = list(type(userdb)(users, {"home": "/default/%n"}).entries())
    assert entries[0] == UserEntry("alice@example.org", "/h/alice",
                                   {"mail": "sdbox:~/s", "quota_rule": "*:storage=2G"})
    assert entries[1].home == "/default/%n"  # default_fields home, filled in later


def test_24_settings_fields_and_hidden_layout() -> None:
    config = recorded("24-maildir-split")
    (userdb,) = passwd_file_userdbs(config.root, "conf")
    assert userdb.default_fields == {"home": "/srv/mail/%{user|domain}/%{user|username}"}
    entry = UserEntry("alice@example.org", "/srv/mail/example.org/alice")
    store = derive_store(config, entry)
    assert store.mail_root == Path("/srv/mail/example.org/alice/Maildir")
    assert store.index_root == Path("/srv/index/example.org/alice")
    assert store.control_root == Path("/srv/control/alice@example.org")
    # doveconf -n leaves out a layout equal to the global default (fs), even for
    # maildir whose own default is maildir++: the disk decides
    assert store.layout is None
    own = derive_store(config, UserEntry("bob@x", "/h/bob", {"mail_driver": "mdbox",
                                                            "mail_path": "~/m"}))
    assert (own.format, own.mail_root, own.layout) == ("mdbox", Path("/h/bob/m"), "fs")


def test_24_default_mail_path_and_namespace_index_path() -> None:
    store = derive_store(recorded("24-sdbox"), UserEntry("erin@example.org", ""),
                         "/srv/mail/%{user|domain}/%{user|username}")
    assert store.mail_root == Path("/srv/mail/example.org/erin/sdbox")
    assert store.index_root == Path("/srv/index/erin@example.org")


@pytest.mark.parametrize("name", ["23-sql", "24-ldap"])
def test_userdb_that_cannot_be_listed(name: str) -> None:
    with pytest.raises(UsersNotListable) as err:
        list(user_stores(recorded(name), "dovecot.conf"))
    assert "cannot be listed" in err.value.message()
    assert "PATH" in err.value.message() and err.value.exit_status == 16


def test_variables() -> None:
    assert expand("~/Maildir", "a@b", "/h") == "/h/Maildir"
    assert expand("/m/%d/%n/%Lu/%%", "A@B", None) == "/m/B/A/a@b/%"
    assert expand("/m/%{user|domain}/%{user|username|lower}", "Al@b.org", None) == "/m/b.org/al"
    for bad in ("/m/%{service}", "/m/%r", "/m/%{user|md5}"):
        with pytest.raises(VariableError):
            expand(bad, "a@b", "/h")
    with pytest.raises(VariableError, match="needs the home"):
        expand("%h/Maildir", "a@b", None)


def test_mail_location_parameters() -> None:
    loc = parse_mail_location("maildir:/m/a::b:INDEX=/i:INBOX=/in:LAYOUT=fs:DIRNAME=x")
    assert (loc.driver, loc.path, loc.index, loc.inbox, loc.layout) == (
        "maildir", "/m/a:b", "/i", "/in", "fs")
    assert parse_mail_location("").driver == ""  # autodetected: the home is searched
    for bad in ("~/Maildir", "mbox:~/mail:INBOX=/var/mail/%u", "nosuch:/x"):
        with pytest.raises(LocationProblem):
            parse_mail_location(bad)


def test_unknown_variable_is_the_users_problem_not_a_guess() -> None:
    store = derive_store(recorded("23-maildir-split"),
                         UserEntry("a@b", "/h", {"mail": "maildir:/m/%{service}"}))
    assert store.mail_root is None and "service" in store.problem


def test_doveconf_missing_or_failing(tmp_path: Path) -> None:
    with pytest.raises(DovecotConfigUnavailable, match="not found"):
        Doveconf(tmp_path / "x.conf", "/no/such/doveconf").run("-n")
    with pytest.raises(DovecotConfigUnavailable, match="boom"):
        Doveconf(tmp_path / "x.conf", "sh -c 'echo boom >&2; exit 89' --").run("-n")


def test_cli_config_contradicting_options_and_no_target(tmp_path: Path, monkeypatch) -> None:
    db = str(tmp_path / "l.sqlite3")
    conf = tmp_path / "dovecot.conf"
    result = CliRunner().invoke(main, ["scan", "--db", db, "--dovecot-config", str(conf),
                                       "--layout", "{domain}/{user}"])
    assert result.exit_code == 16 and "--layout" in result.output
    monkeypatch.setattr(doveconf_module, "DEFAULT_CONFIG", tmp_path / "absent.conf")
    result = CliRunner().invoke(main, ["scan", "--db", db])
    assert result.exit_code == 2 and "--dovecot-config" in result.output
    result = CliRunner().invoke(main, ["check", "--user", "alice"])
    assert result.exit_code == 16 and "--dovecot-config" in result.output


def test_cli_unreadable_config_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--dovecot-config", str(tmp_path / "no.conf"),
                                       "--doveconf", "/no/such/doveconf", "--user", "a"])
    assert result.exit_code == 8
    assert result.output.strip().splitlines() == [
        f"error: Dovecot configuration {tmp_path / 'no.conf'}: /no/such/doveconf not found "
        "(install dovecot-core, or give --doveconf)"]


# --- real Dovecot: stores it built, scanned with nothing but the configuration -------


KINDS = ["maildir", "maildir-fs", "sdbox", "mdbox", "split"]


@pytest.fixture(scope="module", params=KINDS)
def built(request):
    if shutil.which("doveconf") is None:
        if IN_CI:
            pytest.fail("doveconf is not installed, but CI=true requires the Dovecot tests")
        pytest.skip("doveconf is not installed (apt-get install dovecot-core)")
    import config_stores

    stores = config_stores.build(request.param)
    yield stores
    shutil.rmtree(stores.base, ignore_errors=True)


def scan_ndjson(tmp_path: Path, *args: str) -> tuple[int, list[dict]]:
    result = CliRunner().invoke(main, ["scan", "--db", str(tmp_path / "l.sqlite3"), "-q",
                                       "-j", "2", "--format", "ndjson", *args])
    return result.exit_code, [json.loads(line) for line in result.output.splitlines()]


def found_mailboxes(lines: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in lines:
        if line["type"] == "mailbox" and not line["mailbox"].startswith("("):
            found.setdefault(line["user"], set()).add(line["mailbox"])
    return found


def test_scan_finds_what_doveadm_lists(built, tmp_path: Path) -> None:
    import config_stores

    status, lines = scan_ndjson(tmp_path, "--dovecot-config", str(built.conf))
    assert status == 0, lines
    shown = {user: built.mailbox_list(user) for user in config_stores.MAILBOXES}
    assert found_mailboxes(lines) == shown
    carol = [line for line in lines if line["type"] == "mailbox"
             and line["user"] == config_stores.OWN_USER and line["mailbox"] == "INBOX"]
    assert carol[0]["format"] == "mdbox"  # userdb_mail of its own
    assert str(built.base / "index2" / "carol") in carol[0]["path"]
    volumes = {line["volume"] for line in lines if line["type"] == "mailbox"}
    assert volumes == {str(_mount_point(built.base))}


def _mount_point(path: Path) -> Path:
    while not os.path.ismount(path):
        path = path.parent
    return path


def test_scan_with_a_volume_keeps_the_users_below_it(built, tmp_path: Path) -> None:
    import config_stores

    status, lines = scan_ndjson(tmp_path, "--dovecot-config", str(built.conf),
                                str(built.base / "vol2"))
    assert status == 0
    assert set(found_mailboxes(lines)) == {config_stores.OWN_USER}
    assert {line["volume"] for line in lines if "volume" in line} == {str(built.base / "vol2")}


def test_check_and_repair_one_user(built, tmp_path: Path) -> None:
    args = ["--dovecot-config", str(built.conf), "--user", "alice@example.org"]
    result = CliRunner().invoke(main, ["check", "--json", *args])
    assert result.exit_code == 0, result.output
    names = {m["name"] for m in json.loads(result.output)["mailboxes"]}
    assert built.mailbox_list("alice@example.org") <= names
    inbox = built.home("alice@example.org") / "Maildir"
    if built.kind == "split":  # a PATH alone, the configuration says where its indexes are
        result = CliRunner().invoke(main, ["check", "--json", "--dovecot-config",
                                           str(built.conf), str(inbox)])
        assert result.exit_code == 0, result.output
        paths = [m["path"] for m in json.loads(result.output)["mailboxes"]]
        assert all(str(built.base / "index") in p for p in paths if "uidlist" not in p)
    result = CliRunner().invoke(main, ["repair", "--plan", "--json", *args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"plans": []}
    result = CliRunner().invoke(main, ["check", "--dovecot-config", str(built.conf),
                                       "--user", "nobody@example.org"])
    assert result.exit_code == 16 and "nobody@example.org" in result.output


# --- Dovecot 2.4's doveconf, in a chroot, on the same stores -------------------------


def need_dc24() -> None:
    if not (DC24 / "usr/bin/doveconf").exists() or os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the Dovecot 2.4 chroot /srv/dc24 is needed with CI=true")
        pytest.skip("no Dovecot 2.4 chroot at /srv/dc24 (see docs of the 2.4 tests), or not root")


def test_scan_with_dovecot_24_configuration(built, tmp_path: Path) -> None:
    """The 2.4 doveconf reads a 2.4 configuration of the same stores (the on-disk
    formats are the same): the mail is found where 2.4's settings say."""
    import config_stores

    need_dc24()
    conf = built.base / "dovecot24.conf"
    inside = DC24 / conf.relative_to("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text(config_24(built.kind, built.base))
    (built.base / "users24").write_text(users_24(built.base, (built.base / "users").read_text()))
    try:
        status, out = scan_ndjson(tmp_path, "--dovecot-config", str(conf),
                                  "--doveconf", f"chroot {DC24} doveconf")
    finally:
        shutil.rmtree(DC24 / built.base.relative_to("/"), ignore_errors=True)
    assert status == 0, out
    shown = {user: built.mailbox_list(user) for user in config_stores.MAILBOXES}
    assert found_mailboxes(out) == shown


def test_24_doveconf_reports_its_own_errors(tmp_path: Path) -> None:
    need_dc24()
    inside = DC24 / "tmp" / "dit-broken.conf"
    inside.write_text("mail_driver = maildir\n")  # no dovecot_config_version
    try:
        with pytest.raises(DovecotConfigUnavailable, match="dovecot_config_version"):
            Doveconf(Path("/tmp/dit-broken.conf"), f"chroot {DC24} doveconf").run("-n")
    finally:
        inside.unlink()
