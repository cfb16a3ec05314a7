"""The report page's chart: mailboxes newly affected, usable again and complete per
hour or per day, as inline SVG with axes, a legend and a count on every bar.

Inline SVG needs no script and no external resource, so the page stays one file that
a browser without JavaScript (or behind ``serve``'s content security policy) shows
as it is. The hours or days run without gaps, so the x axis is a time axis a person
can read; estimated times (the queue plan's) are drawn pale, as they may move.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter
from dataclasses import dataclass

from dovecot_index_tool.back_times import TimeKind
from dovecot_index_tool.report import ReportRow

HOUR, DAY = 3600, 86400
HOURLY_UP_TO = 2 * DAY  # a range this short reads better per hour than as one or two days
SERIES = (("affected", "affected", "#c0392b"), ("usable", "usable again", "#2874a6"),
          ("complete", "complete", "#1e8449"))
WIDTH, HEIGHT = 860, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 58
MIN_LABEL_GAP = 64  # px between two labels of the x axis
MAX_BAR = 24  # px: a few hours of data are bars, not walls


@dataclass(frozen=True)
class Event:
    series: str  # a key of SERIES
    at: float
    estimate: bool


def events(rows: list[ReportRow]) -> list[Event]:
    """When each mailbox became affected, usable again and complete (known times only:
    an unknown time is no bar, never a guess)."""
    out = []
    for r in rows:
        estimate = r.times.kind is TimeKind.ESTIMATE
        out.append(Event("affected", r.first_seen, False))
        for series, at in (("usable", r.usable_at), ("complete", r.complete_at)):
            if at is not None:
                out.append(Event(series, at, estimate))
    return out


def bucket_size(times: list[float]) -> int:
    return HOUR if max(times) - min(times) <= HOURLY_UP_TO else DAY


def bucket_start(t: float, size: int) -> float:
    """The local hour or day ``t`` falls in (local, as every time on the page is)."""
    tm = time.localtime(t)
    if size == HOUR:  # from the offset in force, so the repeated hour of autumn is two
        return t - (t + tm.tm_gmtoff) % HOUR
    return time.mktime((tm.tm_year, tm.tm_mon, tm.tm_mday, 0, 0, 0, 0, 0, -1))


def buckets(first: float, last: float, size: int) -> list[float]:
    """Every hour or day from ``first`` to ``last``; a day is found again from the local
    calendar, so that a day of 23 or 25 hours does not shift the ones after it."""
    out, t = [], bucket_start(first, size)
    while t <= last:
        out.append(t)
        t = max(t + HOUR, bucket_start(t + size + (HOUR * 2 if size == DAY else 0), size))
    return out


def nice_step(peak: int) -> int:
    """A step of 1, 2 or 5 times a power of ten that gives at most five ticks."""
    raw = max(1.0, peak / 5)
    power = 10 ** math.floor(math.log10(raw))
    return next(int(m * power) for m in (1, 2, 5, 10) if m * power >= raw)


def chart_svg(rows: list[ReportRow], now: float) -> str:
    """The chart, or a sentence when there is nothing to draw."""
    found = events(rows)
    if not found:
        return '<p id="chart-empty">No damage recorded.</p>'
    times = [*(e.at for e in found), now]  # the axis reaches the present
    size = bucket_size(times)
    starts = buckets(min(times), max(times), size)
    counts: Counter[tuple[str, float, bool]] = Counter(
        (e.series, bucket_start(e.at, size), e.estimate) for e in found)
    unit = "hour" if size == HOUR else "day"
    peak = max(Counter((s, b) for s, b, _ in counts.elements()).values())
    step = nice_step(peak)
    top = step * math.ceil(peak / step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(starts)
    bar = min(MAX_BAR, max(1.0, slot * 0.8 / len(SERIES)))

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [_y_axis(top, step, y, plot_w), *_x_axis(starts, size, slot, plot_h)]
    for i, start in enumerate(starts):
        for j, (key, label, colour) in enumerate(SERIES):
            x = LEFT + i * slot + (slot - bar * len(SERIES)) / 2 + j * bar
            parts.append(_bar(x, bar, y, counts[key, start, False],
                              counts[key, start, True], label, colour, start, unit))
    parts.append(_now_marker(now, starts, size, slot, plot_h))
    parts.append(_legend())
    e = html.escape
    title = f"Mailboxes affected, usable again and complete per {unit}"
    return (
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" data-unit="{unit}" '
        f'font-family="sans-serif" font-size="11"><title>{e(title)}</title>'
        f'{"".join(parts)}</svg>'
    )


def _bar(x: float, width: float, y, known: int, estimated: int, label: str, colour: str,
         start: float, unit: str) -> str:
    """One series in one hour or day: the actual count, the estimated one stacked pale
    above it, and the total written over the bar."""
    total = known + estimated
    if not total:
        return ""
    e = html.escape
    when = _label(start, HOUR if unit == "hour" else DAY, full=True)
    out = []
    for count, base, opacity, kind in ((known, 0, 1.0, ""), (estimated, known, 0.4,
                                                             " (estimated)")):
        if count:
            out.append(
                f'<rect class="bar" data-series="{e(label)}" x="{x:.1f}" '
                f'y="{y(base + count):.1f}" width="{width:.1f}" '
                f'height="{y(base) - y(base + count):.1f}" fill="{colour}" '
                f'fill-opacity="{opacity}"><title>{e(f"{count} {label}{kind}, {when}")}</title>'
                f"</rect>"
            )
    out.append(f'<text class="bar-label" x="{x + width / 2:.1f}" y="{y(total) - 3:.1f}" '
               f'text-anchor="middle">{total}</text>')
    return "".join(out)


def _y_axis(top: int, step: int, y, plot_w: float) -> str:
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{y(0):.1f}" stroke="#333"/>']
    for v in range(0, top + 1, step):
        out.append(
            f'<line x1="{LEFT - 4}" y1="{y(v):.1f}" x2="{LEFT + plot_w:.1f}" y2="{y(v):.1f}" '
            f'stroke="{"#333" if v == 0 else "#ddd"}"/>'
            f'<text class="y-tick" x="{LEFT - 7}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
        )
    mid = TOP + (HEIGHT - TOP - BOTTOM) / 2
    out.append(f'<text x="14" y="{mid:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {mid:.1f})">mailboxes</text>')
    return "".join(out)


def _x_axis(starts: list[float], size: int, slot: float, plot_h: float) -> list[str]:
    every = max(1, math.ceil(MIN_LABEL_GAP / slot))
    base = TOP + plot_h
    out = []
    for i in range(0, len(starts), every):
        x = LEFT + (i + 0.5) * slot
        out.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#333"/>'
                   f'<text class="x-tick" x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
                   f"{html.escape(_label(starts[i], size))}</text>")
    name = "hour (local time)" if size == HOUR else "day (local time)"
    out.append(f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2:.1f}" y="{HEIGHT - 22}" '
               f'text-anchor="middle">{name}</text>')
    return out


def _label(start: float, size: int, full: bool = False) -> str:
    if size == DAY:
        return time.strftime("%Y-%m-%d" if full else "%m-%d", time.localtime(start))
    return time.strftime("%Y-%m-%d %H:00" if full else "%d %H:00", time.localtime(start))


def _now_marker(now: float, starts: list[float], size: int, slot: float, plot_h: float) -> str:
    """A dashed line at the present: bars right of it are what the plan expects."""
    start = bucket_start(now, size)
    if start not in starts:
        return ""
    i = starts.index(start)
    x = LEFT + (i + (now - start) / size) * slot
    return (f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{TOP + plot_h}" '
            f'stroke="#555" stroke-dasharray="4 3"/>'
            f'<text x="{x + 3:.1f}" y="{TOP - 8}" fill="#555">now</text>')


def _legend() -> str:
    out, x = [], LEFT
    for _, label, colour in SERIES:
        out.append(f'<rect x="{x}" y="10" width="12" height="12" fill="{colour}"/>'
                   f'<text class="legend" x="{x + 16}" y="20">{label}</text>')
        x += 26 + 7 * len(label)
    out.append(f'<rect x="{x}" y="10" width="12" height="12" fill="#777" fill-opacity="0.4"/>'
               f'<text class="legend" x="{x + 16}" y="20">pale: estimated</text>')
    return "".join(out)
