"""What a reseller publishes, in the shape status-page tools already read: Atlassian
Statuspage's summary (``page``, ``status``, ``components``, ``incidents``), each
mailbox with damage a component grouped by volume, plus our own fields; and an Atom
feed with one entry per state change of the one state model (``states.py``)."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote
from xml.etree import ElementTree as ET

from dovecot_index_tool.jobqueue.store import JobQueue
from dovecot_index_tool.report import Filters, ReportRow, build_report
from dovecot_index_tool.states import MailboxState, Transition

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 200
RECENT = 7 * 86400  # a repaired mailbox stays on the page (operational) this long
# component status, from best to worst, with the page indicator and description it gives
LEVELS = (
    ("operational", "none", "All Systems Operational"),
    ("under_maintenance", "minor", "Service Under Maintenance"),
    ("degraded_performance", "minor", "Minor Service Outage"),
    ("partial_outage", "major", "Partial System Outage"),
    ("major_outage", "critical", "Major System Outage"),
)
MAINTENANCE = (MailboxState.QUEUED, MailboxState.REPAIRING)


def component_status(state: MailboxState, worst: str) -> str:
    """Fatal damage: Dovecot cannot open the mailbox; error: wrong data; a repair under
    way is maintenance; not checked is at least degraded (nobody knows)."""
    if state is MailboxState.REPAIRED:
        return "operational"
    if state in MAINTENANCE:
        return "under_maintenance"
    return {"fatal": "major_outage", "error": "partial_outage"}.get(worst, "degraded_performance")


def stable_id(*parts: str) -> str:
    """An id that names nothing of the filesystem and never changes for the same parts."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def iso(stamp: float | None) -> str | None:
    return None if stamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def tenant_status(queue: JobQueue, tenant: str | None, now: float | None = None,
                  base_url: str = "") -> dict[str, object]:
    """The Statuspage summary of ``tenant``'s mailboxes (None: every tenant)."""
    now = time.time() if now is None else now
    page_id = stable_id("page", tenant or "*")
    rows = [r for r in build_report(queue, Filters(tenant=tenant), now=now)
            if r.state != "repaired" or r.since >= now - RECENT]
    components = [_component(r, page_id) for r in rows]
    groups = _groups(rows, components, page_id)
    level = max((_level(c["status"]) for c in components), default=0)
    _, indicator, description = LEVELS[level]
    return {
        "page": {"id": page_id, "name": f"Mailbox status: {tenant or 'all tenants'}",
                 "url": base_url, "time_zone": "Etc/UTC", "updated_at": iso(now)},
        "status": {"indicator": indicator, "description": description},
        "components": groups + components,
        "incidents": _incidents(rows, components, page_id, indicator, now),
        "scheduled_maintenances": [],
    }


def _level(status: str) -> int:
    return [name for name, _, _ in LEVELS].index(status)


def _component(row: ReportRow, page_id: str) -> dict[str, object]:
    return {
        "id": stable_id("mailbox", row.path),
        "name": f"{row.user} {row.mailbox}",
        "status": component_status(row.current.state, row.worst),
        "created_at": iso(row.first_seen),
        "updated_at": iso(row.since),
        "position": 0,
        "description": row.current.evidence.detail,
        "showcase": False,
        "start_date": None,
        "group_id": stable_id("volume", row.volume),
        "page_id": page_id,
        "group": False,
        "only_show_if_degraded": False,
        "user": row.user,
        "mailbox": row.mailbox,
        "tenant": row.tenant,
        "state": row.state,
        "worst": row.worst,
        "checks": row.checks,
        "first_seen": iso(row.first_seen),
        "usable_at": iso(row.usable_at),
        "complete_at": iso(row.complete_at),
        "times": row.times.kind.value,
        "times_reason": row.times.reason,
    }


