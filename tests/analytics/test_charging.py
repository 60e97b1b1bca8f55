"""charging_fault: running voltage below the charging band, sustained; stuck sensors ignored."""

from __future__ import annotations

from analytics.detectors.charging import detect_charging_fault
from analytics.findings import FindingState, Severity
from tests.analytics.electrical_data import LAT, LON, ODOMETER, RPM, SPEED, VOLTAGE, columns, params


def _trip(run_v: float, *, rpm_stuck: bool = False, flat_v: bool = False) -> tuple[list[float], dict]:
    t = list(range(201))
    rpm = [0.0] + [2258.0 if rpm_stuck else 800.0 + i % 9 for i in range(200)]
    volts = [12.6] + [run_v if flat_v else run_v + 0.01 * (i % 2) for i in range(200)]
    return t, {RPM: rpm, SPEED: [0.0] + [40.0] * 200, VOLTAGE: volts}


def test_running_below_the_band_raises_after_the_sustain_by_how_low() -> None:
    # Engine starts at 1 s; judged from 11 s (start settle); 60 s later, at 71 s, it raises.
    for run_v, severity in ((12.6, Severity.MAJOR), (11.8, Severity.CRITICAL)):
        cols = columns([_trip(run_v)])
        (f,) = detect_charging_fault(cols, params([False]))
        assert (f.state, f.severity, f.fault) == (FindingState.RAISE, severity, "charging_fault")
        assert f.at_ns == cols.ts_ns[71] and f.since_ns == cols.ts_ns[11]


def test_charging_voltage_is_a_clear_and_the_band_between_is_neither() -> None:
    (f,) = detect_charging_fault(columns([_trip(14.2)]), params([False]))
    assert f.state == FindingState.CLEAR and f.at_ns == columns([_trip(14.2)]).ts_ns[71]
    assert detect_charging_fault(columns([_trip(13.3)]), params([False])) == []


def test_a_stuck_engine_speed_or_a_flat_lined_voltage_is_not_evidence() -> None:
    assert detect_charging_fault(columns([_trip(12.6, rpm_stuck=True)]), params([False])) == []
    assert detect_charging_fault(columns([_trip(12.6, flat_v=True)]), params([False])) == []


def test_an_ev_is_judged_while_it_drives() -> None:
    t, sig = _trip(12.6)
    del sig[RPM]
    sig[ODOMETER] = [1000.0 + 40.0 * max(s - 1, 0) / 3600 for s in t]  # a second witness of driving
    (f,) = detect_charging_fault(columns([(t, sig)]), params([True]))
    assert f.state == FindingState.RAISE
    sig[SPEED] = [0.0] * len(t)  # standing: its DC-DC may rest
    sig[ODOMETER] = [1000.0] * len(t)
    assert detect_charging_fault(columns([(t, sig)]), params([True])) == []


def test_a_parked_ev_whose_speed_sensor_is_stuck_at_a_driving_speed_is_not_judged() -> None:
    t, sig = _trip(12.6)  # a resting voltage, the speed stuck at 40 km/h, odometer and GPS still
    del sig[RPM]
    sig[ODOMETER], sig[LAT], sig[LON] = [1000.0] * len(t), [48.1] * len(t), [11.5] * len(t)
    assert detect_charging_fault(columns([(t, sig)]), params([True])) == []
