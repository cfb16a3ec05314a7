"""How doveadm is called: a command prefix, path maps, and 2.3 against 2.4 settings."""

from __future__ import annotations

import pytest

from dovecot_index_tool.repair import doveadm as doveadm_module
from dovecot_index_tool.repair.doveadm import DoveadmCommand, DovecotSetup, MailboxDoveadm
from dovecot_index_tool.repair.doveadm_command import CommandError, PathMap
from dovecot_index_tool.repair.dovecot_version import DovecotVersion
from dovecot_index_tool.repair.mail_settings import LocationError, location_settings

V23, V24 = DovecotVersion(2, 3, 19), DovecotVersion(2, 4, 1)
SPLIT = "maildir:/srv/mail/home/erin/Maildir:INDEX=/srv/mail/index/erin:CONTROL=/srv/c/erin"


def _mailbox(monkeypatch, version, location=SPLIT, **setup) -> MailboxDoveadm:
    monkeypatch.setattr(doveadm_module, "detect_version", lambda command, config: version)
    return MailboxDoveadm(DovecotSetup(**setup), "erin", "/srv/mail/home/erin", location,
                          "INBOX", (5000, 5000))


def test_a_plain_23_doveadm_is_called_exactly_as_before(monkeypatch):
    box = _mailbox(monkeypatch, V23, config="/etc/dovecot/dovecot.conf")

    cmd, env = box.command("mailbox status", "messages", "INBOX", tabular=True)

    assert cmd == ["doveadm", "-c", "/etc/dovecot/dovecot.conf", "-o", f"mail_location={SPLIT}",
                   "-f", "tab", "mailbox", "status", "messages", "INBOX"]
    assert env == {"PATH": doveadm_module.SAFE_PATH, "USER": "erin",
                   "HOME": "/srv/mail/home/erin"}
    assert box._as_owner() in ({}, {"user": 5000, "group": 5000, "extra_groups": []})


def test_24_gets_its_own_settings_and_no_userdb_lookup(monkeypatch):
    box = _mailbox(monkeypatch, V24, location="maildir:/m/Maildir:LAYOUT=fs:INDEX=/i/%u")

    cmd, _ = box.command("fetch", "uid", "mailbox", "INBOX", "all")

    assert cmd == ["doveadm", "-o", "mail_driver=maildir", "-o", "mail_path=/m/Maildir",
                   "-o", "mailbox_list_layout=fs", "-o", "mail_index_path=/i/%u",
                   "fetch", "--no-userdb-lookup", "uid", "mailbox", "INBOX", "all"]


def test_24_with_the_auth_service_asks_it_for_the_user(monkeypatch):
    cmd, env = _mailbox(monkeypatch, V24, auth=True).command("index", "INBOX")

    assert cmd[-3:] == ["-u", "erin", "INBOX"] and "--no-userdb-lookup" not in cmd
    assert "USER" not in env


def test_a_wrapped_doveadm_gets_mapped_paths_and_the_owner_as_settings(monkeypatch):
    command = DoveadmCommand.parse("docker exec -i 'mail server' doveadm",
                                   ("/srv/mail=/var/vmail", "/etc/dc=/etc/dovecot"))
    box = _mailbox(monkeypatch, V23, config="/etc/dc/dovecot.conf", doveadm=command)

    cmd, env = box.command("force-resync", "INBOX")

    assert cmd[:6] == ["docker", "exec", "-i", "mail server", "doveadm", "-c"]
    assert cmd[6] == "/etc/dovecot/dovecot.conf"
    assert cmd[8] == ("mail_location=maildir:/var/vmail/home/erin/Maildir:"
                      "INDEX=/var/vmail/index/erin:CONTROL=/srv/c/erin")
    assert cmd[9:13] == ["-o", "mail_uid=5000", "-o", "mail_gid=5000"]
    assert env["HOME"] == "/var/vmail/home/erin"
    assert box._as_owner() == {}  # docker is started as ourselves; Dovecot switches


def test_paths_in_doveadm_messages_are_mapped_back():
    command = DoveadmCommand.parse("chroot /srv/dc24 doveadm", ("/=/", "/home/x=/data",))

    assert command.inside("/home/x/Maildir") == "/data/Maildir"
    assert command.inside("/home/xy") == "/home/xy"
    assert command.host_text("open(/data/Maildir/cur) failed: /dataset") == (
        "open(/home/x/Maildir/cur) failed: /dataset")


def test_the_version_is_asked_of_dovecot_beside_doveadm():
    assert DoveadmCommand.parse("chroot /srv/dc24 doveadm").sibling("dovecot") == (
        "chroot", "/srv/dc24", "dovecot")
    assert DoveadmCommand.parse("/usr/local/bin/doveadm").sibling("dovecot") == (
        "/usr/local/bin/dovecot",)
    assert DoveadmCommand.parse("/opt/wrap.sh").sibling("dovecot") is None


@pytest.mark.parametrize(("text", "version"), [
    ("2.4.1-4 (7d8c0e5759)\n", V24), ("2.3.19.1 (9b53102964)", DovecotVersion(2, 3, 19)),
    ("# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf", DovecotVersion(2, 3, 19)),
    ("doveadm: invalid option", None), ("", None), ("\xff\x00 2.4", None),
])
def test_versions_are_read_from_what_dovecot_prints(text, version):
    assert DovecotVersion.parse(text) == version


@pytest.mark.parametrize("bad", ["srv=/x", "/srv", "/srv=", "=/x"])
def test_a_path_map_needs_two_absolute_paths(bad):
    with pytest.raises(CommandError):
        PathMap.parse(bad)


def test_an_unparsable_or_empty_doveadm_command_is_refused():
    for bad in ("chroot '/srv", "  "):
        with pytest.raises(CommandError):
            DoveadmCommand.parse(bad)


def test_a_location_part_24_has_no_setting_for_is_said():
    with pytest.raises(LocationError, match="FOO"):
        location_settings("sdbox:/m:FOO=1", V24)
    assert location_settings("sdbox:/m:FOO=1", V23) == ["mail_location=sdbox:/m:FOO=1"]


def test_mail_location_variables_are_filled_in_as_dovecot_would() -> None:
    from dovecot_index_tool.repair.doveadm import expand_location

    assert expand_location("maildir:~/Maildir:INDEX=~/idx/%u:CONTROL=/c/%{user}/%d",
                           "a@b.org", "/home/a", "/home/a/Maildir") == (
        "maildir:/home/a/Maildir:INDEX=/home/a/idx/a@b.org:CONTROL=/c/a@b.org/b.org")
    assert expand_location("sdbox:{home}/x:INDEX={root}/i", "a", "/h", "/h/x") == (
        "sdbox:/h/x:INDEX=/h/x/i")
    with pytest.raises(LocationError, match="%z"):
        expand_location("maildir:%z", "a", "/h", "/r")
