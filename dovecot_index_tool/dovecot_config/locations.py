"""Where mail is, as a template: 2.3's ``mail_location`` and 2.4's ``mail_*`` settings.

2.3 packs it into one string, ``driver:path[:KEY=value]...`` (``::`` is a literal
colon); 2.4 has one setting per part. Both become one ``LocationTemplate`` whose paths
still hold variables, because only a user's entry in the userdb can fill them in.
Parameters that do not change where index, control or mail files are (``VOLATILEDIR``,
``DIRNAME`` and ``ALT`` are not followed by discovery) are ignored here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

DRIVERS = {"maildir": "maildir", "sdbox": "sdbox", "dbox": "sdbox", "mdbox": "mdbox"}
UNSUPPORTED_DRIVERS = ("mbox", "imapc", "pop3c", "obox", "shared", "fail", "mdbox_deleted")
DEFAULT_PATHS = {"maildir": "%{home}/Maildir", "sdbox": "%{home}/sdbox",
                 "mdbox": "%{home}/mdbox"}  # 2.4's defaults when mail_path is empty
SETTINGS_24 = {  # 2.4 setting -> LocationTemplate field
    "mail_driver": "driver",
    "mail_path": "path",
    "mail_index_path": "index",
    "mail_control_path": "control",
    "mail_inbox_path": "inbox",
    "mailbox_list_layout": "layout",
    "mail_layout": "layout",
}
PARAMETERS_23 = {"INDEX": "index", "CONTROL": "control", "INBOX": "inbox", "LAYOUT": "layout"}


class LocationProblem(ValueError):
    """A mail location the tool cannot follow (another driver, autodetection)."""


@dataclass(frozen=True)
class LocationTemplate:
    """``driver`` is "" when Dovecot autodetects the mail (empty ``mail_location``)."""

    driver: str = ""
    path: str = ""
    index: str | None = None
    control: str | None = None
    inbox: str | None = None
    layout: str | None = None

    def overridden(self, **fields: str | None) -> LocationTemplate:
        """This template with the given non-empty fields replaced (a userdb's ``mail``)."""
        return replace(self, **{k: v for k, v in fields.items() if v})


def parse_mail_location(text: str) -> LocationTemplate:
    """2.3 ``mail_location`` (also a namespace's ``location`` or ``userdb_mail``)."""
    text = text.strip()
    if not text:
        return LocationTemplate()
    parts = [part.replace("\0", ":") for part in text.replace("::", "\0").split(":")]
    if len(parts) == 1:
        raise LocationProblem(f"mail location {text!r} has no driver (maildir:, sdbox:, mdbox:)")
    driver, path, *params = parts
    fields: dict[str, str] = {}
    for param in params:
        key, _, value = param.partition("=")
        if key in PARAMETERS_23:
            fields[PARAMETERS_23[key]] = value
    return LocationTemplate(_driver(driver), path, **fields)


def from_settings(settings: Mapping[str, str], base: LocationTemplate) -> LocationTemplate:
    """2.4: ``base`` with the ``mail_*`` settings present in ``settings`` applied."""
    fields = {SETTINGS_24[key]: value for key, value in settings.items() if key in SETTINGS_24}
    if "driver" in fields:
        fields["driver"] = _driver(fields["driver"]) if fields["driver"] else ""
    return base.overridden(**fields)


def with_default_path(template: LocationTemplate) -> LocationTemplate:
    """2.4 fills an empty ``mail_path`` with the driver's default (``~/Maildir`` ...)."""
    if template.path or not template.driver:
        return template
    return replace(template, path=DEFAULT_PATHS[template.driver])


def _driver(name: str) -> str:
    if name in DRIVERS:
        return DRIVERS[name]
    if name in UNSUPPORTED_DRIVERS:
        raise LocationProblem(f"mail driver {name!r} keeps no Dovecot index files this tool reads")
    raise LocationProblem(f"unknown mail driver {name!r}")
