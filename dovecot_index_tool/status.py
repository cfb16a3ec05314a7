"""What a reseller publishes: per tenant, each mailbox online, degraded, offline or in
maintenance, the tenant overall, and an Atom feed of the state changes."""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import quote
from xml.etree import ElementTree as ET

from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.report import ReportRow, build_report

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 200


def mailbox_status(row: ReportRow) -> str:
    """Fatal damage: Dovecot cannot use the mailbox. Error: wrong data or an fsck."""
    if row.state in ("queued", "repairing"):
        return "maintenance"
    if row.state == "repaired" or row.worst in (None, "info", "warning"):
        return "online"
    return "offline" if row.worst == "fatal" else "degraded"


def overall(statuses: list[str]) -> str:
    if not statuses or all(s == "online" for s in statuses):
        return "online"
    if all(s == "offline" for s in statuses):
        return "offline"
    if any(s in ("offline", "degraded") for s in statuses):
        return "degraded"
    return "maintenance"


def tenant_status(queue: JobQueue, tenant: str | None) -> dict[str, object]:
    """Mailboxes of ``tenant`` (None: every tenant) that have a status other than a clean
    history; mailboxes never affected are online and not listed one by one."""
    rows = build_report(queue, tenant=tenant)
    boxes = [
        {
            "tenant": r.tenant,
            "user": r.user,
            "mailbox": r.mailbox,
            "status": mailbox_status(r),
            "state": r.state,
            "since": r.first_seen,
            "back_by": r.eta,
        }
        for r in rows
    ]
    statuses = [b["status"] for b in boxes]
    return {
        "tenant": tenant,
        "overall": overall(statuses),
        "generated": time.time(),
        "counts": dict(Counter(statuses)),
        "mailboxes": boxes,
    }


def atom_feed(
    queue: JobQueue, tenant: str | None, base_url: str = "urn:dovecot-index-tool"
) -> bytes:
    """State changes of the tenant's mailboxes, newest first: damage seen, jobs, repairs."""
    changes = _changes(queue, tenant)[:FEED_ENTRIES]
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    name = tenant or "all tenants"
    _text(feed, "title", f"Mailbox status: {name}")
    _text(feed, "id", f"{base_url}:feed:{quote(name)}")
    _text(feed, "updated", _iso(changes[0][0] if changes else time.time()))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "dovecot-index-tool")
    for when, key, title, summary in changes:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "title", title)
        _text(entry, "id", f"{base_url}:{quote(key)}")
        _text(entry, "updated", _iso(when))
        _text(entry, "summary", summary)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _changes(queue: JobQueue, tenant: str | None) -> list[tuple[float, str, str, str]]:
    out = []
    for r in build_report(queue, tenant=tenant):
        who = f"{r.user} {r.mailbox}"
        out.append(
            (
                r.first_seen,
                f"seen:{r.path}:{r.first_seen}",
                f"{who}: damaged ({r.worst})",
                f"{who} has {r.worst or 'no'} damage: {r.checks}",
            )
        )
        if r.repaired:
            out.append(
                (
                    r.repaired,
                    f"repaired:{r.path}:{r.repaired}",
                    f"{who}: repaired",
                    f"{who} is back: a scan no longer finds damage",
                )
            )
    for job in queue.jobs(tenant=tenant) if tenant is not None else queue.jobs():
        for e in queue.events(job.id):
            who = f"{job.user} {job.mailbox}"
            out.append(
                (
                    e["at"],
                    f"job:{job.id}:{e['at']}:{e['state']}",
                    f"{who}: repair {e['state']}",
                    f"{job.action}: {e['detail'] or ''}",
                )
            )
    return sorted(out, key=lambda c: c[0], reverse=True)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = text


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
