"""The one state model: each state from the evidence that justifies it."""

from __future__ import annotations

from dovecot_index_tool.states import FindingFact, JobFact, history


def finding(id_=1, check="index.header-outside-file", first=10.0, last=10.0,
            resolved=None, run=None, severity="error") -> FindingFact:
    return FindingFact(id_, check, severity, first, last, resolved, run)


def job(*events, id_=7, error=None) -> JobFact:
    return JobFact(id_, "index-rebuild", events[0][0], None, error,
                   tuple((at, state, "") for at, state in events))


def states(findings, jobs=()) -> list[tuple[str, float]]:
    return [(t.state.value, t.at) for t in history(findings, list(jobs))]


def test_a_repair_that_is_done_is_still_repairing_until_a_scan_reads_the_files() -> None:
    steps = history([finding()], [job((20, "queued"), (30, "running"), (40, "done"))])
    assert [(t.state.value, t.at) for t in steps] == [
        ("affected", 10), ("queued", 20), ("repairing", 30)]
    assert "waiting for a scan" in steps[-1].evidence.detail and steps[-1].evidence.job == 7


def test_the_scan_after_the_repair_makes_it_repaired_with_the_job_and_run() -> None:
    steps = history([finding(resolved=50, run=3)],
                    [job((20, "queued"), (30, "running"), (40, "done"))])
    assert steps[-1].state == "repaired" and steps[-1].at == 50
    assert (steps[-1].evidence.job, steps[-1].evidence.run) == (7, 3)
    assert steps[-1].worst == "error" and steps[-1].checks == ("index.header-outside-file",)


def test_a_scan_after_the_repair_that_still_sees_the_damage_makes_it_failed() -> None:
    done = job((20, "queued"), (30, "running"), (40, "done"))
    assert states([finding(last=50)], [done])[-1] == ("failed", 40)


def test_a_dead_job_is_failed_with_its_error() -> None:
    dead = job((20, "queued"), (30, "running"), (40, "dead"), error="doveadm: no such user")
    steps = history([finding()], [dead])
    assert steps[-1].state == "failed" and "doveadm: no such user" in steps[-1].evidence.detail


def test_a_cancelled_job_leaves_the_mailbox_affected() -> None:
    cancelled = job((20, "queued"), (30, "cancelled"))
    assert states([finding()], [cancelled]) == [("affected", 10), ("queued", 20),
                                                ("affected", 30)]


def test_a_scan_that_could_not_read_the_files_is_not_checked() -> None:
    timeout = finding(id_=2, check="scanner.timeout", first=30, last=30)
    assert states([finding(), timeout]) == [("affected", 10), ("not-checked", 30)]


def test_damage_resolved_without_a_read_is_not_checked_never_repaired() -> None:
    assert states([finding(resolved=20, run=None)]) == [("affected", 10), ("not-checked", 20)]


def test_a_job_of_an_earlier_episode_does_not_explain_new_damage() -> None:
    old = job((5, "queued"), (6, "running"), (7, "done"))
    first = finding(id_=1, first=1, resolved=8, run=2)
    again = finding(id_=2, first=20, last=20)
    assert states([first, again], [old])[-1] == ("recurred", 20)
