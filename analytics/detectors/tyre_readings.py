"""Which tyre readings a leak trend is fitted to, and against what: the readings brought to one
temperature (`compensate_kpa`), the rows where a pressure sensor looks stuck (`stuck_suspect`),
and the stand-in for an unknown placard pressure (`early_median`). Pure functions of the four
wheels' columns, for `analytics.detectors.tyres`, which owns the thresholds and the rule.
"""

from __future__ import annotations

import numpy as np

from analytics.detectors.wheel_lines import forward_fill, latest_index, take_rows

ATMOSPHERE_KPA = 101.325
KELVIN = 273.15


def compensate_kpa(pressure_kpa: np.ndarray, temperature_c: np.ndarray, reference_c: float) -> np.ndarray:
    """Gauge pressure the same air would have at `reference_c` (ideal gas, constant volume);
    the raw pressure where the temperature is unknown."""
    scaled = (pressure_kpa + ATMOSPHERE_KPA) * (reference_c + KELVIN) / (
        temperature_c + KELVIN
    ) - ATMOSPHERE_KPA
    return np.where(np.isnan(temperature_c), pressure_kpa, scaled)


def stuck_suspect(
    veh: np.ndarray,
    t_s: np.ndarray,
    p: np.ndarray,
    temp: np.ndarray,
    first_row: np.ndarray,
    temperature_change_c: float,
    without_temperature_s: float,
) -> np.ndarray:
    """Per wheel (rows of `p` and `temp`) and row: where the raw pressure has not changed although
    the tyre temperature has changed by `temperature_change_c` since it last did (ideal gas: it
    must have moved by about 0.7% per 2 K), or for `without_temperature_s` without a temperature:
    a stuck sensor, whose compensated value would otherwise fake a trend."""
    valid = ~np.isnan(p)
    n = p.shape[1]
    if valid.all():  # every vehicle's first row is a change: the newest change is the vehicle's own
        changed = np.empty(p.shape, dtype=bool)
        changed[:, :1] = True
        np.not_equal(p[:, 1:], p[:, :-1], out=changed[:, 1:])
        changed |= first_row
        last = np.where(changed, np.arange(n), -1)
        np.maximum.accumulate(last, axis=1, out=last)
    else:
        prev = np.empty_like(p)
        prev[:, :1] = np.nan
        prev[:, 1:] = forward_fill(veh, p)[:, :-1]
        changed = valid & ((p != prev) | first_row)
        last = latest_index(veh, changed)
    temp_ff = forward_fill(veh, temp)
    at = np.maximum(last, 0)
    # Suspect from the first row of a flat run (since the last change) whose temperature has moved
    # that much from the run's first one, until the value moves again: once the flatness
    # contradicts the gas law it stays suspect. Counted with integer prefix sums of such rows.
    with np.errstate(invalid="ignore"):
        moved = np.abs(temp_ff - take_rows(temp_ff, at)) >= temperature_change_c
    moves = np.zeros((p.shape[0], n + 1), dtype=np.int32)
    np.cumsum(moved, axis=1, dtype=np.int32, out=moves[:, 1:])
    suspect = moves[:, 1:] > take_rows(moves, at)  # a move in [at, row]
    no_temp = np.isnan(temp_ff)
    if no_temp.any():  # flat for long without a temperature to judge by
        suspect |= no_temp & (t_s - t_s.take(at) >= without_temperature_s)
    return valid & (last >= 0) & suspect


def early_median(veh: np.ndarray, t_s: np.ndarray, pc: np.ndarray, window_s: float) -> np.ndarray:
    """Per row: the median compensated pressure over its vehicle's first `window_s` of data."""
    early = (t_s < window_s) & ~np.isnan(pc)
    n_vehicles = int(veh.max()) + 1 if veh.size else 0
    med = np.full(n_vehicles, np.nan)
    v, x = veh[early], pc[early]
    if v.size:
        order = np.lexsort((x, v))
        v, x = v[order], x[order]
        bounds = np.searchsorted(v, np.arange(n_vehicles + 1))
        cnt = np.diff(bounds)
        has = cnt > 0
        lo = bounds[:-1] + (cnt - 1) // 2
        hi = bounds[:-1] + cnt // 2
        med[has] = 0.5 * (x[lo[has]] + x[hi[has]])
    return med[veh]
