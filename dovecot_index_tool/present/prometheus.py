"""A node_exporter textfile for the nightly scan, written atomically (temp file + rename,
so the exporter never reads half a file). The last success time survives failed runs:
it is read back from the previous file when this run did not succeed."""

from __future__ import annotations

import re
from pathlib import Path

from dovecot_index_tool.atomic import replace_atomically
from dovecot_index_tool.check.severity import SERIOUS
from dovecot_index_tool.load.gate import PauseReason
from dovecot_index_tool.scan.engine import ScanResult

PREFIX = "dovecot_index_tool_scan"
RECURRED = "dovecot_index_tool_recurred_mailboxes"  # about the mailboxes, not the run
SEVERITIES = tuple(str(s) for s in SERIOUS)
PAUSE_REASONS = tuple(str(r) for r in PauseReason)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _previous_success(path: Path) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    m = re.search(rf"^{PREFIX}_last_success_timestamp_seconds (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def render(result: ScanResult, previous_success: float | None) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {PREFIX}_{name} {text}")
        lines.append(f"# TYPE {PREFIX}_{name} {kind}")
        lines.extend(f"{PREFIX}_{name}{labels} {value:.17g}" for labels, value in samples)

    volumes = sorted(result.volumes.items())
    metric(
        "mailboxes",
        "gauge",
        "Mailboxes scanned, per volume.",
        [(f'{{volume="{_label(v)}"}}', c["mailboxes"]) for v, c in volumes],
    )
    metric(
        "bytes",
        "gauge",
        "Bytes of index files read, per volume.",
        [(f'{{volume="{_label(v)}"}}', c["bytes"]) for v, c in volumes],
    )
    metric(
        "affected_mailboxes",
        "gauge",
        "Mailboxes whose worst finding has this severity, per volume.",
        [
            (f'{{volume="{_label(v)}",severity="{s}"}}', c[s])
            for v, c in volumes
            for s in SEVERITIES
        ],
    )
    metric(
        "could_not_check_mailboxes",
        "gauge",
        "Mailboxes or directories not checked.",
        [(f'{{volume="{_label(v)}"}}', c["could_not_check"]) for v, c in volumes],
    )
    metric(
        "volume_errors",
        "gauge",
        "Volumes missing, unreadable or empty.",
        [("", len(result.volume_errors))],
    )
    metric(
        "paused_seconds",
        "gauge",
        "Seconds the last scan waited for a busy host (--max-load, --max-io-pressure).",
        [(f'{{reason="{r}"}}', result.paused.get(r, 0.0)) for r in PAUSE_REASONS],
    )
    lines.append(f"# HELP {RECURRED} Mailboxes damaged again after a verified repair, "
                 "per volume.")
    lines.append(f"# TYPE {RECURRED} gauge")
    lines.extend(f'{RECURRED}{{volume="{_label(v)}"}} {n}'
                 for v, n in sorted(result.recurred.items()))
    duration = (result.finished or result.started) - result.started
    metric("duration_seconds", "gauge", "Wall time of the last scan.", [("", duration)])
    metric(
        "last_run_timestamp_seconds",
        "gauge",
        "When the last scan finished.",
        [("", result.finished or result.started)],
    )
    succeeded = result.status == "complete" and not result.volume_errors and not result.unchecked
    success = (result.finished or result.started) if succeeded else previous_success
    if success is not None:
        metric(
            "last_success_timestamp_seconds",
            "gauge",
            "When a scan last finished complete, with everything checked.",
            [("", success)],
        )
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, result: ScanResult) -> None:
    """Write so that node_exporter never reads half a file."""
    text = render(result, _previous_success(path))
    replace_atomically(path, text.encode(), 0o644)
