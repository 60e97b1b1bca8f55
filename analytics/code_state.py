"""Which trouble codes a vehicle had stored at each telemetry row: the car's own monitors as a
column beside its signals, so that a detector can take a code as evidence for its fault.

Owns: turning the DTC reports (each a vehicle's whole set of stored codes at a time on its
clock) into the columns that `analytics.columns.code_signal` names. A row holds 1.0 when the
vehicle's latest report at or before the row's time holds the code, 0.0 when it does not, and NaN
before the vehicle's first report (nothing is known). Pure and vectorised: the
reports are placed among the rows by a bisection over all reports at once, then carried forward
along each vehicle's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from analytics.columns import CODE_PREFIX, TelemetryColumns, is_code_signal
from analytics.detectors.dtcs import DtcReportRow


def with_code_columns(
    cols: TelemetryColumns, reports: Sequence[DtcReportRow], names: Iterable[str]
) -> TelemetryColumns:
    """`cols` with a column for each code signal in `names` (others are ignored), from `reports`
    (any order; reports of vehicles not in `cols` are ignored)."""
    wanted = sorted({n for n in names if is_code_signal(n)})
    if not wanted:
        return cols
    index = {vid: k for k, vid in enumerate(cols.vehicle_ids)}
    mine = sorted((r for r in reports if r.vehicle_id in index), key=lambda r: (index[r.vehicle_id], r.ts_ns))
    vehicle = np.array([index[r.vehicle_id] for r in mine], dtype=np.int64)
    ts = np.array([r.ts_ns for r in mine], dtype=np.int64)
    latest = latest_report(cols, vehicle, ts)
    values = dict(cols.values)
    for name in wanted:
        code = name[len(CODE_PREFIX) :]
        held = np.array([code in r.codes for r in mine], dtype=np.float64)
        values[name] = (
            np.where(latest >= 0, held[np.maximum(latest, 0)], np.nan)
            if mine
            else np.full(cols.n_rows, np.nan)
        )
    return TelemetryColumns(cols.vehicle_ids, cols.vehicle, cols.ts_ns, values)


def latest_report(cols: TelemetryColumns, report_vehicle: np.ndarray, report_ts_ns: np.ndarray) -> np.ndarray:
    """Per row, the index of its vehicle's latest report at or before the row's time (reports
    sorted by vehicle, then time), or -1 when there is none."""
    n = cols.n_rows
    if n == 0 or report_vehicle.size == 0:
        return np.full(n, -1, dtype=np.int64)
    bounds = cols.bounds()
    lo, hi = bounds[report_vehicle].astype(np.int64), bounds[report_vehicle + 1].astype(np.int64)
    while (lo < hi).any():  # first row of the report's vehicle at or after the report's time
        mid = (lo + hi) // 2
        later = cols.ts_ns[np.minimum(mid, n - 1)] >= report_ts_ns
        lo, hi = np.where(later | (lo >= hi), lo, mid + 1), np.where(later & (lo < hi), mid, hi)
    starts = np.full(n + 1, -1, dtype=np.int64)
    np.maximum.at(starts, lo, np.arange(report_vehicle.size))  # the latest report starting there
    carried = np.maximum.accumulate(starts[:n])
    return np.where(report_vehicle[np.maximum(carried, 0)] == cols.vehicle, carried, -1)
