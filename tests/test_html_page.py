"""The HTML page from report rows: the tenant lines, the badges, the chart, escaping."""

from __future__ import annotations

import io
import re

from dovecot_index_tool.back_times import BackTimes, TimeKind
from dovecot_index_tool.present.html_chart import DAY, HOUR, chart_svg
from dovecot_index_tool.present.html_page import BADGES, write_page
from dovecot_index_tool.present.report_view import when
from dovecot_index_tool.report import STATES, ReportRow
from dovecot_index_tool.states import Evidence, MailboxState, Transition

NOW = 1_790_000_000.0
HOSTILE = '<img src=x onerror="alert(1)">&'


def row(state: str, times: BackTimes, tenant: str | None = "example.org", user: str = "bob",
        first_seen: float = NOW - HOUR, **names: str) -> ReportRow:
    step = Transition(MailboxState(state), first_seen, None, Evidence(job=1), "error",
                      (names.get("check", "index.seen-count-wrong"),))
    return ReportRow(names.get("volume", "/srv/mail"), tenant, user,
                     names.get("mailbox", "INBOX"), "/srv/mail/" + user, (step,),
                     first_seen, first_seen, times)


def estimate(at: float) -> BackTimes:
    return BackTimes(at, at, TimeKind.ESTIMATE)


def page(rows: list[ReportRow], title: str = "Mailbox status") -> str:
    out = io.StringIO()
    write_page(rows, out, title, now=NOW)
    return out.getvalue()


def tenant_lines(html: str) -> list[str]:
    summary = html.split('<ul id="summary">', 1)[1].split("</ul>", 1)[0]
    return [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li>(.*?)</li>", summary)]


def test_the_tenant_line_gives_the_earliest_estimate_among_waiting_mailboxes() -> None:
    rows = [row("queued", estimate(NOW + 2 * HOUR), user="a"),
            row("repairing", estimate(NOW + HOUR), user="b"),
            row("repaired", BackTimes.actual(NOW - 60), user="c")]
    (line,) = tenant_lines(page(rows))
    assert line == (f"example.org: 3 affected, 1 usable again, 2 waiting; next expected: "
                    f"usable ~{when(NOW + HOUR)}, complete ~{when(NOW + HOUR)}")


def test_with_no_worker_the_tenant_line_says_so_and_gives_no_time() -> None:
    rows = [row("queued", BackTimes.unknown("no worker"), user=u) for u in ("a", "b")]
    (line,) = tenant_lines(page(rows))
    assert line == "example.org: 2 affected, 0 usable again, 2 waiting; " \
                   "next expected: unknown (no worker)"


def test_mailboxes_without_an_estimate_are_counted_with_their_reason_next_to_one() -> None:
    rows = [row("queued", estimate(NOW + HOUR), user="a"),
            row("affected", BackTimes.unknown("no repair queued"), user="b")]
    (line,) = tenant_lines(page(rows))
    assert line.endswith("(without an estimate: 1 no repair queued)")


def test_each_tenant_has_its_own_line_and_mailboxes_of_no_tenant_come_last() -> None:
    rows = [row("repaired", BackTimes.actual(NOW - 60), tenant=None),
            row("affected", BackTimes.unknown("no repair queued"), tenant="b.example"),
            row("repaired", BackTimes.actual(NOW - 60), tenant="a.example")]
    lines = tenant_lines(page(rows))
    assert [ln.split(":")[0] for ln in lines] == ["a.example", "b.example", "no tenant"]
    assert lines[0] == "a.example: 1 affected, 1 usable again, all usable again"


def test_every_state_has_a_badge_of_its_own_colour_on_its_row() -> None:
    assert set(BADGES) == set(STATES)
    assert len({bg for bg, _ in BADGES.values()}) == len(STATES)
    html = page([row(s, BackTimes.unknown("not checked"), user=s) for s in STATES])
    table = html.split('id="mailboxes"', 1)[1]
    for state in STATES:
        assert f'<span class="badge state-{state}">{state}</span>' in table
        assert f".state-{state}{{background:{BADGES[state][0]}" in html


def test_both_times_back_are_on_every_row() -> None:
    html = page([row("queued", BackTimes(NOW + HOUR, NOW + 2 * HOUR, TimeKind.ESTIMATE))])
    (cells,) = re.findall(r'<tr class="mailbox"[^>]*>(.*?)</tr>', html)
    assert f"<td>~{when(NOW + HOUR)}</td><td>~{when(NOW + 2 * HOUR)}</td>" in cells


def test_an_incident_of_hours_is_drawn_per_hour_and_one_of_weeks_per_day() -> None:
    hours = chart_svg([row("affected", BackTimes.unknown("no repair queued"),
                           first_seen=NOW - 5 * HOUR)], NOW)
    days = chart_svg([row("affected", BackTimes.unknown("no repair queued"),
                          first_seen=NOW - 20 * DAY)], NOW)
    assert 'data-unit="hour"' in hours and "hour (local time)" in hours
    assert 'data-unit="day"' in days and "day (local time)" in days
    assert len(re.findall(r'class="x-tick"', days)) >= 5  # the days between are on the axis


def test_the_chart_has_a_legend_axes_and_a_count_on_each_bar() -> None:
    rows = [row("repaired", BackTimes.actual(NOW - 60), user=u) for u in ("a", "b")]
    rows.append(row("queued", estimate(NOW + HOUR), user="c"))
    svg = chart_svg(rows, NOW)
    legend = re.findall(r'<text class="legend"[^>]*>([^<]*)</text>', svg)
    assert legend == ["affected", "usable again", "complete", "pale: estimated"]
    assert re.findall(r'<text class="y-tick"[^>]*>(\d+)</text>', svg)[:2] == ["0", "1"]
    assert "mailboxes" in svg and ">now</text>" in svg
    assert sorted(re.findall(r'<text class="bar-label"[^>]*>(\d+)</text>', svg)) == \
        ["1", "1", "2", "2", "3"]  # usable, complete ahead (estimated); done; affected
    assert 'fill-opacity="0.4"><title>1 usable again (estimated)' in svg


def test_an_unknown_time_is_no_bar() -> None:
    svg = chart_svg([row("queued", BackTimes.unknown("no worker"))], NOW)
    assert {s for s in re.findall(r'data-series="([^"]+)"', svg)} == {"affected"}


def test_the_page_is_self_contained_without_script_and_escapes_every_value() -> None:
    html = page([row("affected", BackTimes.unknown("no repair queued"), tenant=HOSTILE,
                     user=HOSTILE, volume=HOSTILE, mailbox=HOSTILE, check=HOSTILE)],
                title=HOSTILE)
    assert "<img" not in html and "<script" not in html.lower()
    assert html.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;") >= 6
    assert not re.search(r"""(src|href)=|url\(|@import""", html.replace("&lt;img src=x", ""))


def test_the_hours_of_a_clock_change_each_have_their_bucket(monkeypatch) -> None:
    import itertools
    import time

    from dovecot_index_tool.present.html_chart import buckets

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        night = 1_792_890_000.0  # 2026-10-25 01:00 UTC: 02:00-03:00 comes twice in Berlin
        starts = buckets(night - 3 * HOUR, night + 3 * HOUR, HOUR)
        assert [b - a for a, b in itertools.pairwise(starts)] == [HOUR] * 6
        days = buckets(night - 3 * DAY, night + 3 * DAY, DAY)
        assert len(days) == 7 and len({time.localtime(d).tm_mday for d in days}) == 7
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
