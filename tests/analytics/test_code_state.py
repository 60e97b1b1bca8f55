"""Trouble-code columns: each row carries its vehicle's latest report at or before it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.code_state import with_code_columns
from analytics.columns import TelemetryColumns, code_signal
from analytics.detectors.dtcs import DtcReportRow

CODES = ("P0217", "P0562")


@st.composite
def rows_and_reports(draw: st.DrawFn) -> tuple[TelemetryColumns, list[DtcReportRow]]:
    n_vehicles = draw(st.integers(1, 4))
    ids = tuple(f"V{k}" for k in range(n_vehicles))
    times = [sorted(draw(st.lists(st.integers(0, 50), max_size=12))) for _ in ids]
    vehicle = np.concatenate([np.full(len(t), k, np.int32) for k, t in enumerate(times)])
    ts = np.concatenate([np.asarray(t, np.int64) for t in times])
    cols = TelemetryColumns(ids, vehicle, ts, {})
    reports = draw(
        st.lists(
            st.builds(
                DtcReportRow,
                st.sampled_from([*ids, "OTHER"]),
                st.integers(-5, 55),
                st.lists(st.sampled_from(CODES), unique=True).map(tuple),
            ),
            max_size=10,
            unique_by=lambda r: (r.vehicle_id, r.ts_ns),
        )
    )
    return cols, reports


def _naive(cols: TelemetryColumns, reports: list[DtcReportRow], code: str) -> np.ndarray:
    out = np.full(cols.n_rows, np.nan)
    for i in range(cols.n_rows):
        vid, t = cols.vehicle_ids[cols.vehicle[i]], cols.ts_ns[i]
        before = [r for r in reports if r.vehicle_id == vid and r.ts_ns <= t]
        if before:
            out[i] = float(code in max(before, key=lambda r: r.ts_ns).codes)
    return out


@settings(max_examples=300, deadline=None)
@given(rows_and_reports())
def test_each_row_has_its_vehicles_latest_report_at_or_before_it(case) -> None:
    cols, reports = case
    out = with_code_columns(cols, reports, [code_signal(c) for c in CODES] + ["Vehicle.Speed"])
    assert set(out.values) == {code_signal(c) for c in CODES}
    for code in CODES:
        np.testing.assert_array_equal(out.values[code_signal(code)], _naive(cols, reports, code))


def test_a_report_before_the_window_still_tells_the_first_rows() -> None:
    cols = TelemetryColumns(("A", "B"), np.array([0, 0, 1], np.int32), np.array([10, 20, 5], np.int64), {})
    reports = [DtcReportRow("A", 1, ("P0217",)), DtcReportRow("A", 15, ()), DtcReportRow("B", 9, ("P0217",))]
    got = with_code_columns(cols, reports, [code_signal("P0217")]).values[code_signal("P0217")]
    np.testing.assert_array_equal(got, [1.0, 0.0, np.nan])
    assert with_code_columns(cols, reports, ["Vehicle.Speed"]) is cols
