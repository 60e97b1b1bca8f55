"""The alarm lifecycle: one active alarm per (vehicle, fault), severity only escalates, a clear
ends it, and replaying findings already applied (a re-run, an overlapping window) changes nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analytics.alarms import Alarm, Change, apply_finding, apply_findings
from analytics.findings import Finding, FindingState, Severity

R, C = FindingState.RAISE, FindingState.CLEAR


def _f(state: FindingState, at: int, severity: Severity = Severity.WARNING, fault: str = "x") -> Finding:
    return Finding("V1", fault, state, at, severity)


def test_raise_escalate_clear_and_raise_again() -> None:
    newest: dict[tuple[str, str], Alarm] = {}
    steps = [
        _f(R, 10), _f(R, 20), _f(R, 30, Severity.MAJOR), _f(R, 40, Severity.MINOR), _f(C, 50), _f(C, 60),
        _f(R, 70, Severity.MINOR),
    ]  # fmt: skip
    changes = [(t.change, t.alarm.severity, t.finding.at_ns) for t in apply_findings(newest, steps)]
    assert changes == [
        (Change.RAISED, Severity.WARNING, 10),
        (Change.ESCALATED, Severity.MAJOR, 30),
        (Change.CLEARED, Severity.MAJOR, 50),
        (Change.RAISED, Severity.MINOR, 70),
    ]
    assert newest[("V1", "x")].raised_ns == 70 and newest[("V1", "x")].active


def test_a_clear_without_an_alarm_and_an_old_raise_after_a_clear_change_nothing() -> None:
    assert apply_finding(None, _f(C, 5)) is None
    cleared = Alarm("V1", "x", Severity.MAJOR, 10, 50, cleared_ns=50)
    assert apply_finding(cleared, _f(R, 30)) is None  # replayed: older than the clear
    assert apply_finding(cleared, _f(R, 50)) is None
    assert apply_finding(cleared, _f(R, 51)) is not None


FINDINGS = st.lists(
    st.builds(
        _f,
        st.sampled_from([R, C]),
        st.integers(0, 1000),
        st.sampled_from(list(Severity)),
        st.sampled_from("ab"),
    ),
    max_size=30,
)


@given(FINDINGS, st.integers(0, 30))
def test_replaying_any_prefix_adds_no_change(findings: list[Finding], cut: int) -> None:
    """Applying findings, then applying (again) any of them, gives nothing new: idempotent."""
    newest: dict[tuple[str, str], Alarm] = {}
    apply_findings(newest, findings)
    before = dict(newest)
    assert apply_findings(newest, findings[:cut]) == []
    assert newest == before


@given(FINDINGS)
def test_at_most_one_active_alarm_and_severity_never_drops_while_active(findings: list[Finding]) -> None:
    newest: dict[tuple[str, str], Alarm] = {}
    seen: dict[tuple[str, str], Alarm] = {}
    for t in apply_findings(newest, findings):
        key = (t.alarm.vehicle_id, t.alarm.fault)
        if t.change is Change.RAISED:
            assert key not in seen or not seen[key].active
        else:
            assert seen[key].active and t.alarm.severity >= seen[key].severity
        seen[key] = t.alarm


def test_a_held_alarm_ignores_its_episode_until_the_detector_clears_it() -> None:
    """A person resolved the alarm (cleared at 25, held): the same episode's raises change nothing,
    the detector's clear ends the episode (the alarm stays cleared as the person left it), and the
    next raise is a new alarm."""
    held = Alarm("V1", "x", Severity.MAJOR, 10, 20, cleared_ns=25, alarm_id=7, held=True)
    assert apply_finding(held, _f(R, 30, Severity.MAJOR)) is None
    assert apply_finding(held, _f(R, 30, Severity.MINOR)) is None
    ended = apply_finding(held, _f(C, 40))
    assert ended is not None and ended.change is Change.CLEARED
    assert ended.alarm == Alarm("V1", "x", Severity.MAJOR, 10, 40, cleared_ns=25, alarm_id=7, held=False)
    again = apply_finding(ended.alarm, _f(R, 50))
    assert again is not None and again.change is Change.RAISED and again.alarm.alarm_id is None


def test_a_worse_fault_raises_a_new_alarm_over_a_held_one() -> None:
    held = Alarm("V1", "x", Severity.MINOR, 10, 20, cleared_ns=25, alarm_id=7, held=True)
    worse = apply_finding(held, _f(R, 30, Severity.CRITICAL))
    assert worse is not None and worse.change is Change.RAISED
    assert worse.alarm.severity is Severity.CRITICAL and worse.alarm.active and worse.alarm.alarm_id is None


@given(
    st.lists(
        st.tuples(
            st.integers(1, 50), st.sampled_from([R, C]), st.sampled_from([Severity.WARNING, Severity.MAJOR])
        ),
        max_size=30,
    )
)
def test_a_held_alarm_is_never_raised_again_by_findings_no_worse_before_a_clear(
    steps: list[tuple[int, FindingState, Severity]],
) -> None:
    newest = {("V1", "x"): Alarm("V1", "x", Severity.MAJOR, 0, 0, cleared_ns=0, alarm_id=1, held=True)}
    findings = [_f(state, at, severity) for at, state, severity in steps]
    transitions = apply_findings(newest, findings)
    first_clear = min((f.at_ns for f in findings if f.state is C), default=None)
    for t in transitions:
        if t.change is Change.RAISED:
            assert first_clear is not None and t.finding.at_ns > first_clear
    assert [t.change for t in transitions][:1] in ([], [Change.CLEARED])
