"""Telemetry as the kernels take it: many vehicles' rows as numpy columns, sorted by vehicle and
time, with each vehicle's registry parameters beside them.

Owns: the shape only (`TelemetryColumns`, `VehicleParams`). Filling it is the reader's job
(`analytics.telemetry_reader`: binary COPY out of PostgreSQL) or a test's / the simulator
harness's (from arrays in memory). Kernels never see SQL, MQTT or the clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

CODE_PREFIX = "dtc:"


def code_signal(code: str) -> str:
    """The column a detector lists among its signals to get trouble code `code`'s stored state
    (`analytics.code_state`: 1.0 stored, 0.0 not, NaN unknown) beside its VSS signals."""
    return CODE_PREFIX + code


def is_code_signal(name: str) -> bool:
    return name.startswith(CODE_PREFIX)


@dataclass(frozen=True)
class TelemetryColumns:
    """Rows of `len(vehicle_ids)` vehicles, sorted by (vehicle, ts_ns).

    `vehicle[i]` indexes `vehicle_ids`; `ts_ns[i]` is the row's time on the vehicle's clock
    (int64 ns since the Unix epoch); `values[vss_path][i]` is float64, NaN where the row does not
    carry the signal. Only the signals a job asked for are present."""

    vehicle_ids: tuple[str, ...]
    vehicle: np.ndarray  # int32, (n_rows,)
    ts_ns: np.ndarray  # int64, (n_rows,)
    values: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.ts_ns.shape[0])

    def column(self, vss_path: str) -> np.ndarray:
        """The signal's column; all NaN when the job did not read it or no row carries it."""
        found = self.values.get(vss_path)
        return found if found is not None else np.full(self.n_rows, np.nan)

    def bounds(self) -> np.ndarray:
        """Row offsets: vehicle k's rows are `bounds[k]:bounds[k + 1]` (empty if it has none)."""
        return np.searchsorted(self.vehicle, np.arange(len(self.vehicle_ids) + 1), side="left")

    def vehicle_chunks(self, max_rows: int) -> Iterator[TelemetryColumns]:
        """The rows in pieces of about `max_rows`: as many pieces as the rows divided by `max_rows`
        round to (at least one), of about equal size, cut only between vehicles (a vehicle with more
        rows is a piece of its own); views, no copies. Every kernel is per vehicle, so it finds the
        same on the pieces as on the whole, while its temporaries stay in the CPU's cache. (Equal
        sizes: a read that comes in pieces of a little more than `max_rows` rows is not cut into
        one full piece and a sliver.)"""
        n = self.n_rows
        b = self.bounds()
        k = max(1, round(n / max(max_rows, 1)))
        cuts = np.unique(b[np.searchsorted(b, np.arange(1, k) * n // k, side="left")])
        edges = [0, *(int(c) for c in cuts if 0 < c < n), n]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            yield TelemetryColumns(
                self.vehicle_ids,
                self.vehicle[lo:hi],
                self.ts_ns[lo:hi],
                {path: column[lo:hi] for path, column in self.values.items()},
            )

    def check(self) -> None:
        """Raises ValueError when the arrays break the shape above (for readers and tests)."""
        n = self.n_rows
        if self.vehicle.shape != (n,) or any(v.shape != (n,) for v in self.values.values()):
            raise ValueError("every column must have one value per row")
        key = self.vehicle.astype(np.int64)
        if n > 1 and not (np.diff(key) >= 0).all():
            raise ValueError("rows must be sorted by vehicle")
        same = key[1:] == key[:-1]
        if n > 1 and not (np.diff(self.ts_ns)[same] >= 0).all():
            raise ValueError("each vehicle's rows must be sorted by time")
        if n and (key.min() < 0 or key.max() >= len(self.vehicle_ids)):
            raise ValueError("vehicle index out of range")


@dataclass(frozen=True)
class VehicleParams:
    """Per-vehicle parameters from the registry (`vehicle_models`), one entry per vehicle of the
    columns they go with; NaN / 0 where the registry does not know."""

    is_ev: np.ndarray  # bool
    cylinders: np.ndarray  # int
    tyre_placard_kpa: np.ndarray  # float64, NaN when unknown

    @classmethod
    def unknown(cls, n_vehicles: int) -> VehicleParams:
        return cls(
            np.zeros(n_vehicles, dtype=bool),
            np.zeros(n_vehicles, dtype=np.int64),
            np.full(n_vehicles, np.nan),
        )
