"""Mailstores built by the real Dovecot under a configuration with a passwd-file userdb.

The configuration is the one handed to ``--dovecot-config``: its ``mail_location``
has Dovecot's variables, and Dovecot itself expands them while it builds the stores
(doveadm without an auth service takes the user from USER and HOME, as
``mail_sandbox`` does). One user has a ``userdb_mail`` of its own, written out in full,
because doveadm does not apply userdb fields without the auth service: it gets the
same location with ``-o``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mail_sandbox import CONFIG as SANDBOX_CONFIG
from mail_sandbox import SAFE_PATH, mail_user

LOCATIONS = {  # store kind -> mail_location, {srv} the store's base
    "maildir": "maildir:~/Maildir",
    "maildir-fs": "maildir:~/Maildir:LAYOUT=fs",
    "sdbox": "sdbox:~/sdbox",
    "mdbox": "mdbox:~/mdbox",
    "split": "maildir:~/Maildir:INDEX={srv}/index/%d/%n:CONTROL={srv}/control/%u",
}
USERS = ("alice@example.org", "bob@example.org")
OWN_USER = "carol@example.net"  # has userdb_mail: split mdbox on another tree
OWN_LOCATION = "mdbox:{srv}/vol2/example.net/carol/mdbox:INDEX={srv}/index2/carol"
MAILBOXES = {"alice@example.org": ("Sent", "Lists", "Lists/dovecot", "Archive", "Archive/2024"),
             "bob@example.org": ("Drafts",), OWN_USER: ("Sent", "Trash")}
# the sandbox's settings and a passwd-file userdb; doveconf -n refuses an empty
# listen (doveadm does not mind), so it is left out
USERDB = """mail_location = {location}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {tmp}/users
}}
"""
CONFIG = SANDBOX_CONFIG.replace("listen =\n", "") + USERDB


@dataclass(frozen=True)
class ConfiguredStores:
    base: Path
    conf: Path
    kind: str

    def home(self, user: str) -> Path:
        local, _, domain = user.partition("@")
        volume = "vol2" if user == OWN_USER else "vol"
        return self.base / volume / domain / local

    def own_location(self) -> str:
        return OWN_LOCATION.format(srv=self.base)

    def doveadm(self, user: str, *args: str, input: bytes | None = None) -> str:
        opts = ["-o", f"mail_location={self.own_location()}"] if user == OWN_USER else []
        env = {"USER": user, "HOME": str(self.home(user)), "PATH": SAFE_PATH}
        done = subprocess.run(["doveadm", "-c", str(self.conf), *opts, *args], env=env,
                              input=input, capture_output=True, timeout=120, check=True)
        return done.stdout.decode()

    def mailbox_list(self, user: str) -> set[str]:
        """What Dovecot itself lists for the user."""
        return set(self.doveadm(user, "mailbox", "list").split())


def build(kind: str) -> ConfiguredStores:
    """Three users, each with mail in every mailbox, made by doveadm."""
    uid, gid = mail_user()
    base = Path(tempfile.mkdtemp(prefix=f"dit-config-{kind}-"))
    base.chmod(0o755)
    conf = base / "dovecot.conf"
    conf.write_text(CONFIG.format(tmp=base, uid=uid, gid=gid,
                                  location=LOCATIONS[kind].format(srv=base)))
    stores = ConfiguredStores(base, conf, kind)
    (base / "users").write_text(passwd_file(stores, uid, gid))
    for user in (*USERS, OWN_USER):
        stores.home(user).mkdir(parents=True)
    subprocess.run(["chown", "-R", f"{uid}:{gid}", str(base)], check=True)
    os.chown(base / "users", 0, 0)
    for user, boxes in MAILBOXES.items():
        fill(stores, user, boxes)
    return stores


def passwd_file(stores: ConfiguredStores, uid: int, gid: int) -> str:
    """The userdb: every user with its home, the own user with its ``userdb_mail``."""
    lines = [f"{u}:{{PLAIN}}secret:{uid}:{gid}::{stores.home(u)}::" for u in USERS]
    lines.append(f"{OWN_USER}:{{PLAIN}}secret:{uid}:{gid}::{stores.home(OWN_USER)}::"
                 f"userdb_mail={stores.own_location()}")
    return "\n".join(lines) + "\n"


def fill(stores: ConfiguredStores, user: str, boxes: tuple[str, ...]) -> None:
    """Mail in every mailbox, and a flag, through the stores' own doveadm."""
    for box in ("INBOX", *boxes):
        if box != "INBOX":
            stores.doveadm(user, "mailbox", "create", box)
        message = f"From: a@example.org\nSubject: {box}\n\nfor {user}\n".encode()
        stores.doveadm(user, "save", "-m", box, input=message)
    stores.doveadm(user, "flags", "add", "\\Seen", "mailbox", "INBOX", "all")
