"""battery_12v_failing: resting voltage after the settle time, cranking dips, EVs, severities."""

from __future__ import annotations

import numpy as np

from analytics.detectors.battery import BatteryThresholds, detect_battery_12v_failing
from analytics.findings import FindingState, Severity
from tests.analytics.electrical_data import RPM, SPEED, VOLTAGE, columns, params

WIGGLE = 0.01 * (np.arange(1000) % 2)  # real readings never repeat bit for bit


def _drive_then_park(rest_v: float) -> tuple[list[float], dict[str, list[float]]]:
    """60 s running (14.1 V), then parked from 60 s with a reading every 30 s for 20 minutes."""
    t = [*range(60), *range(60, 1260, 30)]
    n_park = len(t) - 60
    return t, {
        RPM: [800.0 + i % 7 for i in range(60)] + [0.0] * n_park,
        SPEED: [30.0] * 60 + [0.0] * n_park,
        VOLTAGE: [14.1] * 60 + list(rest_v + WIGGLE[:n_park]),
    }


def test_a_low_resting_voltage_raises_after_the_settle_time() -> None:
    # 12.3 V is partly discharged at rest but not low enough to count before the settle time: last
    # running row at 59 s; resting from 659 s: the first rest reading is at 660 s, and three
    # readings spanning 60 s (660..720 s) sustain it.
    cols = columns([_drive_then_park(12.3)])
    (f,) = detect_battery_12v_failing(cols, params([False]))
    assert (f.state, f.severity) == (FindingState.RAISE, Severity.MINOR)
    assert f.evidence["rule"] == "resting_voltage" and f.fault == "battery_12v_failing"
    assert f.at_ns == cols.ts_ns[0] + 720 * 10**9 and f.since_ns == cols.ts_ns[0] + 660 * 10**9
    assert not f.evidence["early_reading"]


def test_a_clearly_low_reading_counts_before_the_settle_time() -> None:
    # Surface charge only raises a reading and after-run loads take at most 0.2 V off it: off for
    # 60 s (readings from 120 s), 11.7 V is failing at once (below 12.0 - 0.2), 11.9 V partly
    # discharged (below 12.4 - 0.2) and failing once settled.
    t0 = columns([_drive_then_park(11.7)]).ts_ns[0]
    (f,) = detect_battery_12v_failing(columns([_drive_then_park(11.7)]), params([False]))
    assert (f.severity, f.at_ns, f.since_ns) == (Severity.MAJOR, t0 + 180 * 10**9, t0 + 120 * 10**9)
    assert f.evidence["early_reading"]
    minor, major = detect_battery_12v_failing(columns([_drive_then_park(11.9)]), params([False]))
    assert (minor.severity, minor.at_ns) == (Severity.MINOR, t0 + 180 * 10**9)
    assert (major.severity, major.at_ns) == (Severity.MAJOR, t0 + 720 * 10**9)


def test_a_healthy_rest_is_a_clear_and_a_short_rest_proves_nothing() -> None:
    (f,) = detect_battery_12v_failing(columns([_drive_then_park(12.7)]), params([False]))
    assert f.state == FindingState.CLEAR
    for rest_v in (12.3, 12.7):  # above the early thresholds, or healthy: a short rest says nothing
        t, sig = _drive_then_park(rest_v)
        short = columns([(t[:70], {k: v[:70] for k, v in sig.items()})])  # parked 5 minutes only
        assert detect_battery_12v_failing(short, params([False])) == []


def test_weak_cranking_raises_at_the_third_weak_start() -> None:
    # Starts at 31, 100 and 170 s (short stops: no rest readings): three weak readings spanning
    # 60 + 60 s (gaps capped at 60 s) >= 60 s.
    for dip_v, severity in ((9.5, Severity.MAJOR), (8.8, Severity.CRITICAL)):
        t = [0, 30, 31, 32, 33, 60, 90, 100, 101, 102, 160, 170, 171]
        sig = {
            RPM: [0, 0, 900, 810, 805, 0, 0, 900, 820, 801, 0, 900, 850],
            SPEED: [0, 0, 0, 5, 10, 0, 0, 0, 5, 9, 0, 0, 4],
            VOLTAGE: [12.7, 12.7, dip_v, 14.1, 14.2, 12.7, 12.7, dip_v, 14.1, 14.2, 12.7, dip_v + 0.01, 14.0],
        }
        findings = detect_battery_12v_failing(columns([(t, sig)]), params([False]))
        assert [(f.state, f.severity, f.evidence["rule"]) for f in findings] == [
            (FindingState.RAISE, severity, "cranking_dip")
        ]
        assert findings[0].at_ns == columns([(t, sig)]).ts_ns[11]


def test_an_ev_rests_without_an_engine_and_never_cranks() -> None:
    t = list(range(0, 1200, 30))
    sig = {SPEED: [0.0] * len(t), VOLTAGE: list(12.3 + WIGGLE[: len(t)])}
    (f,) = detect_battery_12v_failing(columns([(t, sig)]), params([True]))
    # The first row counts as "on": resting from 600 s, sustained at 660 s.
    assert (f.state, f.severity, f.at_ns - f.since_ns) == (FindingState.RAISE, Severity.MINOR, 60 * 10**9)
    # Its DC-DC converter holding 14 V is not a rest, and a dip without an engine is no start.
    sig = {SPEED: [0.0] * len(t), VOLTAGE: [14.0, 9.0] * (len(t) // 2)}
    assert detect_battery_12v_failing(columns([(t, sig)]), params([True])) == []


def test_thresholds_are_configuration() -> None:
    cols = columns([_drive_then_park(12.5)])
    assert detect_battery_12v_failing(cols, params([False]))[0].state == FindingState.CLEAR
    stricter = BatteryThresholds(partly_discharged_v=12.55, rest_ok_v=12.6)
    (f,) = detect_battery_12v_failing(cols, params([False]), stricter)
    assert f.state == FindingState.RAISE and f.evidence["thresholds_version"] == stricter.version
