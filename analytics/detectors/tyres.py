"""`tyre_slow_leak`: a tyre losing air, warned before it is 25% under placard (FMVSS 138), and
raised higher once it is.

Owns: the temperature compensation (ideal gas at constant volume: absolute pressure is
proportional to absolute temperature, so each reading is brought to the pressure the same air
would have at `reference_c`), the trend per wheel over a trailing window (least squares on the
compensated pressure), the projected time to the 25%-under limit, and the rule:
- MAJOR: over the trailing window (or a shorter one, which can only add a fast leak), the
  compensated pressure falls significantly (t statistic), faster than
  `min_leak_kpa_per_h` (about a hundred times natural permeation, which loses 1-3 psi a month),
  by more than `min_drop_kpa` over the window (above a TPMS sensor's resolution).
- CRITICAL: the compensated level is at or below the limit, `(1 - 0.25) * placard`.
Rows where the raw pressure sits still while the tyre's temperature moves are a stuck sensor,
not evidence (left out). Each must hold `sustain_s` to raise; the alarm clears after neither
has held for `hold_s`.

The placard (cold inflation pressure, gauge) comes from `VehicleParams.tyre_placard_kpa`; when
the registry does not know it, the vehicle's own median compensated pressure over its first
`window_s` of data in the run stands in (so a leak already under way when the data starts makes
that reference low: documented, and the evidence says which reference was used). Rows without a
tyre temperature use the raw pressure (the evidence gives the compensated share).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.trends import (
    NS_PER_S,
    SharedX,
    first_index,
    forward_fill,
    latest_index,
    report_rows,
    rolling_lines,
    state_changes,
    window_start_where,
)
from analytics.findings import Finding, Severity
from contract.signals import WHEELS, wheel_paths

FAULT = "tyre_slow_leak"
THRESHOLDS_VERSION = "tyre_slow_leak/1"
PRESSURE = wheel_paths("Tire.Pressure")
TEMPERATURE = wheel_paths("Tire.Temperature")
SIGNALS: tuple[str, ...] = PRESSURE + TEMPERATURE
ATMOSPHERE_KPA = 101.325
KELVIN = 273.15


@dataclass(frozen=True)
class TyreLeakThresholds:
    version: str = THRESHOLDS_VERSION
    under_placard_fraction: float = 0.25  # FMVSS 138: warn once 25% under the placard
    reference_c: float = 20.0  # compensated pressures are at this temperature ("cold")
    window_s: float = 3600.0  # trailing trend window (decides)
    short_window_s: float = 1200.0  # a second, shorter window that can only add a (fast) leak
    min_rows: int = 30  # pressure readings in the window (parked vehicles report every 30 s)
    min_span_fraction: float = 0.75  # the readings must cover this share of the window
    min_leak_kpa_per_h: float = 1.5
    min_drop_kpa: float = 2.0  # fitted drop over the readings' span (TPMS resolution ~1.4 kPa)
    min_t_stat: float = 6.0  # slope / its standard error (readings are autocorrelated: be strict)
    stuck_temperature_change_c: float = 2.0  # raw pressure flat while the tyre warmed this much
    stuck_without_temperature_s: float = 1800.0  # or flat this long with no temperature reading
    sustain_s: float = 300.0
    hold_s: float = 1800.0


WINDOW_S = TyreLeakThresholds().window_s + TyreLeakThresholds().hold_s


def compensate_kpa(pressure_kpa: np.ndarray, temperature_c: np.ndarray, reference_c: float) -> np.ndarray:
    """Gauge pressure the same air would have at `reference_c` (ideal gas, constant volume);
    the raw pressure where the temperature is unknown."""
    scaled = (pressure_kpa + ATMOSPHERE_KPA) * (reference_c + KELVIN) / (
        temperature_c + KELVIN
    ) - ATMOSPHERE_KPA
    return np.where(np.isnan(temperature_c), pressure_kpa, scaled)


def detect_tyre_slow_leak(
    cols: TelemetryColumns, params: VehicleParams, thresholds: TyreLeakThresholds = TyreLeakThresholds()
) -> list[Finding]:
    """The detector contract (analytics.detectors): transitions of `tyre_slow_leak` per vehicle."""
    th = thresholds
    veh = cols.vehicle.astype(np.int64)
    n = cols.n_rows
    if n == 0:
        return []
    first = first_index(veh)
    t_s = (cols.ts_ns - cols.ts_ns[first]) / NS_PER_S
    windows_s = (th.window_s, th.short_window_s)
    # Window starts only where a line can be judged: its whole window of data behind the row.
    starts = [window_start_where(veh, t_s, window_s, t_s >= window_s) for window_s in windows_s]
    first_row = first == np.arange(n)
    placard = params.tyre_placard_kpa[veh].astype(np.float64)
    # Per wheel, one row array each (lists, not (4, n) arrays: a block that large is mapped fresh
    # from the OS on every call and page-faulted in, which cost a third of the detector's time).
    severity: list[np.ndarray] = []
    judged: list[np.ndarray] = []
    level: list[np.ndarray] = []
    rate: list[np.ndarray] = []
    reference: list[np.ndarray] = []
    shared = SharedX()  # the wheels' lines share time
    for w in range(4):  # four wheels, each vectorised over every vehicle and row
        p = cols.column(PRESSURE[w])
        temp = cols.column(TEMPERATURE[w])
        pc = compensate_kpa(p, temp, th.reference_c)
        have = ~np.isnan(pc)
        ref = placard
        if np.isnan(placard).any():
            ref = np.where(np.isnan(placard), _early_median(veh, t_s, pc, th.window_s), placard)
        plausible = have & ~_stuck_suspect(veh, t_s, p, temp, th, first_row)
        y = np.where(plausible, pc - ref, np.nan)
        lvl = np.full(n, np.nan)
        kpa_per_h = np.full(n, np.nan)
        leak_any = np.zeros(n, dtype=bool)
        conclusive = np.zeros(n, dtype=bool)
        # Each window's line only where a row can be judged: plausible, with the whole window behind it.
        ats = [np.flatnonzero(plausible & (t_s >= window_s)) for window_s in windows_s]
        lines = rolling_lines(t_s, y, tuple(zip(starts, ats, strict=True)), shared)
        for window_s, at, line in zip(windows_s, ats, lines, strict=True):
            fits = (line.n >= th.min_rows) & (line.span_x >= th.min_span_fraction * window_s)
            fits &= ~np.isnan(line.slope)
            rate_at = -line.slope * 3600.0
            with np.errstate(invalid="ignore", divide="ignore"):
                steep = rate_at >= th.min_leak_kpa_per_h
                steep &= rate_at * line.span_x / 3600.0 >= th.min_drop_kpa
                steep &= -line.slope / line.slope_se >= th.min_t_stat
            ok = np.zeros(n, dtype=bool)
            ok[at] = fits
            leaking = np.zeros(n, dtype=bool)
            leaking[at] = fits & steep
            rate_w = np.full(n, np.nan)
            rate_w[at] = rate_at
            line_level = np.full(n, np.nan)
            line_level[at] = line.level
            # The long window decides; the short one may only add a leak (a fast one), so a row
            # judged in two overlapping runs gets the same verdict in both.
            conclusive |= ok if window_s == th.window_s else leaking
            take = np.isnan(lvl) & ok
            lvl[take] = ref[take] + line_level[take]
            take = leaking & ~leak_any
            kpa_per_h[take] = rate_w[take]
            take = np.isnan(kpa_per_h) & ok
            kpa_per_h[take] = rate_w[take]
            leak_any |= leaking
        under = conclusive & (lvl <= (1.0 - th.under_placard_fraction) * ref)
        severity.append(np.where(under, int(Severity.CRITICAL), np.where(leak_any, int(Severity.MAJOR), 0)))
        judged.append(conclusive)
        level.append(lvl)
        rate.append(kpa_per_h)
        reference.append(ref)
    row_sev = np.maximum.reduce(severity)
    any_judged = np.logical_or.reduce(judged)
    changes = state_changes(veh, cols.ts_ns, any_judged, row_sev, th.sustain_s, th.hold_s)
    rows = report_rows(changes, veh, any_judged)
    return [  # one iteration per finding, not per sample
        _finding(cols, th, int(r), int(lv), int(since), severity, level, rate, reference)
        for r, lv, since in zip(rows, changes.level, changes.since_ns, strict=True)
    ]


def _compensated_share(cols: TelemetryColumns, wheel: int, vehicle: int) -> float:
    """The share of the vehicle's pressure readings of this wheel that came with a temperature
    (worked out for the vehicles a finding names only)."""
    lo, hi = np.searchsorted(cols.vehicle, (vehicle, vehicle + 1))
    p = cols.column(PRESSURE[wheel])[lo:hi]
    temp = cols.column(TEMPERATURE[wheel])[lo:hi]
    have = ~np.isnan(p)  # the compensated value exists wherever the raw one does
    return float((have & ~np.isnan(temp)).sum() / max(int(have.sum()), 1))


def _stuck_suspect(
    veh: np.ndarray,
    t_s: np.ndarray,
    p: np.ndarray,
    temp: np.ndarray,
    th: TyreLeakThresholds,
    first_row: np.ndarray,
) -> np.ndarray:
    """Rows where the raw pressure has not changed although the tyre temperature has changed by
    `stuck_temperature_change_c` since it last did (ideal gas: it must have moved by about 0.7%
    per 2 K), or for `stuck_without_temperature_s` without a temperature: a stuck sensor, whose
    compensated value would otherwise fake a trend. Those rows are left out."""
    valid = ~np.isnan(p)
    prev = np.full(p.shape[0], np.nan)
    prev[1:] = forward_fill(veh, p)[:-1]
    prev[first_row] = np.nan
    changed = valid & (p != prev)
    last = latest_index(veh, changed)
    temp_ff = forward_fill(veh, temp)
    at = np.maximum(last, 0)
    # The largest temperature move since the raw value last changed (running max per flat run:
    # once the flatness contradicts the gas law it stays suspect until the value moves again).
    d_temp = np.nan_to_num(np.abs(temp_ff - temp_ff.take(at)), nan=-1.0)
    run = np.cumsum(changed)
    d_max = np.maximum.accumulate(np.minimum(d_temp, 999.0) + run * 1000.0) - run * 1000.0
    suspect = d_max >= th.stuck_temperature_change_c
    no_temp = np.isnan(temp_ff)
    if no_temp.any():  # flat for long without a temperature to judge by
        suspect |= no_temp & (t_s - t_s.take(at) >= th.stuck_without_temperature_s)
    return valid & (last >= 0) & suspect


def _early_median(veh: np.ndarray, t_s: np.ndarray, pc: np.ndarray, window_s: float) -> np.ndarray:
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


def _finding(
    cols: TelemetryColumns,
    th: TyreLeakThresholds,
    row: int,
    level: int,
    since_ns: int,
    severity: list[np.ndarray],
    level_kpa: list[np.ndarray],
    rate: list[np.ndarray],
    reference: list[np.ndarray],
) -> Finding:
    vid = cols.vehicle_ids[int(cols.vehicle[row])]
    at_ns = int(cols.ts_ns[row])
    # The wheel to name: the worst severity at this row, then the lowest pressure.
    levels = np.array([x[row] for x in level_kpa])
    w = int(np.lexsort((np.nan_to_num(levels, nan=np.inf), -np.array([x[row] for x in severity])))[0])
    ref = float(reference[w][row])
    limit = (1.0 - th.under_placard_fraction) * ref
    lvl = float(level_kpa[w][row])
    kpa_per_h = float(rate[w][row])
    to_limit_s = (lvl - limit) / kpa_per_h * 3600.0 if kpa_per_h > 0 and lvl > limit else None
    evidence = {
        "signal": PRESSURE[w],
        "wheel": WHEELS[w],
        "pressure_kpa_at_reference": round(lvl, 2),
        "reference_c": th.reference_c,
        "placard_kpa": round(ref, 2),
        "limit_kpa": round(limit, 2),
        "leak_rate_kpa_per_h": round(kpa_per_h, 3),
        "projected_time_to_limit_s": None if to_limit_s is None else round(to_limit_s, 1),
        "temperature_compensated_share": round(_compensated_share(cols, w, int(cols.vehicle[row])), 3),
        "thresholds": asdict(th),
    }
    if level == 0:
        text = "Tyre pressures hold steady, above the 25%-under-placard limit."
    elif level >= Severity.CRITICAL:
        text = (
            f"The {WHEELS[w]} tyre is {100 * (1 - lvl / ref):.0f}% under its placard pressure ({lvl:.0f} of "
            f"{ref:.0f} kPa cold): inflate it and look for the leak before the vehicle is driven further."
        )
    else:
        eta = (
            f"; at this rate it reaches 25% under placard in about {to_limit_s / 3600:.1f} h"
            if to_limit_s
            else ""
        )
        text = (
            f"The {WHEELS[w]} tyre is losing about {kpa_per_h:.1f} kPa/h ({lvl:.0f} kPa cold, placard "
            f"{ref:.0f} kPa){eta}: check it for a puncture or a leaking valve."
        )
    return Finding.at_level(vid, FAULT, level, at_ns, since_ns, text, evidence)
