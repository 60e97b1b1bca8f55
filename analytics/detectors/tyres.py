"""`tyre_slow_leak`: a tyre losing air, warned before it is 25% under placard (FMVSS 138), and
raised higher once it is.

Owns: the trend per wheel over a trailing window (least squares on the compensated pressure:
ideal gas at constant volume, absolute pressure proportional to absolute temperature, so each
reading is brought to the pressure the same air would have at `reference_c`; the readings and
the stuck-sensor rows are `analytics.detectors.tyre_readings`'), the projected time to the
25%-under limit, and the rule:
- MAJOR: over the trailing window (or a shorter one, which can only add a fast leak, or a
  longer one, which can only add a slow leak), the
  compensated pressure falls significantly (t statistic), faster than
  `min_leak_kpa_per_h` (about a hundred times natural permeation, which loses 1-3 psi a month),
  by more than `min_drop_kpa` over the window (above a TPMS sensor's resolution), and by more
  than the whole-degree temperature readings can fake (`quantum_drop_factor` quanta of
  (p + atm) / T, by `quantum_t_stat` standard errors): a temperature that swings within one
  degree reads as steady, and one that hovers at a half degree flips the reading, so the
  compensation is off by up to half a quantum either way, and a line through that error falls
  by at most 1.5 quanta. A leak keeps falling; the quantum's error cannot.
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

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.detectors.trends import (
    NS_PER_S,
    first_index,
    nan_to_num,
    report_rows,
    state_changes,
    window_start,
)
from analytics.detectors.tyre_readings import (
    ATMOSPHERE_KPA,
    KELVIN,
    compensate_kpa,
    early_median,
    stuck_suspect,
)
from analytics.detectors.wheel_lines import (
    WheelLines,
    WheelSums,
    slope_se,
    wheel_lines,
    wheel_sums,
    y_squared_sums,
)
from analytics.findings import Finding, Severity
from contract.signals import WHEELS, wheel_paths

FAULT = "tyre_slow_leak"
THRESHOLDS_VERSION = "tyre_slow_leak/3"
PRESSURE = wheel_paths("Tire.Pressure")
TEMPERATURE = wheel_paths("Tire.Temperature")
SIGNALS: tuple[str, ...] = PRESSURE + TEMPERATURE


@dataclass(frozen=True)
class TyreLeakThresholds:
    version: str = THRESHOLDS_VERSION
    under_placard_fraction: float = 0.25  # FMVSS 138: warn once 25% under the placard
    reference_c: float = 20.0  # compensated pressures are at this temperature ("cold")
    window_s: float = 3600.0  # trailing trend window (decides)
    short_window_s: float = 1200.0  # a second, shorter window that can only add a (fast) leak
    # A third, longer window that can only add a slow leak: one hour of a 3 kPa/h leak is within what
    # whole-degree readings can fake on a van's or light truck's tyre in the cold (1.5 quanta of
    # (p + atm) / T: 2.4 kPa at 320 kPa and -15 °C), two hours are not.
    slow_window_s: float = 7200.0
    # Pressure readings in the window: 20 min of a parked vehicle that reports once a minute (many
    # report every 30 s). The t statistics below judge whether that many show a fall.
    min_rows: int = 15
    min_span_fraction: float = 0.75  # the readings must cover this share of the window
    min_leak_kpa_per_h: float = 1.5
    min_drop_kpa: float = 2.0  # fitted drop over the readings' span (TPMS resolution ~1.4 kPa)
    # TPMS temperatures are whole degrees, so a compensated reading may be off by up to half a
    # degree's worth of pressure either way, and that error steps by a whole quantum wherever the
    # reading changes. A least-squares line through an error confined to one quantum falls by at most
    # 1.5 quanta (a step in the middle of the window): the fitted drop must exceed that as well.
    temperature_quantum_c: float = 1.0
    quantum_drop_factor: float = 1.5
    quantum_t_stat: float = 3.0  # ... and by this many standard errors of the fitted drop
    min_t_stat: float = 6.0  # slope / its standard error (readings are autocorrelated: be strict)
    stuck_temperature_change_c: float = 2.0  # raw pressure flat while the tyre warmed this much
    stuck_without_temperature_s: float = 1800.0  # or flat this long with no temperature reading
    sustain_s: float = 300.0
    hold_s: float = 1800.0


WINDOW_S = (
    max(TyreLeakThresholds().window_s, TyreLeakThresholds().slow_window_s) + TyreLeakThresholds().hold_s
)


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
    first_row = first == np.arange(n)
    # The four wheels as rows of (4, n) arrays: each step below runs once for all of them.
    p = np.stack([cols.column(path) for path in PRESSURE])
    temp = np.stack([cols.column(path) for path in TEMPERATURE])
    pc = compensate_kpa(p, temp, th.reference_c)
    placard = params.tyre_placard_kpa[veh].astype(np.float64)
    ref = np.broadcast_to(placard, pc.shape)
    if np.isnan(placard).any():
        early = np.stack([early_median(veh, t_s, pc[w], th.window_s) for w in range(4)])
        ref = np.where(np.isnan(placard), early, placard)
    suspect = stuck_suspect(
        veh, t_s, p, temp, first_row, th.stuck_temperature_change_c, th.stuck_without_temperature_s
    )
    plausible = ~np.isnan(pc) & ~suspect
    sums = wheel_sums(t_s, np.where(plausible, pc - ref, np.nan))
    # Lines only where a row can be judged: its whole window of data behind it. The long window's
    # rows are among the short one's; everything below is on the short window's rows (columns).
    at = np.flatnonzero(t_s >= th.short_window_s)
    in_long = np.flatnonzero(t_s.take(at) >= th.window_s)
    in_slow = np.flatnonzero(t_s.take(at) >= th.slow_window_s)
    long_ = _verdict(sums, veh, t_s, plausible, at.take(in_long), th.window_s, th, pc, temp)
    short = _verdict(sums, veh, t_s, plausible, at, th.short_window_s, th, pc, temp)
    slow = _verdict(sums, veh, t_s, plausible, at.take(in_slow), th.slow_window_s, th, pc, temp)
    ok_long = _spread(long_.fits, in_long, at.size, False)
    leak_long = _spread(long_.leaking, in_long, at.size, False)
    ok_slow = _spread(slow.fits, in_slow, at.size, False)
    leak_slow = _spread(slow.leaking, in_slow, at.size, False)
    ref_at = ref.take(at, axis=1) if ref.strides[0] else placard.take(at)
    # The long window decides; the short and the slow one may only add a leak (a fast one, a slow
    # one), so a row judged in two overlapping runs gets the same verdict in both. The level: the
    # long line's, else the short's, else the slow's.
    with np.errstate(invalid="ignore"):
        lvl = np.where(
            ok_long,
            ref_at + _spread(long_.line.level, in_long, at.size, np.nan),
            np.where(
                short.fits,
                ref_at + short.line.level,
                np.where(ok_slow, ref_at + _spread(slow.line.level, in_slow, at.size, np.nan), np.nan),
            ),
        )
        conclusive = ok_long | short.leaking | leak_slow
        under = conclusive & (lvl <= (1.0 - th.under_placard_fraction) * ref_at)
    leak_any = leak_long | short.leaking | leak_slow
    severity = np.where(under, int(Severity.CRITICAL), np.where(leak_any, int(Severity.MAJOR), 0))
    any_judged = np.zeros(n, dtype=bool)
    any_judged[at] = conclusive.any(axis=0)
    row_severity = np.zeros(n, dtype=np.int64)
    row_severity[at] = severity.max(axis=0)
    changes = state_changes(veh, cols.ts_ns, any_judged, row_severity, th.sustain_s, th.hold_s)
    rows = report_rows(changes, veh, any_judged)
    # The evidence, at the reported rows only: the leak rate of the first window (long, short,
    # slow) that finds a leak, else of the first that fits.
    col = np.searchsorted(at, rows)
    rate_long = _spread(long_.rate, in_long, at.size, np.nan)[:, col]
    rate_short = short.rate[:, col]
    rate_slow = _spread(slow.rate, in_slow, at.size, np.nan)[:, col]
    kpa_per_h = np.select(
        [leak_long[:, col], short.leaking[:, col], leak_slow[:, col], ok_long[:, col], short.fits[:, col]],
        [rate_long, rate_short, rate_slow, rate_long, rate_short],
        rate_slow,
    )
    kpa_per_h[~(ok_long[:, col] | short.fits[:, col] | ok_slow[:, col])] = np.nan
    reference = np.broadcast_to(ref_at, lvl.shape)[:, col]
    thresholds_dict = _thresholds_dict(th)
    return [  # one iteration per finding, not per sample
        _finding(
            cols,
            th,
            thresholds_dict,
            int(r),
            int(lv),
            int(since),
            severity[:, k],
            lvl[:, k],
            kpa_per_h[:, i],
            reference[:, i],
        )
        for i, (r, k, lv, since) in enumerate(zip(rows, col, changes.level, changes.since_ns, strict=True))
    ]


@dataclass(frozen=True)
class _Verdict:
    """One window's lines at its rows (columns) for the four wheels, and what they say: `fits`
    (enough plausible readings over enough of the window), `rate` (kPa/h lost) and `leaking`."""

    line: WheelLines
    fits: np.ndarray
    rate: np.ndarray
    leaking: np.ndarray


def _verdict(
    sums: WheelSums,
    veh: np.ndarray,
    t_s: np.ndarray,
    plausible: np.ndarray,
    at: np.ndarray,
    window_s: float,
    th: TyreLeakThresholds,
    pc: np.ndarray,
    temp: np.ndarray,
) -> _Verdict:
    """The window's lines at rows `at`; a leak is a significant fall (t statistic against no fall,
    and against the most the temperature quantum can fake at the row, `quantum_drop_kpa`)."""
    line = wheel_lines(sums, window_start(veh, t_s, window_s, at), at)
    fits = plausible.take(at, axis=1) & (line.n >= th.min_rows) & ~np.isnan(line.slope)
    fits &= line.span_x >= th.min_span_fraction * window_s
    rate = -line.slope * 3600.0
    with np.errstate(invalid="ignore"):
        leaking = fits & (rate >= th.min_leak_kpa_per_h) & (rate * line.span_x / 3600.0 >= th.min_drop_kpa)
    flat = np.flatnonzero(leaking)
    if flat.size:  # the rest only where these already hold (leaks are rare)
        wheel, col = np.divmod(flat, at.size)
        row = at.take(col)
        span = line.span_x[wheel if line.span_x.shape[0] > 1 else np.zeros_like(wheel), col]
        drop = rate[wheel, col] * span / 3600.0
        quantum = quantum_drop_kpa(th, pc[wheel, row], temp[wheel, row])
        se = slope_se(line, y_squared_sums(sums), wheel, col)
        with np.errstate(invalid="ignore", divide="ignore"):
            t_stat = -line.slope[wheel, col] / se
            beyond_quantum = (drop - quantum) / (se * span)
        leaking[wheel, col] = (
            (drop >= quantum) & (t_stat >= th.min_t_stat) & (beyond_quantum >= th.quantum_t_stat)
        )
    return _Verdict(line, fits, rate, leaking)


def quantum_drop_kpa(th: TyreLeakThresholds, pc_kpa: np.ndarray, temperature_c: np.ndarray) -> np.ndarray:
    """The most a line's fall can owe to whole-degree temperature readings, at compensated pressure
    `pc_kpa` read at `temperature_c`: `quantum_drop_factor` quanta of d(pc)/dT = (pc + atm) / T.
    A row without a temperature is taken at `reference_c` (its pressure is raw: no better)."""
    temperature_c = np.where(np.isnan(temperature_c), th.reference_c, temperature_c)
    return (
        th.quantum_drop_factor
        * th.temperature_quantum_c
        * (pc_kpa + ATMOSPHERE_KPA)
        / (temperature_c + KELVIN)
    )


def _spread(values: np.ndarray, pos: np.ndarray, m: int, fill: float | bool) -> np.ndarray:
    """(wheels, m) with `values` (wheels, len(pos)) at columns `pos` and `fill` elsewhere."""
    out = np.full((values.shape[0], m), fill, dtype=values.dtype)
    out.ravel()[(pos + (np.arange(values.shape[0]) * m)[:, None]).ravel()] = values.ravel()
    return out


def _compensated_share(cols: TelemetryColumns, wheel: int, vehicle: int) -> float:
    """The share of the vehicle's pressure readings of this wheel that came with a temperature
    (worked out for the vehicles a finding names only)."""
    lo, hi = np.searchsorted(cols.vehicle, (vehicle, vehicle + 1))
    p = cols.column(PRESSURE[wheel])[lo:hi]
    temp = cols.column(TEMPERATURE[wheel])[lo:hi]
    have = ~np.isnan(p)  # the compensated value exists wherever the raw one does
    return float((have & ~np.isnan(temp)).sum() / max(int(have.sum()), 1))


@functools.lru_cache(maxsize=8)
def _thresholds_dict(th: TyreLeakThresholds) -> dict:
    """The thresholds as the evidence carries them (each finding gets its own copy)."""
    return asdict(th)


def _finding(
    cols: TelemetryColumns,
    th: TyreLeakThresholds,
    thresholds: dict,
    row: int,
    level: int,
    since_ns: int,
    severity: np.ndarray,
    level_kpa: np.ndarray,
    rate: np.ndarray,
    reference: np.ndarray,
) -> Finding:
    """The finding at `row`, with each wheel's severity, level, rate and reference there."""
    vid = cols.vehicle_ids[int(cols.vehicle[row])]
    at_ns = int(cols.ts_ns[row])
    # The wheel to name: the worst severity at this row, then the lowest pressure, then the first.
    sev, levels = severity.tolist(), level_kpa.tolist()
    w = min(range(4), key=lambda k: (-sev[k], nan_to_num(levels[k], nan=math.inf)))
    ref = float(reference[w])
    limit = (1.0 - th.under_placard_fraction) * ref
    lvl = float(levels[w])
    kpa_per_h = float(rate[w])
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
        "thresholds": dict(thresholds),
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
