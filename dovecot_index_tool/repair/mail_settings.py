"""The ``-o`` settings that tell doveadm where one user's mail is, for 2.3 and 2.4.

The repair builds a 2.3 ``mail_location`` (from where discovery found the store, or
from ``--mail-location``). 2.3 takes it as it is. 2.4 has no ``mail_location``: each
part is a setting of its own (``mail_driver``, ``mail_path``, ``mail_index_path``
...). Neither version expands variables in a ``-o`` value (2.4.1 keeps ``%{user}``
literally), so values are given already expanded. Paths are translated to what
doveadm sees when it runs in a chroot or container.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dovecot_index_tool.repair.dovecot_version import DovecotVersion


class LocationError(ValueError):
    """A ``--mail-location`` variable or part this tool cannot fill in."""


# mail_location's KEY=VALUE parts and the 2.4 setting each became; True: a path.
SETTINGS_24: dict[str, tuple[str, bool]] = {
    "INDEX": ("mail_index_path", True),
    "INDEXPVT": ("mail_index_private_path", True),
    "CONTROL": ("mail_control_path", True),
    "INBOX": ("mail_inbox_path", True),
    "ALT": ("mail_alt_path", True),
    "VOLATILEDIR": ("mail_volatile_path", True),
    "LAYOUT": ("mailbox_list_layout", False),
    "DIRNAME": ("mailbox_directory_name", False),
    "MAILBOXDIR": ("mailbox_root_directory_name", False),
    "SUBSCRIPTIONS": ("mailbox_subscriptions_filename", False),
}


@dataclass(frozen=True)
class MailLocation:
    """A 2.3 ``mail_location``: ``driver:path:KEY=VALUE:...`` taken apart."""

    driver: str
    path: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MailLocation:
        driver, _, rest = text.partition(":")
        parts = rest.split(":") if rest else [""]
        params = []
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params.append((key, value))
        return cls(driver, parts[0], tuple(params))

    def mapped(self, path: Callable[[str], str]) -> MailLocation:
        """The same location with every path passed through ``path``."""
        params = tuple((key, path(value) if SETTINGS_24.get(key, ("", False))[1]
                        and value.startswith("/") else value) for key, value in self.params)
        return MailLocation(self.driver, path(self.path) if self.path else "", params)

    def __str__(self) -> str:
        return ":".join([f"{self.driver}:{self.path}",
                         *(f"{key}={value}" if value else key for key, value in self.params)])

    def settings_24(self) -> list[str]:
        """The 2.4 settings that say the same."""
        out = [f"mail_driver={self.driver}", f"mail_path={self.path}"]
        for key, value in self.params:
            if key not in SETTINGS_24:
                raise LocationError(f"mail_location part {key} has no Dovecot 2.4 setting "
                                    "this tool knows; give a --mail-location without it")
            out.append(f"{SETTINGS_24[key][0]}={value}")
        return out


def location_settings(location: str, version: DovecotVersion | None,
                      inside: Callable[[str], str] | None = None) -> list[str]:
    """``-o`` values for ``location`` (a 2.3 mail_location with host paths)."""
    parsed = MailLocation.parse(location)
    if inside is not None:
        parsed = parsed.mapped(inside)
    if version is not None and version.settings_24:
        return parsed.settings_24()
    return [f"mail_location={location if inside is None else parsed}"]
