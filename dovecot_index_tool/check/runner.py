"""Runs every check of one mailbox, and the user-level checks, isolating failures.

A check that raises never stops the run: it becomes a ``scanner.error`` finding
for that mailbox, and the next mailbox is checked.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from dovecot_index_tool.check.cache_checks import check_cache
from dovecot_index_tool.check.data import MailboxData, UserData, load_mailbox, load_user
from dovecot_index_tool.check.dbox_uidvalidity import check_dbox_uid_validity
from dovecot_index_tool.check.evidence import signed
from dovecot_index_tool.check.findings import Finding, could_not_check, from_error
from dovecot_index_tool.check.index_checks import check_index
from dovecot_index_tool.check.list_votes import listed_guid, listed_uid_validity
from dovecot_index_tool.check.location_checks import check_state_files
from dovecot_index_tool.check.log_checks import check_consistency, check_logs
from dovecot_index_tool.check.mailbox_guid import guid_differs
from dovecot_index_tool.check.report import MailboxReport, References
from dovecot_index_tool.check.severity import Severity
from dovecot_index_tool.check.storage_checks import (
    check_list_index,
    check_maildir,
    check_mdbox_mailbox,
    check_mdbox_map,
    check_sdbox,
    mdbox_references,
)
from dovecot_index_tool.discovery import MailboxFormat, MailboxLocation


def guarded(path: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """Run checks; an exception becomes a finding instead of stopping everything."""
    try:
        return run()
    except Exception as err:
        where = traceback.extract_tb(err.__traceback__)[-1]
        return [
            Finding(
                "scanner.error",
                path,
                f"{type(err).__name__}: {err} (at {Path(where.filename).name}:{where.lineno})",
            )
        ]


def mailbox_findings(data: MailboxData, user: UserData | None) -> list[Finding]:
    """Every check that reads only this mailbox (plus the map for mdbox)."""
    out = check_index(data.index)
    out += check_logs(data.index)
    out += check_consistency(data.index)
    out += check_cache(data.index)
    lists = user.list_index.state if user is not None and user.list_index else None
    listed = listed_uid_validity(lists, data.name)
    out += guid_differs(data, listed_guid(lists, data.name))
    if data.format == MailboxFormat.MAILDIR:
        out += check_maildir(data, listed)
    else:
        out += check_dbox_uid_validity(data, listed)
    if data.format == MailboxFormat.SDBOX:
        out += check_sdbox(data)
    elif data.format == MailboxFormat.MDBOX and user is not None:
        out += check_mdbox_mailbox(data, user)
    out += [from_error("scanner.unreadable", e) for e in data.read_errors]
    out += check_state_files(data)
    out = _applied_records(_unneeded_old_log(out, data), data)
    return _unique(_without_cascades(_only_what_was_read(out)))


def _unneeded_old_log(findings: list[Finding], data: MailboxData) -> list[Finding]:
    """Damage in ``.log.2`` when the index was written against ``.log``: Dovecot never
    reads it (it is silent and shows the same data) and replaces it at the next
    rotation, so it is one note, not an error."""
    files = data.index.files
    idx = files.index
    old_path = f"{files.prefix}.log.2"  # parsed or not: too short to parse is damage too
    head = next((log for log in files.logs if log.path == f"{files.prefix}.log"), None)
    if idx is None or head is None:
        return findings
    if idx.header.log_file_seq != head.header.file_seq:
        return findings  # the index needs .log.2

    def on_old(f: Finding) -> bool:
        return (f.file == old_path and f.severity is not Severity.INFO
                and not could_not_check(f.check, f.severity))  # unreadable stays so

    damaged = sorted({f.check for f in findings if on_old(f)})
    if not damaged:
        return findings
    note = Finding("log.old-log-damaged", old_path,
                   f".log.2 is damaged ({', '.join(damaged)}), but dovecot.index does not "
                   "need it: Dovecot ignores it and replaces it at the next rotation")
    return [f for f in findings if not on_old(f)] + [note]


RECORD_CONTENT = frozenset({"log.record-invalid", "log.unknown-record-type",
                            "log.uid-range-invalid"})


def _applied_records(findings: list[Finding], data: MailboxData) -> list[Finding]:
    """Damage inside log records that come before the index's head offset: Dovecot
    starts reading the log there, so while the index is usable it never decodes them
    again (sizes it still walks, so a broken size stays an error). One warning."""
    files = data.index.files
    idx = files.index
    if idx is None or any(f.file == files.prefix and f.severity is Severity.FATAL
                          for f in findings):
        return findings
    head = next((log for log in files.logs
                 if log.header.file_seq == idx.header.log_file_seq), None)
    if head is None:
        return findings

    def applied(f: Finding) -> bool:
        return (f.file == head.path and f.check in RECORD_CONTENT and f.offset is not None
                and f.offset < idx.header.log_file_head_offset)

    damaged = [f for f in findings if applied(f)]
    if not damaged:
        return findings
    what = ", ".join(sorted({f.check for f in damaged}))
    note = Finding("log.applied-record-damaged", head.path,
                   f"records before the index's head offset "
                   f"{idx.header.log_file_head_offset} are damaged ({what}); the index "
                   "has already applied them", offset=min(f.offset for f in damaged),
                   field="records")
    return [f for f in findings if not applied(f)] + [note]


def _only_what_was_read(findings: list[Finding]) -> list[Finding]:
    """When a file of the mailbox could not be read, what the others seem to say follows
    from the missing one (a log not readable looks like a lost log): the mailbox could
    not be checked, which is neither damage nor a reason to repair."""
    if not any(could_not_check(f.check, f.severity) for f in findings):
        return findings
    return [f for f in findings
            if could_not_check(f.check, f.severity) or f.severity is Severity.INFO]


# Damage that makes the records unreliable: Dovecot fscks (or rebuilds) the index before
# anything else, so what follows from the bad records is not damage of its own.
UNRELIABLE_RECORDS = {"index.records-truncated", "index.uids-unordered",
                      "index.messages-count-low"}
CASCADES = (
    "log.replay-error",
    "index.seen-count-wrong",
    "index.deleted-count-wrong",
    "index.deleted-count-high",
    "index.unseen-lowwater-too-high",
    "index.deleted-lowwater-too-high",
    "maildir.message-lost-from-index",
    "maildir.index-uid-not-in-uidlist",
    "sdbox.mail-file-not-in-index",
    "sdbox.mail-file-missing",
    "mdbox.map-uid-lost",
)


def _without_cascades(findings: list[Finding]) -> list[Finding]:
    if not any(f.check in UNRELIABLE_RECORDS for f in findings):
        return findings
    return [f for f in findings if f.check not in CASCADES]


def _unique(findings: list[Finding]) -> list[Finding]:
    seen = set()
    out = []
    for f in findings:
        key = (f.check, f.file, f.offset, f.field, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def check_mailbox(
    location: MailboxLocation,
    user: UserData | None = None,
    references: References | None = None,
) -> MailboxReport:
    path = str(location.index_dir)
    state_count: list[int | None] = [None]

    def run() -> list[Finding]:
        data = load_mailbox(location)
        state = data.index.state
        state_count[0] = len(state.records) if state is not None else None
        if references is not None and data.format == MailboxFormat.MDBOX:
            references.counts.update(mdbox_references(data)[1])
        return signed(mailbox_findings(data, user), data)

    findings = guarded(path, run)
    if references is not None and any(f.check == "scanner.error" for f in findings):
        references.complete = False
    return MailboxReport(path, location.name, location.format, tuple(findings), state_count[0])


def check_user_files(
    user: UserData, references: Counter | None, mailboxes: set[str] | None = None
) -> list[MailboxReport]:
    """The list index and the mdbox map, which belong to a user rather than a mailbox."""
    reports = []
    if user.list_index is not None:
        path = user.list_index.path
        found = guarded(
            path,
            lambda: (
                check_index(user.list_index)
                + check_logs(user.list_index)
                + check_consistency(user.list_index)
                + check_list_index(user, mailboxes)
            ),
        )
        reports.append(MailboxReport(path, "(mailbox list index)", MailboxFormat.LIST_INDEX,
                                     tuple(signed(found))))
    if user.map_index is not None:
        path = user.map_index.path
        idx = user.map_index
        found = guarded(
            path,
            lambda: (
                check_index(idx)
                + check_logs(idx)
                + check_consistency(idx)
                + check_mdbox_map(user, references)
            ),
        )
        found += [from_error("scanner.unreadable", e) for e in user.read_errors]
        reports.append(MailboxReport(path, "(mdbox map)", MailboxFormat.MDBOX_MAP,
                                     tuple(signed(_unique(found)))))
    return reports


def check_locations(
    locations: Iterable[MailboxLocation],
    list_index_dir: Path | None,
    map_index_dir: Path | None,
    storage_dir: Path | None,
    complete: bool,
) -> Iterable[MailboxReport]:
    """Check mailboxes one by one, then the user's shared files.

    ``complete`` says whether ``locations`` are all the user's mailboxes: only then
    can mdbox refcounts be compared with the references.
    """
    user = load_user(list_index_dir, map_index_dir, storage_dir)
    references = References()
    names: set[str] = set()
    for location in locations:
        names.add(location.name)
        yield check_mailbox(location, user, references)
    counts = references.counts if complete and references.complete else None
    yield from check_user_files(user, counts, names if complete else None)
