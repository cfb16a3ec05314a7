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


CHECK_EXIT_HELP = """\b
Exit status (bits add up, as with e2fsck):
  0   healthy: no finding above info
  4   warnings, errors or fatal damage found and left as they are
  8   something could not be checked (unreadable file, checker error)
  12  both of the above
  16  usage error
  32  cancelled by the user
  128 internal error (the traceback is kept in a file it names)"""


REPAIR_EXIT_HELP = """\b
Exit status (bits add up, as with e2fsck):
  0   nothing needed repairing
  1   damage was repaired and verified
  4   damage was left: a repair was skipped or failed, or (with --plan) nothing was done
  8   a repair failed verification and was put back, or could not start (setup)
  16  usage error
  32  cancelled by the user
  128 internal error (the traceback is kept in a file it names)"""


def repair_status(states: list[str]) -> Exit:
    """The exit status for repair outcomes ("repaired", "healthy", "skipped", "failed",
    "planned"); "healthy" (a queued job that needed nothing when checked again) adds
    nothing."""
    status = Exit.OK
    for state in states:
        if state == "healthy":
            continue
        if state == "repaired":
            status |= Exit.PROBLEMS_CORRECTED
        elif state == "failed":
            status |= Exit.PROBLEMS_LEFT | Exit.OPERATIONAL_ERROR
        else:
            status |= Exit.PROBLEMS_LEFT
    return status
