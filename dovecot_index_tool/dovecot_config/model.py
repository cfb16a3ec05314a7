"""Every user's mail store, derived in this one place from Dovecot's configuration.

The global mail location (2.3 ``mail_location``, 2.4 ``mail_*``), then the inbox
namespace's own location, then the user's userdb fields, in that order, as Dovecot
applies them; then the user's variables are filled in. The result is mapped onto
discovery's ``MailRoot``, so that checks, scans and the ledger need not know the
paths came from a configuration rather than from what is on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dovecot_index_tool.discovery import MailRoot, configured_root, find_mail_root
from dovecot_index_tool.dovecot_config.locations import (
    LocationProblem,
    LocationTemplate,
    from_settings,
    parse_mail_location,
    with_default_path,
)
from dovecot_index_tool.dovecot_config.sections import ParsedConfig, Section
from dovecot_index_tool.dovecot_config.userdb import UserEntry, passwd_file_userdbs
from dovecot_index_tool.dovecot_config.variables import VariableError, expand

DEFAULT_LAYOUTS = {"maildir": "maildir++", "sdbox": "fs", "mdbox": "fs"}
# 2.4's -n omits a layout equal to the global default (fs), also for maildir whose own
# default is maildir++: an unshown maildir layout is therefore read from the disk.
DEFAULT_LAYOUTS_24 = {"sdbox": "fs", "mdbox": "fs"}
LAYOUTS = {"maildir++": "maildir++", "fs": "fs"}


@dataclass(frozen=True)
class UserMailStore:
    """Where one user's mail, index and control files are, paths expanded.

    ``format`` is "" when Dovecot autodetects the mail (no location configured): the
    home is then searched as ``check HOME`` does. ``index_root`` / ``control_root``
    are None when those files are beside the mail. ``problem`` says why the store
    could not be derived (a variable the tool cannot fill in, an unsupported layout).
    """

    user: str
    home: Path | None
    format: str = ""
    mail_root: Path | None = None
    index_root: Path | None = None
    control_root: Path | None = None
    layout: str | None = None
    inbox: Path | None = None
    problem: str | None = None

    @property
    def tenant(self) -> str | None:
        return self.user.partition("@")[2] or None


def is_24(config: ParsedConfig) -> bool:
    return config.version.startswith("2.4") or "dovecot_config_version" in config.root.settings


def base_template(config: ParsedConfig) -> LocationTemplate:
    """The location every user starts from: global settings, then the inbox namespace."""
    root = config.root
    inbox = _inbox_namespace(root)
    if is_24(config):
        template = from_settings(root.settings, LocationTemplate())
        return from_settings(inbox.settings, template) if inbox else template
    template = parse_mail_location(root.get("mail_location"))
    if inbox is not None and inbox.get("location"):
        return parse_mail_location(inbox.get("location"))
    return template


def _inbox_namespace(root: Section) -> Section | None:
    for namespace in root.children("namespace"):
        if namespace.get("inbox") == "yes":
            return namespace
    return None


def user_stores(config: ParsedConfig, source: object) -> Iterator[UserMailStore]:
    """One store per user of the (passwd-file) userdbs, in the userdb's order.
    ``source`` names the configuration in messages."""
    mail_home = config.root.get("mail_home")
    for userdb in passwd_file_userdbs(config.root, source):
        for entry in userdb.entries():
            yield derive_store(config, entry, mail_home)


def derive_store(config: ParsedConfig, entry: UserEntry, mail_home: str = "") -> UserMailStore:
    """The store of one user; what cannot be derived becomes ``problem``, never a guess
    (a global location the tool cannot follow is only a problem for the users who do
    not have their own)."""
    home = None
    try:
        home = _home(entry, mail_home)
        template = _user_template(config, entry)
        defaults = DEFAULT_LAYOUTS_24 if is_24(config) else DEFAULT_LAYOUTS
        return _expanded(entry.user, home, template, defaults)
    except (LocationProblem, VariableError) as err:
        return UserMailStore(entry.user, home, problem=str(err))


def _home(entry: UserEntry, mail_home: str) -> Path | None:
    home = entry.home or (expand(mail_home, entry.user, None) if mail_home else "")
    return Path(home) if home else None


def _user_template(config: ParsedConfig, entry: UserEntry) -> LocationTemplate:
    if is_24(config):
        return with_default_path(from_settings(entry.fields, base_template(config)))
    if entry.fields.get("mail"):
        return parse_mail_location(entry.fields["mail"])
    return base_template(config)


def _expanded(user: str, home: Path | None, template: LocationTemplate,
              default_layouts: dict[str, str]) -> UserMailStore:
    def path(value: str | None) -> Path | None:
        return Path(expand(value, user, str(home) if home else None)) if value else None

    if not template.driver:
        return UserMailStore(user, home)
    if template.index == "MEMORY":
        raise LocationProblem("INDEX=MEMORY: this user's indexes are never on disk")
    layout = template.layout or default_layouts.get(template.driver)
    if layout is not None and layout.lower() not in LAYOUTS:
        raise LocationProblem(f"mailbox list layout {template.layout!r} is not followed")
    root = path(template.path)
    inbox = path(template.inbox) if template.inbox not in (None, "", ".") else None
    return UserMailStore(user, home, template.driver, root, path(template.index),
                         path(template.control), layout and LAYOUTS[layout.lower()],
                         None if inbox == root else inbox)


def mail_root_of(store: UserMailStore) -> MailRoot | None:
    """The store as discovery's ``MailRoot``; None when it is not on disk (or the
    configuration leaves the mail to be autodetected and none is in the home)."""
    if store.problem is not None:
        return None
    if not store.format:
        return find_mail_root(store.home) if store.home else None
    if store.mail_root is None or not store.mail_root.is_dir():
        return None
    return configured_root(store.mail_root, store.format, store.layout,
                           store.index_root, store.control_root, store.inbox)
