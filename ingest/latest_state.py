"""The last-known state of a flush: per vehicle, the newest present value of every signal.

Owns: finding, with numpy, each vehicle's newest row per signal in a prepared flush's row block,
and writing each vehicle's `vehicle_latest` object (`{vss_path: {"value": v, "ts": iso8601}}`) as
JSON text without building dicts (`LatestState.documents`), plus the ISO 8601 times the store
sends. Leaves the merge with the stored state (newest time wins per signal) to `ingest.store`.
Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from contract.signals import SIGNALS

if TYPE_CHECKING:
    from ingest.flush import PreparedFlush


def latest_signals(prepared: PreparedFlush) -> list[tuple[str, dt.datetime, dict]]:
    """Per vehicle: its newest row time and, per signal, the newest present value with its time.

    The result is the `vehicle_latest` shape: {vss_path: {"value": v, "ts": iso8601}}. (The store
    sends the same objects as JSON text, `LatestState.documents`.)"""
    latest = latest_state(prepared)
    signals: list[dict] = [{} for _ in latest.names]
    for found in latest.found:
        iso = latest.iso
        for c, value, k in zip(
            found.codes.tolist(), found.values.tolist(), found.instant.tolist(), strict=True
        ):
            signals[c][found.path] = {"value": value, "ts": iso[k]}
    return [
        (name, _dt(t), signals[i])
        for i, (name, t) in enumerate(zip(latest.names, latest.newest_us.tolist(), strict=True))
    ]


@dataclass(frozen=True)
class _Found:
    """One signal's newest present value of each vehicle that has one: vehicle codes, values and
    the index of their time in `LatestState.iso`."""

    path: str
    codes: np.ndarray
    values: np.ndarray
    instant: np.ndarray


@dataclass(frozen=True)
class LatestState:
    """A flush's last-known state: vehicles (sorted), each one's newest row time (Unix µs), and per
    signal the newest present values; `iso` holds each distinct time of those values once."""

    names: list[str]
    newest_us: np.ndarray
    found: list[_Found]
    iso: list[str]
    first_instant: np.ndarray  # per vehicle, the index in `iso` of its oldest latest value (len(iso): none)

    def documents(self) -> list[str]:
        """Each vehicle's signals object as JSON text: what `json.dumps` writes for the
        `latest_signals` dict (key order aside, which jsonb does not keep), without building it.
        Values are Python floats (`repr`, as `json` writes them; they are finite); paths are the
        catalogue's (letters, digits and dots: nothing to escape)."""
        pairs: list[list[str]] = [[] for _ in self.names]
        iso = self.iso
        for found in self.found:
            template = '"' + found.path + '":{"value":%r,"ts":"%s"}'
            for c, value, k in zip(
                found.codes.tolist(), found.values.tolist(), found.instant.tolist(), strict=True
            ):
                pairs[c].append(template % (value, iso[k]))
        return ["{" + ",".join(p) + "}" for p in pairs]

    def oldest_iso(self) -> list[str | None]:
        iso = self.iso
        return [iso[k] if k < len(iso) else None for k in self.first_instant.tolist()]


def latest_state(prepared: PreparedFlush) -> LatestState:
    """The newest present row of every vehicle per signal, found with numpy; each distinct time is
    formatted once (a flush's newest values share few instants: mostly each vehicle's last row)."""
    if not prepared.accepted:
        empty = np.zeros(0, np.int64)
        return LatestState([], empty, [], [], empty)
    names = sorted({a.batch.vehicle_id for a in prepared.accepted})
    code_of = {name: i for i, name in enumerate(names)}
    batch_code = np.array([code_of[a.batch.vehicle_id] for a in prepared.accepted], np.int64)
    code = batch_code[prepared.row_batch]
    ts_us = prepared.block.ts_us
    order = np.lexsort((ts_us, code))  # by vehicle, then time: the last row per vehicle is the newest
    newest_ts = np.full(len(names), np.iinfo(np.int64).min)
    np.maximum.at(newest_ts, code, ts_us)
    paths, found_code, found_row, found_value = [], [], [], []
    for signal in SIGNALS:
        column = prepared.block.column(signal.vss_path)
        if column is None:
            continue
        rows = order[~np.isnan(column[order])]
        if rows.size == 0:
            continue
        codes = code[rows]
        last = np.flatnonzero(np.r_[codes[1:] != codes[:-1], True])  # last row of each vehicle run
        paths.append(signal.vss_path)
        found_code.append(codes[last])
        found_row.append(rows[last])
        found_value.append(column[rows[last]])
    if not paths:
        return LatestState(names, newest_ts, [], [], np.zeros(len(names), np.int64))
    instants, which = np.unique(ts_us[np.concatenate(found_row)], return_inverse=True)
    which = which.reshape(-1)
    bounds = np.cumsum([0, *(c.shape[0] for c in found_code)])
    found = [
        _Found(path, codes, values, which[bounds[i] : bounds[i + 1]])
        for i, (path, codes, values) in enumerate(zip(paths, found_code, found_value, strict=True))
    ]
    first = np.full(len(names), instants.shape[0])
    np.minimum.at(first, np.concatenate(found_code), which)
    return LatestState(names, newest_ts, found, iso_many(instants), first)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _dt(ts_us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ts_us)


def _iso(ts_us: int) -> str:
    return _dt(ts_us).isoformat()


def iso_many(ts_us: np.ndarray) -> list[str]:
    """`_iso` of each time (Unix µs, inside the time domain), formatted by numpy: exactly what
    `datetime.isoformat` writes for UTC (no fraction when it is whole seconds, else six digits)."""
    at = np.asarray(ts_us, np.int64).astype("datetime64[us]")
    whole = np.datetime_as_string(at, unit="s")
    fraction = np.datetime_as_string(at, unit="us")
    text = np.where(at.astype(np.int64) % 1_000_000 == 0, whole, fraction)
    return [t + "+00:00" for t in text.tolist()]
