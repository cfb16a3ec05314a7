"""The one mapping from outcomes to exit status, additive like e2fsck's."""

from __future__ import annotations

from enum import IntFlag


class Exit(IntFlag):
    OK = 0
    PROBLEMS_CORRECTED = 1
    PROBLEMS_LEFT = 4
    OPERATIONAL_ERROR = 8
    USAGE = 16
    CANCELLED = 32
    INTERNAL = 128


EXIT_HELP = """\b
Exit status (bits add up, as with e2fsck):
  0   success, nothing to report
  4   damage or inconsistencies were found and left as they are
  8   a file could not be read or parsed at all
  16  usage error
  32  cancelled by the user
  128 internal error"""
