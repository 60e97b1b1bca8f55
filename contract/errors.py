"""Errors of the contract package, named for what the caller does next, and the one list of reasons
a message is dead-lettered.

`DecodeError` means the bytes are bad: the caller dead-letters them with `reason` and moves on.
`EncodeError` means the caller built an invalid batch: a programming or data error on the sender.
`DeadLetterReason` is every value ingest stores in `dead_letters.reason`, whether a decoder or ingest
itself found the fault; docs/wire-format.md (section 5) lists them from here (a test compares).
"""

from __future__ import annotations

import enum


class DeadLetterReason(enum.StrEnum):
    """Stable, machine-readable reasons, stored in the dead-letter table. Each has a one-line
    `meaning`; the detailed conditions are in docs/wire-format.md."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> DeadLetterReason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    # Found by the decoders (wire v1, DTC, status and update-report messages), raised as DecodeError.
    TRUNCATED = "truncated", "the payload ends before a field it announces"
    BAD_MAGIC = "bad_magic", "not a wire-format frame (the first two bytes are not `FP`)"
    UNSUPPORTED_VERSION = "unsupported_version", "a wire-format version this decoder does not read"
    BAD_FLAGS = "bad_flags", "unknown flag bits in the frame header"
    OVERSIZED = "oversized", "the payload, its inflated body or its row count exceeds its limit"
    DECOMPRESSION_FAILED = "decompression_failed", "the body is flagged zlib but is not a zlib stream"
    LENGTH_MISMATCH = "length_mismatch", "lengths or presence data disagree with the header"
    BAD_VEHICLE_ID = "bad_vehicle_id", "the vehicle id in the payload is not a valid vehicle id"
    BAD_SEQUENCE = "bad_sequence", "the batch sequence number cannot be stored (2^63 or more)"
    EMPTY_BATCH = "empty_batch", "a batch with no rows or no present value"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range", "a time outside 1970-01-01 ... 2262-04-11 UTC"
    UNKNOWN_SIGNAL = "unknown_signal", "a signal id that is not in the catalogue"
    DUPLICATE_SIGNAL = "duplicate_signal", "one signal in two columns of a frame"
    TYPE_MISMATCH = "type_mismatch", "a column's wire type differs from the catalogue's"
    NON_FINITE_VALUE = "non_finite_value", "a float value that is NaN or infinite"
    BAD_BOOL = "bad_bool", "a boolean value other than 0 or 1"
    TIMESTAMPS_NOT_INCREASING = "timestamps_not_increasing", "two rows of a batch share a time"
    TRAILING_BYTES = "trailing_bytes", "bytes after the end of the frame's body"
    BAD_DTC_MESSAGE = "bad_dtc_message", "a DTC report that is not a valid DTC message"
    BAD_STATUS_MESSAGE = "bad_status_message", "a status that is neither online/offline nor a check-in"
    BAD_UPDATE_REPORT = "bad_update_report", "an OTA update report that is not a valid report (docs/ota.md)"
    # Found by ingest after decoding.
    BAD_TOPIC = "bad_topic", "the message arrived on a topic that is not its kind's"
    TOPIC_MISMATCH = "topic_mismatch", "the payload's vehicle id differs from its topic's"
    UNKNOWN_VEHICLE = "unknown_vehicle", "an unregistered vehicle while the policy is `reject`"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future", "a batch or DTC report dated too far ahead: rejected whole"
    TIMESTAMP_TOO_OLD = "timestamp_too_old", "a batch or DTC report older than ingest accepts: rejected whole"
    OUT_OF_RANGE = "out_of_range", "values outside the catalogue range, stored as NULL (the rest is kept)"
    INTERNAL_ERROR = "internal_error", "ingest failed on this message (a bug); the flush goes on"
    STORAGE_REJECTED = "storage_rejected", "the database refused this message's data; the flush goes on"


def reasons_table() -> str:
    """The Markdown table of every reason and its meaning, as docs/wire-format.md holds it."""
    rows = [f"| `{r.value}` | {r.meaning} |" for r in DeadLetterReason]
    return "\n".join(["| reason | meaning |", "|---|---|", *rows]) + "\n"


class DecodeError(ValueError):
    """The payload is malformed. `reason` says why (for the dead letter); `detail` where and how."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodeError(ValueError):
    """The batch cannot be encoded (non-finite values, unknown signals, bad timestamps)."""
