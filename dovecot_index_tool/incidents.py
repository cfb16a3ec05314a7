"""What kind of damage, where, since when, and did it come back after repair.

Why: in an outage the first question is which layer is breaking the files (the
storage stack, memory, or Dovecot itself), and the second is whether repaired
mailboxes break again (a second bug). Damage from one layer has a shape: FAST'08
found storage corruption clustered in space and time on one disk, memory errors are
isolated bit flips wherever the data went, and a software bug writes well-formed
values that contradict each other on every volume. So open findings are grouped by
signature, volume, device (``st_dev``) and time window, and each group is named by
the layer whose shape it has, with the evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from dovecot_index_tool.check.signatures import Kind, Signature
from dovecot_index_tool.jobqueue.rechecks import JobKind
from dovecot_index_tool.jobqueue.store import DONE
from dovecot_index_tool.ledger.incidents import open_damage
from dovecot_index_tool.ledger.store import Ledger, and_equal

WINDOW = 3600.0  # damage further apart than this is another window
BYTE_DAMAGE = frozenset(Kind) - {Kind.LOGICAL, Kind.UNKNOWN}
SPREAD = frozenset({Kind.BIT_FLIP, Kind.LOGICAL})  # their spread over devices is the evidence


class Layer(StrEnum):
    STORAGE = "storage"
    MEMORY = "memory"
    DOVECOT = "dovecot"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Damage:
    """One open finding as the incident view needs it."""

    volume: str
    tenant: str | None
    user: str
    mailbox: str
    path: str
    check: str
    signature: Signature
    device: int | None
    at: float  # the damaged file's mtime, else when the finding was first seen
    first_seen: float
    last_seen: float

    @classmethod
    def from_row(cls, row: dict) -> Damage:
        signature = Signature.from_json(row["signature"]) or Signature(
            Kind.UNKNOWN, "recorded before signatures")
        return cls(row["volume"], row["tenant"], row["user"], row["mailbox"], row["path"],
                   row["check_id"], signature, row["device"],
                   row["file_mtime"] or row["first_seen"], row["first_seen"], row["last_seen"])

    @property
    def kind(self) -> Kind:
        return self.signature.kind

    @property
    def who(self) -> tuple[str | None, str, str]:
        return self.tenant, self.user, self.mailbox


@dataclass(frozen=True)
class Group:
    layer: Layer
    kind: Kind
    damage: tuple[Damage, ...]
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        volumes, devices = _values(d.volume for d in self.damage), _values(
            d.device for d in self.damage)
        start, end = min(d.at for d in self.damage), max(d.at for d in self.damage)
        return {
            "layer": self.layer.value, "signature": self.kind.value,
            "volume": volumes[0] if len(volumes) == 1 else None,
            "device": devices[0] if len(devices) == 1 else None,
            "volumes": volumes, "devices": devices,
            "first_seen": min(d.first_seen for d in self.damage),
            "last_seen": max(d.last_seen for d in self.damage),
            "window": {"start": start, "end": end, "seconds": end - start},
            "mailboxes": _mailboxes(self.damage), "findings": len(self.damage),
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class Recurrence:
    """A mailbox damaged again after a verified repair."""

    damage: tuple[Damage, ...]
    repaired: float

    def to_dict(self) -> dict[str, object]:
        first = min(d.first_seen for d in self.damage)
        tenant, user, mailbox = self.damage[0].who
        return {"tenant": tenant, "user": user, "mailbox": mailbox,
                "volume": self.damage[0].volume, "repaired": self.repaired,
                "seen_again": first, "since_repair": first - self.repaired,
                "signatures": _values(d.kind.value for d in self.damage),
                "checks": _values(d.check for d in self.damage)}


@dataclass(frozen=True)
class Repaired:
    """A mailbox's last repair that finished and verified (a repair job done)."""

    volume: str
    finished: float


