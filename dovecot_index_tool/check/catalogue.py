"""The check catalogue: every finding the tool can report, with a stable ID.

The IDs are the contract with scripts, reports, the repair queue and the tests:
never rename one. Severities:

* ``fatal``: Dovecot cannot use the file; it deletes or rebuilds it (or crashes).
* ``error``: Dovecot will fsck, drop records, or show users wrong data.
* ``warning``: inconsistent, but harmless to users today.
* ``info``: a normal state worth knowing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dovecot_index_tool.check.severity import Severity


class Repair(StrEnum):
    """Least destructive first; the order is what the queue widens along."""

    NONE = "none"
    CACHE_PURGE = "cache-purge"
    INDEX_REBUILD = "index-rebuild"
    FORCE_RESYNC = "force-resync"
    STORAGE_REBUILD = "storage-rebuild"

    @property
    def rank(self) -> int:
        return list(Repair).index(self)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    dovecot: str  # what Dovecot does when it meets this
    repair: Repair
    loses: tuple[str, ...] = ()  # what the recommended repair can lose
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "dovecot": self.dovecot,
            "repair": self.repair.value,
            "loses": list(self.loses),
            "note": self.note,
        }


F, E, W, INFO = Severity.FATAL, Severity.ERROR, Severity.WARNING, Severity.INFO
NONE, PURGE, REBUILD, RESYNC, STORAGE = (
    Repair.NONE,
    Repair.CACHE_PURGE,
    Repair.INDEX_REBUILD,
    Repair.FORCE_RESYNC,
    Repair.STORAGE_REBUILD,
)
DBOX_STATE = ("flags", "keywords")  # live only in sdbox/mdbox indexes
UNLINK_INDEX = "deletes dovecot.index and rebuilds it from the log and the mail files"
FSCK = "runs an index fsck that rewrites the header from the records (logs 'fscking index file')"
LOG_CORRUPT = (
    "marks the log corrupted (indexid 0), deletes and recreates it; changes only in it are lost"
)
CACHE_UNLINK = "deletes the cache file ('Deleting corrupted cache'); it is rebuilt from the mail"

_RULES = (
    # -- dovecot.index: unusable files -------------------------------------------------------
    Rule(
        "index.file-too-small",
        F,
        "dovecot.index is shorter than its 120-byte header",
        UNLINK_INDEX,
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.major-version",
        F,
        "dovecot.index major version is not 7",
        UNLINK_INDEX,
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.corrupted-flag",
        F,
        "dovecot.index has its CORRUPTED header flag set",
        UNLINK_INDEX,
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.byte-order",
        F,
        "dovecot.index was written by a CPU of the other byte order",
        UNLINK_INDEX + " ('CPU architecture changed')",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.header-sizes",
        F,
        "base_header_size or header_size is impossible",
        UNLINK_INDEX + " ('Corrupted header sizes')",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.header-outside-file",
        F,
        "header_size is larger than the file",
        UNLINK_INDEX,
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.record-size-too-small",
        F,
        "record_size is below 8 bytes",
        UNLINK_INDEX,
        REBUILD,
        DBOX_STATE,
    ),
    Rule("index.last-uid-zero", F, "the last record has UID 0", UNLINK_INDEX, REBUILD, DBOX_STATE),
    # -- dovecot.index: fsck-able damage ----------------------------------------------------
    Rule(
        "index.messages-count-low",
        E,
        "the header counts fewer messages than the records the file holds",
        "reads messages_count records only: the messages after them seem new or gone, and "
        "a sync adds them again or rebuilds the mailbox",
        RESYNC,
        DBOX_STATE,
    ),
    Rule(
        "index.records-truncated",
        E,
        "messages_count records do not fit in the file",
        "truncates the record list to what fits, then fsck; the cut messages vanish until a "
        "resync finds them again",
        RESYNC,
        DBOX_STATE,
    ),
    Rule(
        "index.uidvalidity-zero",
        E,
        "uid_validity is 0 although messages were assigned UIDs",
        FSCK + "; a new UIDVALIDITY makes clients download everything",
        RESYNC,
        ("UIDs",),
    ),
    Rule("index.next-uid-zero", E, "next_uid is 0", FSCK, RESYNC),
    Rule(
        "index.next-uid-below-record",
        E,
        "a record's UID is not below next_uid",
        FSCK + " (raises next_uid)",
        RESYNC,
    ),
    Rule(
        "index.next-uid-ahead",
        E,
        "next_uid is above the UID the log appends right after the index's own messages",
        "'Log synchronization error' (Append with UID u, but next_uid = N): the append is "
        "skipped, the new message stays hidden until fsck",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.uids-unordered",
        E,
        "record UIDs are zero, repeated or not ascending",
        "does not notice at open; UID lookups (binary search) then miss messages, which "
        "look expunged to clients; an fsck deletes the out-of-order records",
        RESYNC,
        DBOX_STATE,
    ),
    Rule(
        "index.seen-count-too-large", E, "seen_messages_count exceeds messages_count", FSCK, REBUILD
    ),
    Rule(
        "index.deleted-count-too-large",
        E,
        "deleted_messages_count exceeds messages_count",
        FSCK,
        REBUILD,
    ),
    Rule(
        "index.first-recent-uid-invalid",
        E,
        "first_recent_uid is 0 or beyond next_uid",
        FSCK,
        REBUILD,
    ),
    Rule(
        "index.lowwater-beyond-next-uid",
        E,
        "an unseen/deleted low-water mark exceeds next_uid",
        FSCK,
        REBUILD,
    ),
    Rule(
        "index.seen-count-wrong",
        E,
        "seen_messages_count disagrees with the records",
        "trusts it silently: clients are shown a wrong unseen count",
        REBUILD,
    ),
    Rule(
        "index.deleted-count-wrong",
        E,
        "deleted_messages_count is 0 while some records are \\Deleted, or counts all "
        "while some are not",
        "trusts it silently: searches for \\Deleted and EXPUNGE find nothing at 0, a "
        "search for UNDELETED finds nothing at all",
        REBUILD,
    ),
    Rule(
        "index.deleted-count-high",
        W,
        "deleted_messages_count disagrees with the records marked \\Deleted, but is "
        "neither 0 nor all",
        "searches the records and finds the real ones (the same data)",
        REBUILD,
    ),
    Rule(
        "index.unseen-lowwater-too-high",
        E,
        "an unseen message lies below first_unseen_uid_lowwater",
        "trusts the hint: that message is not reported as unseen",
        REBUILD,
    ),
    Rule(
        "index.deleted-lowwater-too-high",
        W,
        "a \\Deleted message lies below first_deleted_uid_lowwater",
        "trusts the hint when looking for deleted messages",
        REBUILD,
    ),
    Rule(
        "index.extension-outside-header",
        E,
        "an extension header runs past header_size",
        FSCK + " (drops the extension and everything after it)",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.extension-invalid",
        E,
        "an extension header has invalid fields",
        FSCK + " ('Broken extension'; the extension is dropped)",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.extension-duplicate",
        E,
        "two extensions have the same name",
        FSCK + " (the duplicate is dropped)",
        REBUILD,
    ),
    Rule(
        "index.keywords-header-invalid",
        E,
        "the keywords extension header is malformed",
        FSCK + " (keywords renamed to unknown-N or recounted)",
        REBUILD,
        ("keywords",),
    ),
    Rule(
        "index.keyword-name-offset",
        W,
        "a keyword's name_offset does not follow the names",
        "logs 'Mismatching keyword name_offset' and goes on",
        NONE,
    ),
    Rule(
        "index.dirty-flag-unmarked",
        W,
        "a record has the DIRTY flag but HAVE_DIRTY is not set",
        "may never write that flag change to the mail file",
        RESYNC,
    ),
    Rule(
        "index.fsckd",
        INFO,
        "Dovecot already repaired this index (FSCKD flag)",
        "sdbox/mdbox and list indexes rebuild once more at the next sync",
        NONE,
    ),
    Rule(
        "index.missing",
        INFO,
        "no dovecot.index: the state lives in the log (normal for small mailboxes)",
        "replays the log at every open",
        NONE,
    ),
    Rule(
        "index.keyword-name-invalid",
        W,
        "a keyword name in the index holds characters Dovecot never lets a client use",
        "shows it to clients as a keyword, without a word",
        NONE,
        note="Dovecot creates keywords only as IMAP atoms of 7-bit characters: the name's "
        "bytes were changed, and the keyword it was is gone from those messages",
    ),
    Rule(
        "index.extension-renamed",
        W,
        "an extension's name is one byte off a known one that the index lacks",
        "takes it for another extension: what the known one held (the mdbox header, map "
        "UIDs, keywords, cache offsets) is not found; some are rebuilt quietly, others "
        "make the mailbox fail or show other data",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.unknown-extension",
        INFO,
        "an extension this tool does not decode",
        "keeps it as it is",
        NONE,
    ),
    # -- transaction log -----------------------------------------------------------------
    Rule(
        "log.file-too-small",
        F,
        "the log is shorter than its header",
        "deletes and recreates the log",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.major-version",
        F,
        "the log major version is not 1",
        "deletes and recreates the log",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.header-size-invalid",
        F,
        "hdr_size is below 24 or beyond the file",
        "deletes and recreates the log",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.marked-corrupted",
        F,
        "indexid is 0: Dovecot already marked this log corrupted",
        "deletes and recreates the log at the next open",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.file-seq-reserved",
        F,
        "file_seq is 0xffffffff, the value Dovecot's log view reserves for 'no upper limit'",
        "aborts on an assertion when it opens the mailbox",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.byte-order",
        F,
        "the log was written by a CPU of the other byte order",
        "'Rebuilding index file: CPU architecture changed'",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.record-size-invalid",
        F,
        "a record's size field is below 8 bytes",
        LOG_CORRUPT,
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.record-invalid",
        F,
        "a record's payload breaks the format",
        LOG_CORRUPT,
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.uid-range-invalid",
        F,
        "a record has empty, reversed or unsorted UID ranges",
        LOG_CORRUPT,
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.unknown-record-type",
        E,
        "a record of an unknown type",
        "'Log synchronization error', then fsck",
        REBUILD,
    ),
    Rule(
        "log.append-uid-wrong",
        E,
        "an sdbox log appends a UID whose mail file is missing while one unlisted mail "
        "file is there",
        "shows the message under the wrong UID until it looks for the file ('Unexpectedly "
        "lost uid'), then rebuilds",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.append-missing",
        W,
        "an sdbox mail file has a UID the index has not given out, and no log record "
        "appends it",
        "does not show the message until a resync finds the file",
        RESYNC,
        note="Dovecot writes u.N, then logs its append: the log lost its end, or a save "
        "stopped between the two (sdbox.mail-file-not-in-index says so too)",
    ),
    Rule(
        "log.prev-seq-wrong",
        W,
        ".log's prev_file_seq is not .log.2's sequence, though .log.2 is its predecessor "
        "by number",
        "ignores .log.2 while the index does not need it (the same data); a sync that "
        "needs it loses it",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.sequence-disputed",
        W,
        "the only log and the index disagree on the log's sequence, and no third file "
        "decides which is wrong",
        "loses the log ('Lost log'): see index.log-lost on the index",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.shorter-than-index",
        E,
        "the log ends before the position the index was written at (both its tail and head)",
        "'Lost log' or a refused mailbox (IMAP SELECT: NO [SERVERBUG]); the changes after "
        "the cut are gone",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.keyword-name-invalid",
        W,
        "a keyword update in the log names a keyword Dovecot never lets a client use",
        "applies it: the messages get that keyword, without a word",
        NONE,
        note="Dovecot creates keywords only as IMAP atoms of 7-bit characters",
    ),
    Rule(
        "log.replay-error",
        E,
        "a log record contradicts the index it is applied to",
        "'Log synchronization error' (record skipped), then fsck",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.unfinished-write",
        INFO,
        "bytes after the last complete record (a write in progress or a crash mid-write)",
        "unlocked readers ignore them and the next writer truncates them; a sync that finds "
        "them under its lock logs 'Unexpected garbage at EOF' and recreates the log",
        NONE,
    ),
    Rule(
        "log.garbage-at-eof",
        E,
        "bytes after the last complete record while the log is locked (no write in progress)",
        "a sync under the lock logs 'Unexpected garbage at EOF', " + LOG_CORRUPT,
        REBUILD,
        DBOX_STATE,
        note="a check asks whether a writer holds the lock (a query, it takes none) and reads "
        "the log's size and mtime again; repair re-reads the log under the lock itself",
    ),
    Rule(
        "log.reset",
        INFO,
        "the log started a new index generation after .log.2 was written",
        "ignores the older log",
        NONE,
    ),
    Rule(
        "log.hardlinked",
        INFO,
        ".log and .log.2 are the same file (a rotation in progress)",
        "ignores the duplicate",
        NONE,
    ),
    Rule(
        "log.rotated-size-mismatch",
        E,
        ".log.2 ends elsewhere than .log says it did",
        "'Invalid transaction log size': marks .log.2 corrupted",
        REBUILD,
    ),
    Rule(
        "log.rotated-sequence",
        INFO,
        ".log.2 is not the log that .log continues",
        "ignores .log.2 unless the index needs it",
        NONE,
        note="Dovecot opens the mailbox, shows the same data and replaces .log.2 at the "
        "next rotation; when the index does need .log.2, a log.lost finding says so",
    ),
    Rule(
        "log.initial-modseq-wrong",
        W,
        ".log does not start at the modseq .log.2 ended with",
        "counts modseqs from it: HIGHESTMODSEQ is shown off by the difference, and a lower "
        "one makes CONDSTORE/QRESYNC clients miss changes",
        REBUILD,
        note="the repair's HIGHESTMODSEQ floor keeps it from going down",
    ),
    Rule(
        "log.old-log-damaged",
        INFO,
        ".log.2 is damaged, but the index was written against .log and does not need it",
        "never reads it (silent, the same data) and replaces it at the next rotation",
        NONE,
        note="the findings of .log.2 are named in the message; they count when the index "
        "still needs .log.2",
    ),
    Rule(
        "log.tail-update-invalid",
        F,
        "an external header update sets log_file_tail_offset past the end of its own record",
        "marks the log corrupted whenever it reads it ('log_file_tail_offset ... goes past "
        "sync offset'), fscks the index and recreates the log",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.applied-record-damaged",
        W,
        "a log record the index has already applied is damaged",
        "does not read it again while dovecot.index is intact (silent, the same data); "
        "it would fail on it only after losing the index",
        NONE,
        note="the record's own finding is named in the message; the log is dropped at a "
        "later rotation",
    ),
    Rule(
        "log.duplicate-sequence",
        E,
        ".log and .log.2 carry the same file_seq",
        "'duplicate transaction log sequence': marks .log.2 corrupted",
        REBUILD,
    ),
    # -- how files relate ----------------------------------------------------------------
    Rule(
        "index.indexid-mismatch",
        F,
        "dovecot.index belongs to another index generation than its logs",
        "adopts the index's id and recreates the logs (2.4: deletes the index)",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "log.indexid-mismatch",
        F,
        "a log belongs to another index generation",
        "deletes and recreates the log ('indexid changed')",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.log-missing",
        E,
        "dovecot.index.log is gone while dovecot.index was written against it",
        "creates a new log without a word: changes recorded after the index was written "
        "are gone and HIGHESTMODSEQ starts again (CONDSTORE/QRESYNC clients miss changes)",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.log-lost",
        E,
        "the log position in dovecot.index is not in the logs on disk",
        "'Lost log' / 'Missing middle file': fsck to the head; changes in between are lost",
        RESYNC,
        DBOX_STATE,
    ),
    Rule(
        "index.log-offset-invalid",
        E,
        "log_file_head/tail_offset is outside the log or not on a record boundary",
        "'broken sync positions' or 'Invalid offset': fsck",
        RESYNC,
        DBOX_STATE,
    ),
    Rule(
        "index.uidvalidity-mismatch",
        E,
        "an sdbox/mdbox index's UIDVALIDITY differs from what the list index (and the log) "
        "recorded for the mailbox",
        "shows clients the index's value: they drop their cache and fetch every message "
        "again",
        RESYNC,
        DBOX_STATE,
    ),
    Rule(
        "index.log-seq-zero",
        E,
        "dovecot.index names log sequence 0, though logs exist",
        "finds no log to continue from and fscks the index ('fscking index file')",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "index.log-position-odd",
        W,
        "log_file_tail_offset is not a log record boundary or lies past the head, or "
        "log_file_head_offset is 0",
        "opens the mailbox from the head offset without complaint (the same data) and "
        "writes both offsets anew at its next sync",
        NONE,
    ),
    Rule(
        "index.head-beyond-log-end",
        E,
        "the index claims log data that is not complete on disk",
        "treats the log as shrunk or corrupted; fsck",
        RESYNC,
        DBOX_STATE,
    ),
    Rule(
        "index.modseq-position-ahead",
        INFO,
        "the modseq header points past the log head",
        "'modseq_hdr.log_offset too large': re-reads the log, harmless",
        NONE,
        note="Dovecot corrects the position the next time it writes the index",
    ),
    # -- cache ---------------------------------------------------------------------------
    Rule("cache.file-too-small", F, "the cache is shorter than its header", CACHE_UNLINK, PURGE),
    Rule("cache.version", F, "unsupported cache version or uoff_t size", CACHE_UNLINK, PURGE),
    Rule("cache.file-seq-zero", F, "the cache's file_seq is 0", CACHE_UNLINK, PURGE),
    Rule(
        "cache.indexid-mismatch",
        W,
        "the cache belongs to another index generation",
        "deletes the cache silently",
        PURGE,
        note="a warning: Dovecot throws the cache away and shows the same data; only the "
        "cache is lost",
    ),
    Rule("cache.field-header-invalid", F, "the cached field table is broken", CACHE_UNLINK, PURGE),
    Rule(
        "cache.record-invalid",
        F,
        "a message's cache record is out of bounds or malformed",
        CACHE_UNLINK,
        PURGE,
    ),
    Rule(
        "cache.mime-parts-invalid",
        E,
        "a message's cached MIME structure (mime.parts) contradicts itself",
        "'Deleting corrupted cache record uid=N: ... Corrupted cached mime.parts data' when "
        "a client asks for the structure or a part, then parses the message again",
        PURGE,
    ),
    Rule(
        "cache.record-shared",
        E,
        "a message's cache offset lands on a record of another message's chain",
        "shows the other message's cached fields (headers, sizes, dates) for it, without "
        "a word",
        PURGE,
        note="the offset is the damaged value: the index record or log record that holds "
        "it is named",
    ),
    Rule(
        "cache.record-past-eof",
        W,
        "a message's cache record runs past the end of the file (the file was cut)",
        "reads the missing bytes as zeros without an error (records up to 8 KiB, within the "
        "file's last page); the cached values there are wrong until the cache is purged",
        PURGE,
    ),
    Rule(
        "cache.record-chain-loop",
        F,
        "a message's cache records form a loop",
        CACHE_UNLINK + " ('record list is circular')",
        PURGE,
    ),
    Rule(
        "cache.stale",
        W,
        "the index, with its log replayed, points into another cache file (reset_id differs)",
        "logs 'Deleting corrupted cache: reset_id mismatch even after locking' and deletes "
        "the cache at the next sync",
        PURGE,
        note="the log did not bring a cache reset either (that case is not reported): "
        "Dovecot's error is certain, the loss only the cache",
    ),
    Rule(
        "list.mailbox-guid-differs",
        W,
        "the mailbox's GUID in its own files differs from the list index's record of it",
        "shows the mailbox's own value: doveadm, dsync and MAILBOXID see another mailbox",
        RESYNC,
        note="either copy may be the changed one; the mailbox's file is named",
    ),
    # -- maildir -------------------------------------------------------------------------
    Rule(
        "maildir.flags-differ",
        E,
        "a message's flags or keywords in the index are not those of its file name, and "
        "the record is not marked dirty",
        "shows the index's flags until a full resync reads the names again",
        RESYNC,
        note="the file name is where maildir keeps flags: the index's copy is the one "
        "that changed",
    ),
    Rule(
        "maildir.uidlist-missing",
        E,
        "dovecot-uidlist is gone while the index records messages",
        "writes a new one: every message gets a new UID and the mailbox a new UIDVALIDITY, "
        "so every client downloads it again",
        RESYNC,
        ("UIDs",),
    ),
    Rule(
        "uidlist.unusable",
        F,
        "dovecot-uidlist cannot be parsed",
        "deletes it and gives every message a new UID",
        RESYNC,
        ("UIDs",),
        "Restore the uidlist from backup before a resync if UIDs matter.",
    ),
    Rule(
        "uidlist.record-invalid",
        F,
        "a dovecot-uidlist line is broken or out of order",
        "'Broken file': deletes it and gives every message a new UID",
        RESYNC,
        ("UIDs",),
    ),
    Rule(
        "uidlist.duplicate-file",
        W,
        "a file is listed twice with different UIDs",
        "keeps the later UID and rewrites the file",
        NONE,
    ),
    Rule(
        "maildir.uidvalidity-mismatch",
        E,
        "dovecot-uidlist and dovecot.index disagree on UIDVALIDITY",
        "'UIDVALIDITY changed': resets the index, all messages re-added",
        RESYNC,
        ("flags", "UIDs"),
    ),
    Rule(
        "maildir.index-uid-not-in-uidlist",
        E,
        "an index record's UID is missing from dovecot-uidlist",
        "expunges it from the index at the next sync (the message "
        "vanishes, or comes back with a new UID)",
        RESYNC,
        ("UIDs",),
    ),
    Rule(
        "maildir.message-lost-from-index",
        E,
        "a message on disk is missing from the index",
        "'Expunged message reappeared': gives it a new UID, or adds it at the next sync",
        RESYNC,
    ),
    Rule(
        "maildir.mail-file-missing",
        E,
        "an index record's message file is not in cur/ or new/",
        "the message cannot be read and is expunged at the next sync",
        RESYNC,
    ),
    Rule(
        "uidlist.filename-wrong",
        E,
        "dovecot-uidlist names a file that is not on disk for a UID of the index, while a "
        "file in cur/ that it does not list is there: the line is damaged, not the mail",
        "expunges the UID and gives the unlisted file a new UID (its flags and keywords "
        "in the index are lost)",
        RESYNC,
    ),
    Rule(
        "maildir.uidlist-file-missing",
        INFO,
        "dovecot-uidlist still lists an expunged file (normal until it is rewritten)",
        "drops the entry when it rewrites the file",
        NONE,
    ),
    Rule(
        "maildir.keywords-invalid",
        W,
        "dovecot-keywords has malformed lines",
        "ignores them; keywords may be shown as letters",
        NONE,
    ),
    # -- dbox ----------------------------------------------------------------------------
    Rule(
        "dbox.file-invalid",
        E,
        "a dbox mail file's header or message framing is broken",
        "'Invalid dbox ...': fixes or skips the file during a rebuild",
        STORAGE,
    ),
    Rule(
        "sdbox.mail-file-missing",
        E,
        "an index record has no u.N file",
        "the message cannot be read; a rebuild drops it",
        REBUILD,
    ),
    Rule(
        "sdbox.mail-file-not-in-index",
        E,
        "a u.N file is not in the index",
        "the message is invisible until a rebuild",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "sdbox.mailbox-guid-missing",
        E,
        "the dbox-hdr mailbox GUID is zero or absent",
        "rebuilds the index",
        REBUILD,
        DBOX_STATE,
    ),
    Rule(
        "mdbox.map-missing",
        E,
        "the mdbox map index cannot be read",
        "full storage rebuild",
        STORAGE,
    ),
    Rule(
        "mdbox.map-uid-lost",
        E,
        "a mailbox record's map_uid is not in the map",
        "'map uid lost': full storage rebuild",
        STORAGE,
    ),
    Rule(
        "mdbox.map-uidvalidity-mismatch",
        E,
        "mailbox and map disagree on map_uid_validity",
        "'map uidvalidity mismatch': full storage rebuild",
        STORAGE,
    ),
    Rule(
        "mdbox.refcount-too-low",
        E,
        "a map entry is referenced more often than its refcount",
        "'refcount too low': full storage rebuild; a purge may delete a live message",
        STORAGE,
    ),
    Rule(
        "mdbox.refcount-too-high",
        W,
        "a map entry's refcount exceeds its references",
        "the message's space is never reclaimed by doveadm purge",
        NONE,
    ),
    Rule(
        "mdbox.map-file-missing",
        E,
        "a map entry points into an m.N file that is missing",
        "the message cannot be read; storage rebuild",
        STORAGE,
    ),
    Rule(
        "mdbox.map-offset-invalid",
        E,
        "a map entry's offset/size is outside its m.N file or not at a message header",
        "'Inconsistency in map index': storage rebuild",
        STORAGE,
    ),
    Rule(
        "mdbox.map-invalid",
        E,
        "the map index lacks its map/ref extensions or has file_id 0",
        "'mdbox map corrupted': storage rebuild",
        STORAGE,
    ),
    # -- list index ----------------------------------------------------------------------
    Rule(
        "list.header-invalid",
        E,
        "the list index name table is broken",
        "deletes the list index and rebuilds it from the mail directories",
        RESYNC,
    ),
    Rule(
        "list.record-invalid",
        E,
        "a list index record is inconsistent (names, parents, GUIDs)",
        "deletes the list index and rebuilds it",
        RESYNC,
    ),
    Rule(
        "list.mailbox-missing",
        W,
        "a mailbox on disk is missing from the list index",
        "LIST does not show it until the list index is refreshed or rebuilt",
        RESYNC,
    ),
    # -- the scanner itself ----------------------------------------------------------------
    Rule(
        "scanner.unreadable",
        E,
        "a file could not be read (permissions, I/O error, vanished)",
        "n/a",
        NONE,
        note="Could-not-check is never clean: exit status 8.",
    ),
    Rule(
        "scanner.state-elsewhere",
        E,
        "mail Dovecot has handled, but none of its index or control files where it was found",
        "n/a: it reads them where INDEX=/CONTROL= put them",
        NONE,
        note="Could-not-check: the mailbox's state was not read. Give the INDEX=/CONTROL= "
        "trees (--index-root, --control-root).",
    ),
    Rule(
        "scanner.unstable",
        W,
        "a file kept changing while it was read",
        "n/a",
        NONE,
        note="Scan again when the mailbox is quieter.",
    ),
    Rule(
        "scanner.error", E, "the checks of this mailbox stopped on an internal error", "n/a", NONE
    ),
    Rule("scanner.timeout", E, "the checks of this mailbox ran past the time limit", "n/a", NONE),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}

# Dovecot checks deliberately not given an ID, and why.
NOT_CHECKED = (
    (
        "Keywords removed/changed unexpectedly",
        "compares two maps of the same process over time; a single read of the files cannot see it",
    ),
    (
        "log file shrank / Transaction log was recreated while we had it locked",
        "needs two reads of a file held open; the scanner re-reads a changing file instead",
    ),
    (
        "registered field type/size changed (cache)",
        "depends on the fields a running Dovecot registers, not on the files",
    ),
    (
        "mdbox: Storage keeps breaking / Can't rebuild storage",
        "outcomes of a rebuild, not states of the files",
    ),
    (
        "Cached message size smaller/larger than expected, Broken MIME parts",
        "need the message bodies parsed against their cache entries; not done in this version",
    ),
)
