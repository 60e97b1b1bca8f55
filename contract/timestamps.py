"""The one time domain of every uplink message, so that no consumer can overflow on a hostile time.

Telemetry rows (`ts0` plus deltas) and DTC reports (`ts_us`) are microseconds since the Unix epoch,
UTC. Ingest holds them as int64 nanoseconds and PostgreSQL as `timestamptz`, so the valid range is
what int64 nanoseconds can hold: 1970-01-01T00:00:00Z to 2262-04-11T23:47:16.854775Z, both ends
included. A time outside it is not a plausible clock reading at all (`timestamp_out_of_range`); a
time inside it that is merely far from ingest's clock is a policy matter for ingest
(`timestamp_in_future`, `timestamp_too_old`). Pure: no clock is read here.

Also the one conversion between int64 nanoseconds and `datetime` (which, like PostgreSQL, holds
microseconds: nanoseconds are cut, never rounded up).
"""

from __future__ import annotations

import datetime as dt

from contract.errors import DeadLetterReason, DecodeError

MIN_TS_US = 0
MAX_TS_US = (2**63 - 1) // 1000  # 9_223_372_036_854_775 µs = 2262-04-11T23:47:16.854775Z


def in_domain(ts_us: int) -> bool:
    return MIN_TS_US <= ts_us <= MAX_TS_US


def check_ts_us(ts_us: int, what: str) -> None:
    """Raises DecodeError(timestamp_out_of_range) when `ts_us` lies outside the domain."""
    if not in_domain(ts_us):
        raise DecodeError(
            DeadLetterReason.TIMESTAMP_OUT_OF_RANGE,
            f"{what} {ts_us} µs is outside {MIN_TS_US}..{MAX_TS_US} (1970-01-01..2262-04-11 UTC)",
        )


UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def datetime_of_ns(ns: int) -> dt.datetime:
    """Nanoseconds since the Unix epoch as an aware UTC datetime, cut to the microsecond."""
    return UNIX_EPOCH + dt.timedelta(microseconds=ns // 1000)


def ns_of(at: dt.datetime) -> int:
    """An aware datetime as nanoseconds since the Unix epoch (a multiple of 1,000)."""
    return (at - UNIX_EPOCH) // _US * 1000
