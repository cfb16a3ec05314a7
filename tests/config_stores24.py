"""Mailstores built by the real Dovecot 2.4 (the chroot of ``scripts/setup-dovecot24``)
under a 2.4 configuration with a passwd-file userdb.

The same users, mailboxes and locations as ``config_stores``, in 2.4's settings
(``mail_driver``, ``mail_path``, ``mail_index_path`` ...). The store's base is
bind-mounted into the chroot at the same path, so the configuration, the
passwd-file and the mail are where both sides look. doveadm has no auth service:
``--no-userdb-lookup`` makes it take the user from USER, and what the userdb would
return (the home, the own user's location) is given as ``-o`` settings, since 2.4
does not take the home from HOME.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from config_stores import (
    MAILBOXES,
    OWN_LOCATION,
    OWN_USER,
    USERS,
    ConfiguredStores,
    fill,
    passwd_file,
)

from mail_sandbox import CONFIG as SANDBOX_CONFIG
from mail_sandbox import SAFE_PATH, mail_user

CONFIG_24 = """dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
protocols =
ssl = no
@LOCATION@
namespace inbox {
  inbox = yes
  separator = /
}
userdb passwd-file {
  passwd_file_path = @SRV@/users24
}
"""
LOCATIONS_24 = {  # store kind -> 2.4 settings, @SRV@ the store's base
    "maildir": "mail_driver = maildir\nmail_path = %{home}/Maildir",
    "maildir-fs": "mail_driver = maildir\nmail_path = ~/Maildir\nmailbox_list_layout = fs",
    "sdbox": "mail_driver = sdbox",
    "mdbox": "mail_driver = mdbox\nmail_path = %{home}/mdbox",
    "split": "mail_driver = maildir\nmail_path = ~/Maildir\n"
             "mail_index_path = @SRV@/index/%{user|domain}/%{user|username}\n"
             "mail_control_path = @SRV@/control/%{user}",
}
# where the mail user's doveadm keeps its state; the namespace is CONFIG_24's
RUNTIME = "\n".join(line for line in SANDBOX_CONFIG.split("namespace")[0].splitlines()
                    if line.split(" ")[0] not in ("protocols", "listen", "ssl"))


def own_settings(base: Path) -> list[str]:
    """The own user's location (``config_stores.OWN_LOCATION``) as 2.4 settings."""
    mdbox, index = OWN_LOCATION.format(srv=base).removeprefix("mdbox:").split(":INDEX=")
    return ["mail_driver=mdbox", f"mail_path={mdbox}", f"mail_index_path={index}"]


def users_24(base: Path, users_23: str) -> str:
    """A 2.3 passwd-file of the stores, its ``userdb_mail=`` as 2.4's userdb fields."""
    fields = " ".join(f"userdb_{setting}" for setting in own_settings(base))
    return users_23.replace(f"userdb_mail={OWN_LOCATION.format(srv=base)}", fields)


def config_24(kind: str, base: Path) -> str:
    return CONFIG_24.replace("@LOCATION@", LOCATIONS_24[kind]).replace("@SRV@", str(base))


@dataclass(frozen=True)
class ConfiguredStores24(ConfiguredStores):
    chroot: Path = Path("/srv/dc24")

    def doveadm(self, user: str, *args: str, input: bytes | None = None) -> str:
        settings = [f"mail_home={self.home(user)}",
                    *(own_settings(self.base) if user == OWN_USER else [])]
        opts = [arg for setting in settings for arg in ("-o", setting)]
        env = {"USER": user, "HOME": str(self.home(user)), "PATH": SAFE_PATH}
        done = subprocess.run(
            ["chroot", str(self.chroot), "doveadm", "-c", str(self.conf), *opts, *args,
             "--no-userdb-lookup"],
            env=env, input=input, capture_output=True, timeout=120, check=True)
        return done.stdout.decode()

    def mount_point(self) -> Path:
        return self.chroot / str(self.base).lstrip("/")

    def remove(self) -> None:
        subprocess.run(["umount", str(self.mount_point())], check=False)
        self.mount_point().rmdir()


def build(kind: str, chroot: Path) -> ConfiguredStores24:
    """Three users with mail in every mailbox, made by 2.4's doveadm in ``chroot``."""
    uid, gid = mail_user()
    base = Path(tempfile.mkdtemp(prefix=f"dit-config24-{kind}-"))
    base.chmod(0o755)
    conf = base / "dovecot.conf"
    runtime = RUNTIME.format(tmp=base, uid=uid, gid=gid)
    conf.write_text(config_24(kind, base) + runtime + "\n")
    stores = ConfiguredStores24(base, conf, kind, chroot)
    (base / "users24").write_text(users_24(base, passwd_file(stores, uid, gid)))
    for user in (*USERS, OWN_USER):
        stores.home(user).mkdir(parents=True)
    subprocess.run(["chown", "-R", f"{uid}:{gid}", str(base)], check=True)
    os.chown(base / "users24", 0, 0)
    stores.mount_point().mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(base), str(stores.mount_point())], check=True)
    try:
        for user, boxes in MAILBOXES.items():
            fill(stores, user, boxes)
    except BaseException:
        stores.remove()
        raise
    return stores
