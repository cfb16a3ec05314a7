"""The text ``doveconf -n`` prints, as a tree of sections.

Dovecot prints one ``key = value`` per line and nested blocks such as
``namespace inbox {`` ... ``}`` (2.3 and 2.4 alike; 2.4 also names ``userdb
passwd-file {`` and prints string lists as ``fields {``). Comments start with ``#``;
the first one carries the version. Nothing here knows what a setting means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECTION = re.compile(r'^(?P<kind>[^\s=]+)(?:\s+(?P<name>"[^"]*"|[^\s=]+))?\s*\{$')
_SETTING = re.compile(r"^(?P<key>[^\s=]+)\s*=\s?(?P<value>.*)$")
_VERSION = re.compile(r"^#\s*(?P<version>\d+\.\d+[.\d]*)")


class ConfigSyntax(ValueError):
    """A line of doveconf's output this parser does not understand."""


@dataclass(frozen=True)
class Section:
    """One block: its kind (``namespace``), its name (``inbox``, may be ""), its
    settings in the order printed and the blocks inside it."""

    kind: str
    name: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()

    def get(self, key: str, default: str = "") -> str:
        return self.settings.get(key, default)

    def children(self, kind: str) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]

    def child(self, kind: str, name: str | None = None) -> Section | None:
        for section in self.children(kind):
            if name is None or section.name == name:
                return section
        return None


@dataclass(frozen=True)
class ParsedConfig:
    version: str  # e.g. "2.3.19.1", "" when doveconf did not say
    root: Section


def parse_doveconf(text: str) -> ParsedConfig:
    """The tree of ``doveconf -n`` output; a line it cannot place is ``ConfigSyntax``."""
    version = ""
    stack: list[tuple[str, str, dict[str, str], list[Section]]] = [("", "", {}, [])]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            match = _VERSION.match(line)
            version = version or (match.group("version") if match else "")
            continue
        if line == "}":
            if len(stack) == 1:
                raise ConfigSyntax(f"line {number}: '}}' without a section")
            kind, name, settings, sections = stack.pop()
            stack[-1][3].append(Section(kind, name, settings, tuple(sections)))
        elif match := _SECTION.match(line):
            stack.append((match.group("kind"), (match.group("name") or "").strip('"'), {}, []))
        elif match := _SETTING.match(line):
            stack[-1][2][match.group("key")] = _unquote(match.group("value").strip())
        else:
            raise ConfigSyntax(f"line {number}: {line[:60]!r}")
    if len(stack) != 1:
        raise ConfigSyntax(f"section {stack[-1][0]!r} is not closed")
    _, _, settings, sections = stack[0]
    return ParsedConfig(version, Section("", "", settings, tuple(sections)))


def _unquote(value: str) -> str:
    """2.4 prints some values quoted (``"\\\\Sent"``); 2.3 never does."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return re.sub(r'\\(.)', r"\1", value[1:-1])
