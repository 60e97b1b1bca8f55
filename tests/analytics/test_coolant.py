"""thermostat_stuck: coolant over its band while running, sustained, cleared only after the hold."""

from __future__ import annotations

from analytics.detectors.coolant import detect_thermostat_stuck
from analytics.findings import FindingState, Severity
from tests.analytics.electrical_data import COOLANT, RPM, columns, params


def _run(coolant_c: list[float]) -> tuple[list[float], dict]:
    n = len(coolant_c)
    return list(range(n)), {
        RPM: [800.0 + i % 9 for i in range(n)],
        COOLANT: [c + 0.01 * (i % 3) for i, c in enumerate(coolant_c)],
    }


def test_overheating_raises_after_the_sustain_by_how_hot() -> None:
    for c, severity in ((115.0, Severity.MAJOR), (125.0, Severity.CRITICAL)):
        cols = columns([_run([c] * 300)])
        (f,) = detect_thermostat_stuck(cols, params([False]))
        assert (f.state, f.severity, f.fault) == (FindingState.RAISE, severity, "thermostat_stuck")
        assert f.at_ns == cols.ts_ns[120] and f.since_ns == cols.ts_ns[0]


def test_clears_only_after_the_band_held_for_the_hold_time() -> None:
    cols = columns([_run([115.0] * 200 + [90.0] * 700)])
    raised, cleared = detect_thermostat_stuck(cols, params([False]))
    assert raised.state == FindingState.RAISE and raised.at_ns == cols.ts_ns[120]
    assert cleared.state == FindingState.CLEAR and cleared.at_ns == cols.ts_ns[800]
    assert cleared.since_ns == cols.ts_ns[200]
    # Passing through the band for five minutes (a stuck engine warming up again) is no clear;
    # neither are cold readings or the 100-110 °C band.
    passing = columns([_run([115.0] * 200 + [95.0] * 300 + [40.0] * 400 + [105.0] * 400 + [115.0] * 50)])
    assert [f.state for f in detect_thermostat_stuck(passing, params([False]))] == [FindingState.RAISE]


def test_engine_off_heat_soak_and_evs_are_not_judged() -> None:
    t, sig = _run([118.0] * 300)
    sig[RPM] = [0.0] * 300
    assert detect_thermostat_stuck(columns([(t, sig)]), params([False])) == []
    assert detect_thermostat_stuck(columns([_run([118.0] * 300)]), params([True])) == []
