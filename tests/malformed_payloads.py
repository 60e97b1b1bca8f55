"""Hand-built malformed wire-format payloads, one per kind of damage, with the reason each must get.

Shared by the codec tests and the ingest dead-letter tests.
"""

from __future__ import annotations

import struct
import zlib

from contract import DeadLetterReason, wire_v1
from contract.signals import BY_PATH
from contract.timestamps import MAX_TS_US

SPEED = BY_PATH["Vehicle.Speed"]
ABS = BY_PATH["Vehicle.ADAS.ABS.IsEngaged"]


def frame(body: bytes, *, version: int = 1, flags: int = 0, length: int | None = None) -> bytes:
    return wire_v1.HEADER.pack(b"FP", version, flags, len(body) if length is None else length) + body


def body(
    *columns: bytes,
    vid: bytes = b"VEH-1",
    seq: int = 1,
    n: int = 2,
    deltas: tuple[int, ...] = (1000,),
    ts0: int = 1_700_000_000_000_000,
) -> bytes:
    head = bytes([len(vid)]) + vid + wire_v1.BODY_FIXED.pack(seq, n, len(columns))
    return head + struct.pack("<q", ts0) + struct.pack(f"<{len(deltas)}I", *deltas) + b"".join(columns)


def column(signal_id: int, wire_type: int, values: bytes, presence: int = 0, bitmap: bytes = b"") -> bytes:
    return wire_v1.COLUMN_HEAD.pack(signal_id, wire_type, presence) + bitmap + values


GOOD_SPEED = column(SPEED.signal_id, SPEED.wire_type, struct.pack("<2f", 10.0, 12.5))


MALFORMED = {
    "truncated_header": (b"FP\x01", DeadLetterReason.TRUNCATED),
    "truncated_body": (frame(body(GOOD_SPEED))[:-3], DeadLetterReason.TRUNCATED),
    "truncated_column": (frame(body(GOOD_SPEED)[:-3]), DeadLetterReason.TRUNCATED),
    "bad_magic": (b"XX" + frame(body(GOOD_SPEED))[2:], DeadLetterReason.BAD_MAGIC),
    "wrong_version": (frame(body(GOOD_SPEED), version=2), DeadLetterReason.UNSUPPORTED_VERSION),
    "unknown_flags": (frame(body(GOOD_SPEED), flags=0x80), DeadLetterReason.BAD_FLAGS),
    "length_longer_than_header": (frame(body(GOOD_SPEED)) + b"\x00", DeadLetterReason.LENGTH_MISMATCH),
    "column_longer_than_rows": (
        frame(body(column(SPEED.signal_id, SPEED.wire_type, struct.pack("<3f", 1, 2, 3)))),
        DeadLetterReason.TRAILING_BYTES,
    ),
    "fewer_values_than_rows": (
        frame(body(column(SPEED.signal_id, SPEED.wire_type, struct.pack("<1f", 1)))),
        DeadLetterReason.TRUNCATED,
    ),
    "nan_value": (
        frame(body(column(SPEED.signal_id, SPEED.wire_type, struct.pack("<2f", 1.0, float("nan"))))),
        DeadLetterReason.NON_FINITE_VALUE,
    ),
    "infinite_value": (
        frame(body(column(SPEED.signal_id, SPEED.wire_type, struct.pack("<2f", float("inf"), 1.0)))),
        DeadLetterReason.NON_FINITE_VALUE,
    ),
    "unknown_signal": (
        frame(body(column(999, 1, struct.pack("<2f", 1, 2)))),
        DeadLetterReason.UNKNOWN_SIGNAL,
    ),
    "type_mismatch": (
        frame(body(column(SPEED.signal_id, 2, struct.pack("<2d", 1, 2)))),
        DeadLetterReason.TYPE_MISMATCH,
    ),
    "bad_bool": (frame(body(column(ABS.signal_id, ABS.wire_type, bytes([0, 7])))), DeadLetterReason.BAD_BOOL),
    "duplicate_signal": (frame(body(GOOD_SPEED, GOOD_SPEED)), DeadLetterReason.DUPLICATE_SIGNAL),
    "seq_beyond_bigint": (frame(body(GOOD_SPEED, seq=2**63)), DeadLetterReason.BAD_SEQUENCE),
    "zero_rows": (frame(body(n=0, deltas=())), DeadLetterReason.EMPTY_BATCH),
    "repeated_timestamp": (frame(body(GOOD_SPEED, deltas=(0,))), DeadLetterReason.TIMESTAMPS_NOT_INCREASING),
    "bad_vehicle_id": (frame(body(GOOD_SPEED, vid=b"VEH/1#")), DeadLetterReason.BAD_VEHICLE_ID),
    "oversized_frame": (frame(b"\x00" * (wire_v1.MAX_FRAME_BYTES + 1)), DeadLetterReason.OVERSIZED),
    "zip_bomb": (
        frame(zlib.compress(body(GOOD_SPEED) + b"\x00" * (wire_v1.MAX_BODY_BYTES + 10), 9), flags=1),
        DeadLetterReason.OVERSIZED,
    ),
    "too_many_rows": (frame(body(n=wire_v1.MAX_ROWS + 1, deltas=())), DeadLetterReason.OVERSIZED),
    "bytes_after_compressed_body": (
        frame(zlib.compress(body(GOOD_SPEED)) + b"xx", flags=1),
        DeadLetterReason.TRAILING_BYTES,
    ),
    "presence_bits_past_last_row": (
        frame(
            body(
                column(
                    SPEED.signal_id, SPEED.wire_type, struct.pack("<1f", 1), presence=1, bitmap=bytes([0b101])
                )
            )
        ),
        DeadLetterReason.LENGTH_MISMATCH,
    ),
    "vehicle_id_with_newline": (frame(body(GOOD_SPEED, vid=b"VEH1\n")), DeadLetterReason.BAD_VEHICLE_ID),
    "corrupt_compression": (frame(b"not zlib at all", flags=1), DeadLetterReason.DECOMPRESSION_FAILED),
    "small_frame_inflating_past_the_ratio": (  # ~2 KiB inflating to 2 MiB: beyond max(1 MiB, 64x)
        frame(zlib.compress(body(GOOD_SPEED) + b"\x00" * (2 << 20), 9), flags=1),
        DeadLetterReason.OVERSIZED,
    ),
    "ts0_before_1970": (frame(body(GOOD_SPEED, ts0=-1)), DeadLetterReason.TIMESTAMP_OUT_OF_RANGE),
    "ts0_in_year_75000": (
        frame(body(GOOD_SPEED, ts0=2_305_000_000_000_000_000)),
        DeadLetterReason.TIMESTAMP_OUT_OF_RANGE,
    ),
    "last_row_after_2262": (
        frame(body(GOOD_SPEED, ts0=MAX_TS_US - 500, deltas=(1000,))),
        DeadLetterReason.TIMESTAMP_OUT_OF_RANGE,
    ),
    "no_columns": (frame(body()), DeadLetterReason.EMPTY_BATCH),
    "every_column_absent": (
        frame(body(column(SPEED.signal_id, SPEED.wire_type, b"", presence=1, bitmap=bytes([0])))),
        DeadLetterReason.EMPTY_BATCH,
    ),
}