@dataclass(frozen=True)
class RecurrenceRate:
    """Of one volume's mailboxes repaired and verified (their last repair), how many
    are damaged again: a rate that climbs after the repairs is a cause still there."""

    volume: str
    repaired: int
    recurred: int
    since: float  # the earliest of those last repairs

    @property
    def rate(self) -> float:
        return self.recurred / self.repaired if self.repaired else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"volume": self.volume, "repaired": self.repaired, "recurred": self.recurred,
                "rate": self.rate, "since": self.since}


@dataclass(frozen=True)
class Incident:
    groups: tuple[Group, ...]
    recurrences: tuple[Recurrence, ...]
    recurring: dict[str, int] = field(default_factory=dict)  # signature -> mailboxes
    rates: tuple[RecurrenceRate, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"groups": [g.to_dict() for g in self.groups],
                "recurrences": [r.to_dict() for r in self.recurrences],
                "recurring_signatures": [{"signature": k, "mailboxes": n}
                                         for k, n in self.recurring.items()],
                "recurrence_rates": [r.to_dict() for r in self.rates]}


def build_incident(ledger: Ledger, since: float | None = None, volume: str | None = None,
                   window: float = WINDOW) -> Incident:
    damage = [Damage.from_row(r) for r in open_damage(ledger, since, volume)]
    groups = tuple(classify(members, damage) for members in clusters(damage, window))
    repaired = verified_repairs(ledger, volume)
    recurrences = find_recurrences(damage, repaired)
    return Incident(groups, recurrences, recurring_signatures(recurrences),
                    recurrence_rates(repaired, recurrences))


def recurred_mailboxes(ledger: Ledger, volumes: Iterable[str]) -> dict[str, int]:
    """Per volume, the mailboxes damaged again after their last verified repair: what
    a scan counts in its summary and its Prometheus textfile."""
    counts = {v: 0 for v in volumes}
    for v in counts:
        damage = [Damage.from_row(r) for r in open_damage(ledger, volume=v)]
        counts[v] = len(find_recurrences(damage, verified_repairs(ledger, v)))
    return counts


def clusters(damage: list[Damage], window: float) -> list[list[Damage]]:
    """Damage by signature, volume and device (bit flips and logical damage across
    them), cut into windows wherever ``window`` seconds pass without new damage."""
    keyed: dict[tuple, list[Damage]] = {}
    for d in damage:
        where = () if d.kind in SPREAD else (d.volume, d.device)
        keyed.setdefault((d.kind, *where), []).append(d)
    out = []
    for members in keyed.values():
        members.sort(key=lambda d: d.at)
        current = [members[0]]
        for d in members[1:]:
            if d.at - current[-1].at > window:
                out.append(current)
                current = []
            current.append(d)
        out.append(current)
    return sorted(out, key=lambda g: (g[0].at, g[0].kind))


def classify(members: list[Damage], everything: list[Damage]) -> Group:
    """The layer whose shape the group has, and why."""
    kind = members[0].kind
    layer, why = LAYER_RULES.get(kind, _unknown)(members, everything)
    return Group(layer, kind, tuple(members), (*why, *_where(members), *_samples(members)))


def _storage(members: list[Damage], _everything) -> tuple[Layer, list[str]]:
    return Layer.STORAGE, [f"{members[0].kind} is what the storage stack leaves "
                           "(lost, torn or misdirected writes)"]


def _zeroed(members: list[Damage], everything) -> tuple[Layer, list[str]]:
    aligned = [d for d in members if d.signature.aligned]
    if not aligned:
        return Layer.UNKNOWN, ["zeroed runs, none aligned to 512 bytes: a writer that "
                               "zeroed a field is as likely as a lost block"]
    return Layer.STORAGE, [f"{len(aligned)} of {len(members)} zeroed runs cover whole "
                           f"{max(d.signature.aligned for d in aligned)}-byte blocks"]


def _bit_flips(members: list[Damage], _everything) -> tuple[Layer, list[str]]:
    devices = _values(d.device for d in members)
    if len(devices) < 2:
        return Layer.UNKNOWN, ["bit flips on one device only: its disk or controller is "
                               "as likely as memory"]
    return Layer.MEMORY, [f"isolated bit flips (1-2 bits each) on {len(devices)} devices"]


