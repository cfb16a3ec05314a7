"""Dovecot's %-variables in paths, filled in for one user.

2.3 writes ``%u``, ``%n``, ``%d``, ``%h`` (``%Ln``: lower case) or ``%{user}``,
``%{username}``, ``%{domain}``, ``%{home}``; 2.4 writes ``%{user}``, ``%{home}`` and
filters: ``%{user|username}``, ``%{user|domain}``, ``%{user|lower}``. A leading ``~``
is the home. A variable this module does not know is an error, never left in a path:
a literal ``%x`` directory would be a wrong place to look, silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_VARIABLE = re.compile(r"%(?:\{(?P<long>[^}]*)\}|(?P<mod>L?)(?P<short>[a-zA-Z%]))")
_SHORT = {"u": "user", "n": "username", "d": "domain", "h": "home", "%": "%"}
_FILTERS: dict[str, Callable[[str], str]] = {
    "username": lambda value: value.partition("@")[0],
    "domain": lambda value: value.partition("@")[2],
    "lower": str.lower,
    "upper": str.upper,
}


class VariableError(ValueError):
    """A variable the tool cannot fill in, or a home that is needed but not known."""


def expand(template: str, user: str, home: str | None) -> str:
    """``template`` with every variable of ``user`` (and their ``home``) filled in."""
    values = {"user": user, "username": user.partition("@")[0],
              "domain": user.partition("@")[2], "home": home, "%": "%"}

    def value_of(name: str) -> str:
        if name not in values:
            raise VariableError(f"%{{{name}}} in {template!r} is not a variable this tool knows")
        value = values[name]
        if value is None:
            raise VariableError(f"{template!r} needs the home of {user}, and it has none")
        return value

    def replace(match: re.Match) -> str:
        if match.group("long") is not None:
            name, *filters = (part.strip() for part in match.group("long").split("|"))
            value = value_of(name)
            for name in filters:
                if name not in _FILTERS:
                    raise VariableError(f"filter |{name} in {template!r} is not known here")
                value = _FILTERS[name](value)
            return value
        if match.group("short") not in _SHORT:
            raise VariableError(f"%{match.group('short')} in {template!r} is not known here")
        value = value_of(_SHORT[match.group("short")])
        return value.lower() if match.group("mod") else value

    if template == "~" or template.startswith("~/"):
        template = "%{home}" + template[1:]
    return _VARIABLE.sub(replace, template)