def _groups(rows: list[ReportRow], components: list[dict], page_id: str) -> list[dict]:
    """One group component per volume, holding its mailboxes' components."""
    members: dict[str, list[dict]] = {}
    for row, component in zip(rows, components, strict=True):
        members.setdefault(row.volume, []).append(component)
    out = []
    for position, (volume, group) in enumerate(sorted(members.items()), start=1):
        worst = max(_level(c["status"]) for c in group)
        for c in group:
            c["position"] = position
        out.append({
            "id": stable_id("volume", volume), "name": volume.rstrip("/").rsplit("/", 1)[-1],
            "status": LEVELS[worst][0], "created_at": min(c["created_at"] for c in group),
            "updated_at": max(c["updated_at"] for c in group), "position": position,
            "description": None, "showcase": False, "start_date": None, "group_id": None,
            "page_id": page_id, "group": True, "only_show_if_degraded": False,
            "components": [c["id"] for c in group],
        })
    return out


def _incidents(rows, components, page_id, indicator, now) -> list[dict[str, object]]:
    """One open incident for the mailboxes not operational, while there are any."""
    down = [(r, c) for r, c in zip(rows, components, strict=True) if c["status"] != "operational"]
    if not down:
        return []
    started = min(r.first_seen for r, _ in down)
    incident_id = stable_id("incident", page_id, str(started))
    status = "identified" if all(r.current.state in MAINTENANCE for r, _ in down) \
        else "investigating"
    body = summary_line(rows)
    update = {"id": stable_id("update", incident_id, body), "status": status, "body": body,
              "incident_id": incident_id, "created_at": iso(now), "updated_at": iso(now),
              "display_at": iso(now), "affected_components": None,
              "deliver_notifications": False}
    return [{
        "id": incident_id, "name": f"{mailboxes(len(down))} affected", "status": status,
        "created_at": iso(started), "updated_at": iso(max(r.since for r, _ in down)),
        "monitoring_at": None, "resolved_at": None, "impact": indicator, "shortlink": "",
        "started_at": iso(started), "page_id": page_id, "incident_updates": [update],
        "components": [c for _, c in down],
    }]


def summary_line(rows: list[ReportRow]) -> str:
    """How many affected, how many usable again, and the next time one is expected back."""
    now = time.time()
    usable = sum(1 for r in rows if r.usable_at is not None and r.usable_at <= now)
    coming = [r.usable_at for r in rows if r.usable_at is not None and r.usable_at > now]
    nxt = f"next expected back at {iso(min(coming))}" if coming else "no time expected yet"
    return f"{mailboxes(len(rows))} affected, {usable} usable again; {nxt}"


def mailboxes(n: int) -> str:
    return f"{n} mailbox" if n == 1 else f"{n} mailboxes"


def changes(queue: JobQueue, tenant: str | None) -> list[tuple[ReportRow, Transition]]:
    """Every state change of the tenant's mailboxes, newest first."""
    out = [(r, t) for r in build_report(queue, Filters(tenant=tenant)) for t in r.history]
    return sorted(out, key=lambda c: (c[1].at, c[0].path), reverse=True)


def change_id(row: ReportRow, step: Transition) -> str:
    """The same state change always has the same id (feed entries, webhook events)."""
    return stable_id("change", row.path, step.state.value, repr(step.at))


def atom_feed(
    queue: JobQueue, tenant: str | None, base_url: str = "urn:dovecot-index-tool"
) -> bytes:
    """One entry per state change of the tenant's mailboxes, newest first."""
    entries = changes(queue, tenant)[:FEED_ENTRIES]
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    name = tenant or "all tenants"
    _text(feed, "title", f"Mailbox status: {name}")
    _text(feed, "id", f"{base_url}:feed:{quote(name)}")
    _text(feed, "updated", iso(entries[0][1].at if entries else time.time()))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "dovecot-index-tool")
    for row, step in entries:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        was = f" (was {step.previous})" if step.previous else ""
        _text(entry, "title", f"{row.user} {row.mailbox}: {step.state}{was}")
        _text(entry, "id", f"{base_url}:change:{change_id(row, step)}")
        _text(entry, "updated", iso(step.at))
        checks = ", ".join(step.checks) or "no check recorded"
        _text(entry, "summary", f"{step.evidence.detail}; worst {step.worst}; checks: {checks}")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _text(parent: ET.Element, tag: str, text: str | None) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = text
