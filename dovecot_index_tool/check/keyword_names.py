"""Keyword names no IMAP client could have made.

Why: Dovecot creates a keyword only through ``mailbox_keyword_is_valid``: no atom
specials (``( ) { % * " \\ ]``, space, control characters), no 8-bit bytes. A name in
the index's keywords header or in a log's keyword update that breaks those rules was
not written by Dovecot: its bytes were changed. Dovecot itself reads such a name
without a word and shows it to clients as a keyword, so the finding is a warning.
"""

from __future__ import annotations

import re

# Dovecot's IS_ATOM_PARSER_INPUT characters, and every byte outside printable ASCII
# (written as "not printable": a class up to U+10FFFF takes milliseconds to compile)
_NOT_IN_A_KEYWORD = re.compile(r'[(){%*"\\\]]|[^\x21-\x7e]')


def keyword_name_problem(name: str) -> str | None:
    """Why Dovecot would not have created this keyword, or None."""
    if not name:
        return None  # reported by the checks that know where the name belongs
    bad = _NOT_IN_A_KEYWORD.search(name)
    if bad is None:
        return None
    what = "8bit characters" if ord(bad.group()) >= 0x80 else "Invalid characters"
    return f"{what} in keyword {name!r}"
