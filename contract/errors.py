"""Errors of the contract package, named for what the caller does next.

`DecodeError` means the bytes are bad: the caller dead-letters them with `reason` and moves on.
`EncodeError` means the caller built an invalid batch: a programming or data error on the sender.
"""

from __future__ import annotations

import enum


class DecodeReason(enum.StrEnum):
    """Stable, machine-readable reasons; they are stored in the dead-letter table."""

    TRUNCATED = "truncated"
    BAD_MAGIC = "bad_magic"
    UNSUPPORTED_VERSION = "unsupported_version"
    BAD_FLAGS = "bad_flags"
    OVERSIZED = "oversized"
    DECOMPRESSION_FAILED = "decompression_failed"
    LENGTH_MISMATCH = "length_mismatch"
    BAD_VEHICLE_ID = "bad_vehicle_id"
    BAD_SEQUENCE = "bad_sequence"
    EMPTY_BATCH = "empty_batch"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    UNKNOWN_SIGNAL = "unknown_signal"
    DUPLICATE_SIGNAL = "duplicate_signal"
    TYPE_MISMATCH = "type_mismatch"
    NON_FINITE_VALUE = "non_finite_value"
    BAD_BOOL = "bad_bool"
    TIMESTAMPS_NOT_INCREASING = "timestamps_not_increasing"
    TRAILING_BYTES = "trailing_bytes"
    TOPIC_MISMATCH = "topic_mismatch"
    BAD_TOPIC = "bad_topic"
    BAD_DTC_MESSAGE = "bad_dtc_message"
    BAD_STATUS_MESSAGE = "bad_status_message"


class DecodeError(ValueError):
    """The payload is malformed. `reason` is a DecodeReason; `detail` says where and why."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodeError(ValueError):
    """The batch cannot be encoded (non-finite values, unknown signals, bad timestamps)."""
