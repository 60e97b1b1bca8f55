"""thermostat_stuck: coolant over its band while running, sustained, cleared only after the hold."""

from __future__ import annotations

import numpy as np

from analytics.columns import code_signal
from analytics.detectors.coolant import detect_thermostat_stuck
from analytics.findings import FindingState, Severity
from tests.analytics.electrical_data import COOLANT, RPM, T0_NS, S, columns, params

P0217 = code_signal("P0217")


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


def test_the_cars_stored_over_temperature_code_is_evidence_while_it_runs() -> None:
    # 105 °C alone is neither over temperature nor regulated; with P0217 stored it is over.
    t, sig = _run([105.0] * 300)
    sig[P0217] = [0.0] * 50 + [1.0] * 250
    (f,) = detect_thermostat_stuck(columns([(t, sig)]), params([False]))
    assert (f.state, f.severity) == (FindingState.RAISE, Severity.MAJOR)
    assert f.at_ns == T0_NS + 170 * S and f.evidence["code_stored"] == {"P0217": True}
    # A regulated engine whose code is still stored does not clear; once it is gone, it does.
    t, sig = _run([115.0] * 200 + [90.0] * 1500)
    sig[P0217] = [1.0] * 1000 + [0.0] * 700
    raised, cleared = detect_thermostat_stuck(columns([(t, sig)]), params([False]))
    assert raised.state == FindingState.RAISE and cleared.state == FindingState.CLEAR
    assert cleared.since_ns == T0_NS + 1000 * S and cleared.at_ns == T0_NS + 1600 * S


def test_a_stored_code_with_the_engine_off_or_an_unknown_code_state_raises_nothing() -> None:
    t, sig = _run([95.0] * 300)
    sig[RPM] = [0.0] * 300
    sig[P0217] = [1.0] * 300
    assert detect_thermostat_stuck(columns([(t, sig)]), params([False])) == []
    t, sig = _run([95.0] * 300)
    sig[P0217] = [np.nan] * 300
    assert detect_thermostat_stuck(columns([(t, sig)]), params([False])) == []
