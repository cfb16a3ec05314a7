"""A minimal reader of Atlassian Statuspage's ``/api/v2/summary.json``, as a status page
client consumes it: every key it relies on, with the types and values the API documents."""

from __future__ import annotations

from dataclasses import dataclass

INDICATORS = {"none", "minor", "major", "critical"}
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage",
                      "major_outage", "under_maintenance"}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}


class NotASummary(ValueError):
    pass


@dataclass
class Component:
    id: str
    name: str
    status: str
    group_id: str | None
    group: bool
    components: list[str]
    extra: dict


@dataclass
class Summary:
    page_name: str
    indicator: str
    description: str
    components: list[Component]
    incidents: list[dict]

    def groups(self) -> dict[str, Component]:
        return {c.id: c for c in self.components if c.group}


def _need(doc: dict, key: str, kind) -> object:
    if key not in doc or not isinstance(doc[key], kind):
        raise NotASummary(f"{key!r} missing or not {kind}")
    return doc[key]


def parse(doc: dict) -> Summary:
    page = _need(doc, "page", dict)
    for key in ("id", "name", "url", "updated_at"):
        _need(page, key, str)
    status = _need(doc, "status", dict)
    if _need(status, "indicator", str) not in INDICATORS:
        raise NotASummary(f"indicator {status['indicator']!r}")
    components = []
    for c in _need(doc, "components", list):
        if _need(c, "status", str) not in COMPONENT_STATUSES:
            raise NotASummary(f"component status {c['status']!r}")
        if c.get("group_id") is not None and not isinstance(c["group_id"], str):
            raise NotASummary("group_id")
        components.append(Component(_need(c, "id", str), _need(c, "name", str), c["status"],
                                    c.get("group_id"), bool(c.get("group")),
                                    list(c.get("components") or []), c))
    incidents = _need(doc, "incidents", list)
    for i in incidents:
        for key in ("id", "name", "status", "impact", "created_at", "shortlink"):
            _need(i, key, str)
        if i["status"] not in INCIDENT_STATUSES or i["impact"] not in INDICATORS:
            raise NotASummary(f"incident {i['status']!r} {i['impact']!r}")
        for update in _need(i, "incident_updates", list):
            _need(update, "body", str)
        for c in _need(i, "components", list):
            _need(c, "id", str)
    groups = {c.id for c in components if c.group}
    for c in components:
        if c.group_id is not None and c.group_id not in groups:
            raise NotASummary(f"group_id {c.group_id} names no group")
    return Summary(page["name"], status["indicator"], _need(status, "description", str),
                   components, incidents)
