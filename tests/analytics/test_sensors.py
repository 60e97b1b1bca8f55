"""sensor_stuck and sensor_dropout: per signal, judged while moving, witnessed by two of three."""

from __future__ import annotations

import numpy as np

from analytics.detectors.sensors import detect_sensor_dropout, detect_sensor_stuck
from analytics.findings import Finding, FindingState, Severity
from tests.analytics.electrical_data import LAT, LON, ODOMETER, RPM, SPEED, TYRE_FL, VOLTAGE, columns, params

STUCK_FL = f"sensor_stuck:{TYRE_FL}"
DROP_FL = f"sensor_dropout:{TYRE_FL}"


def _raised(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.state == FindingState.RAISE]


def _drive(n: int, *, moving: bool = True, seed: int = 0) -> tuple[list[float], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    speed = np.full(n, 50.0 if moving else 0.0) + (rng.normal(0, 1, n) if moving else 0)
    km = np.cumsum(speed / 3600)
    return list(range(n)), {
        SPEED: speed,
        ODOMETER: 1000 + km,
        LAT: 48 + km * 1000 / 111_320 + rng.normal(0, 2e-6, n),
        LON: 11.5 + rng.normal(0, 2e-6, n),
        VOLTAGE: 14.1 + rng.normal(0, 0.03, n),
        RPM: 1500 + rng.normal(0, 20, n),
        TYRE_FL: 240 + rng.normal(0, 0.3, n),
    }


def test_a_flat_lined_tyre_pressure_while_driving_raises_after_its_stuck_time() -> None:
    t, sig = _drive(1000)
    sig[TYRE_FL] = np.full(1000, 240.0)
    cols = columns([(t, sig)])
    (f,) = _raised(detect_sensor_stuck(cols, params([False])))
    # Compared from the second reading (1 s); 900 s of moving time later, at 901 s.
    assert (f.fault, f.state, f.severity) == (STUCK_FL, FindingState.RAISE, Severity.MINOR)
    assert f.at_ns == cols.ts_ns[901] and f.since_ns == cols.ts_ns[1]
    assert f.evidence["signal"] == TYRE_FL and f.evidence["value"] == 240.0
    sig[TYRE_FL][950:] += np.arange(50) * 0.1  # varies again from 951 s: cleared after three changes
    findings = detect_sensor_stuck(columns([(t, sig)]), params([False]))
    raised, cleared = [f for f in findings if f.fault == STUCK_FL]
    assert cleared.state == FindingState.CLEAR and cleared.at_ns == cols.ts_ns[953]


def test_healthy_varying_signals_and_parked_flat_lines_raise_nothing() -> None:
    assert _raised(detect_sensor_stuck(columns([_drive(1200)]), params([False]))) == []
    t, sig = _drive(1200, moving=False)
    sig[TYRE_FL] = np.full(1200, 240.0)
    sig[RPM] = np.zeros(1200)
    assert _raised(detect_sensor_stuck(columns([(t, sig)]), params([False]))) == []


def test_a_stuck_speed_sensor_is_caught_by_odometer_and_gps() -> None:
    t, sig = _drive(1000)
    sig[SPEED] = np.zeros(1000)
    (f,) = _raised(detect_sensor_stuck(columns([(t, sig)]), params([False])))
    assert f.fault == f"sensor_stuck:{SPEED}" and f.state == FindingState.RAISE


def test_a_signal_gone_while_the_rest_reports_raises_after_the_dropout_time() -> None:
    t, sig = _drive(1000)
    sig[TYRE_FL][100:] = np.nan
    cols = columns([(t, sig)])
    findings = [f for f in detect_sensor_dropout(cols, params([False])) if f.fault == DROP_FL]
    # Moving from the second row (odometer and GPS need a previous reading): reporting for 120 s
    # at 121 s; last read at 99 s, unread for more than 300 s of moving time at 400 s.
    assert [(f.state, f.at_ns) for f in findings] == [
        (FindingState.CLEAR, cols.ts_ns[121]),
        (FindingState.RAISE, cols.ts_ns[400]),
    ]
    assert findings[1].evidence["last_read_ns"] == cols.ts_ns[99]


def test_never_reported_or_powertrain_foreign_signals_are_no_dropout() -> None:
    t, sig = _drive(1000)
    del sig[TYRE_FL]
    sig[RPM][:] = np.nan
    assert _raised(detect_sensor_dropout(columns([(t, sig)]), params([False]))) == []
    t, sig = _drive(1000)
    sig[RPM][100:] = np.nan  # an EV's engine speed is not expected at all
    ev = detect_sensor_dropout(columns([(t, sig)]), params([True]))
    assert all(not f.fault.endswith(RPM) for f in ev)


COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
STUCK_COOLANT = f"sensor_stuck:{COOLANT}"


def test_a_coolant_reading_that_neither_warms_a_running_engine_nor_cools_a_stopped_one_is_stuck() -> None:
    # Running, cold and flat at 46 °C: a running engine warms up, so after 900 s it is stuck, long
    # before the 1,800 s of moving time the general rule needs.
    t, sig = _drive(1200)
    sig[COOLANT] = np.full(1200, 46.0)
    (f,) = _raised(detect_sensor_stuck(columns([(t, sig)]), params([False])))
    assert f.fault == STUCK_COOLANT and f.at_ns == columns([(t, sig)]).ts_ns[901]
    # Parked with the engine off, every 30 s, hot and flat at 88 °C: a stopped engine cools.
    t2 = list(range(0, 1800, 30))
    parked = {SPEED: np.zeros(60), RPM: np.zeros(60), COOLANT: np.full(60, 88.0), VOLTAGE: np.full(60, 12.6)}
    (g,) = _raised(detect_sensor_stuck(columns([(t2, parked)]), params([False])))
    assert g.fault == STUCK_COOLANT


def test_healthy_coolant_warming_regulated_and_cooling_raises_nothing() -> None:
    t, sig = _drive(1800)
    warm = 90.0 - 70.0 * np.exp(-np.arange(1800) / 220.0)
    sig[COOLANT] = np.round(warm)  # OBD resolution: whole degrees; flat at 90 once regulated
    assert [f for f in _raised(detect_sensor_stuck(columns([(t, sig)]), params([False])))] == []
    t2 = list(range(0, 3600, 30))
    cooling = np.round(12.0 + 78.0 * np.exp(-np.arange(120) * 30 / 1800.0))
    parked = {SPEED: np.zeros(120), RPM: np.zeros(120), COOLANT: cooling, VOLTAGE: np.full(120, 12.6)}
    assert _raised(detect_sensor_stuck(columns([(t2, parked)]), params([False]))) == []
    # An electric vehicle has no coolant rule (nor, here, a coolant reading that means anything).
    assert _raised(detect_sensor_stuck(columns([(t2, parked)]), params([True]))) == []