def _logical(members: list[Damage], everything: list[Damage]) -> tuple[Layer, list[str]]:
    mailboxes = {d.path for d in members}
    damaged = {d.path for d in everything if d.kind in BYTE_DAMAGE} & mailboxes
    if damaged:
        return Layer.UNKNOWN, [f"{len(damaged)} of these mailboxes also have byte damage: "
                               "the contradictions may follow from it"]
    volumes = _values(d.volume for d in members)
    return Layer.DOVECOT, [f"well-formed values that contradict each other on "
                           f"{len(volumes)} volume(s), no byte damage in these mailboxes"]


def _unknown(members: list[Damage], _everything) -> tuple[Layer, list[str]]:
    return Layer.UNKNOWN, ["the bytes show no pattern of a known layer"]


LAYER_RULES = {Kind.ZEROED_RUN: _zeroed, Kind.FF_RUN: _storage, Kind.TORN_TAIL: _storage,
               Kind.STALE_COPY: _storage, Kind.FOREIGN_BYTES: _storage,
               Kind.BIT_FLIP: _bit_flips, Kind.LOGICAL: _logical}


def _where(members: list[Damage]) -> list[str]:
    span = max(d.at for d in members) - min(d.at for d in members)
    return [f"{len(members)} finding(s) in {len(_mailboxes(members))} mailbox(es) on "
            f"{len(_values(d.device for d in members))} device(s) of "
            f"{len(_values(d.volume for d in members))} volume(s) within {span / 60:.0f} min"]


def _samples(members: list[Damage]) -> list[str]:
    seen = dict.fromkeys(f"{d.check}: {d.signature.evidence}" for d in members)
    return list(seen)[:3]


def verified_repairs(ledger: Ledger, volume: str | None = None) -> dict[str, Repaired]:
    """Mailbox path -> its last repair that finished and verified (a repair job done)."""
    args: list[object] = []
    sql = and_equal(f"SELECT path, volume, MAX(finished) AS finished FROM jobs WHERE "
                    f"state = '{DONE}' AND kind = '{JobKind.REPAIR}' AND finished IS NOT NULL",
                    args, {"volume": volume})
    rows = ledger.db.all(sql + " GROUP BY path, volume", args)
    return {r["path"]: Repaired(r["volume"], r["finished"]) for r in rows}


def find_recurrences(damage: list[Damage], repaired: dict[str, Repaired]
                     ) -> tuple[Recurrence, ...]:
    """Mailboxes with damage first seen after their last verified repair."""
    again: dict[str, list[Damage]] = {}
    for d in damage:
        if d.path in repaired and d.first_seen > repaired[d.path].finished:
            again.setdefault(d.path, []).append(d)
    return tuple(Recurrence(tuple(ds), repaired[path].finished)
                 for path, ds in again.items())


def recurrence_rates(repaired: dict[str, Repaired], recurrences: Iterable[Recurrence]
                     ) -> tuple[RecurrenceRate, ...]:
    """Per volume: mailboxes repaired and verified, and how many of them recurred."""
    again = {r.damage[0].path for r in recurrences}
    by_volume: dict[str, list[tuple[str, Repaired]]] = {}
    for path, repair in repaired.items():
        by_volume.setdefault(repair.volume, []).append((path, repair))
    return tuple(
        RecurrenceRate(volume, len(boxes), sum(p in again for p, _ in boxes),
                       min(r.finished for _, r in boxes))
        for volume, boxes in sorted(by_volume.items()))


def recurring_signatures(recurrences: Iterable[Recurrence]) -> dict[str, int]:
    """Signatures that came back in more than one repaired mailbox: one cause."""
    counts: dict[str, int] = {}
    for r in recurrences:
        for kind in {d.kind.value for d in r.damage}:
            counts[kind] = counts.get(kind, 0) + 1
    return {k: n for k, n in sorted(counts.items()) if n > 1}


def _mailboxes(members: Iterable[Damage]) -> list[dict[str, object]]:
    return [{"tenant": t, "user": u, "mailbox": m}
            for t, u, m in dict.fromkeys(d.who for d in members)]


def _values(values: Iterable) -> list:
    return sorted({v for v in values if v is not None})

