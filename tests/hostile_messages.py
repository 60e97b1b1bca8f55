"""Hostile uplink messages, one per class the hardening review found, and a set of valid messages
from other vehicles to mix them with. Shared by the pure preparation tests, the store tests and the
end-to-end tests through both brokers.

Each hostile message is what `mosquitto_pub` alone could send: a topic, bytes, and the reason it
must be dead-lettered with. Vehicle ids carry a run prefix so that tests sharing a database do not
see each other's rows.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from contract import TelemetryBatch, topics, wire_v1
from contract.dtc import dtc_message
from tests.malformed_payloads import GOOD_SPEED, body, frame


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retained: bool = False


@dataclass(frozen=True)
class Hostile:
    message: Message
    reason: str


@dataclass(frozen=True)
class ValidSet:
    """Valid telemetry, DTC and status messages, one vehicle each, and what storing them yields."""

    messages: list[Message]
    rows: dict[str, int]  # vehicle -> telemetry rows
    dtcs: dict[str, tuple[str, ...]]  # vehicle -> stored codes
    statuses: dict[str, str]  # vehicle -> state
    vehicles: list[str] = field(default_factory=list)


def now_us() -> int:
    return time.time_ns() // 1000


def telemetry_batch(vehicle: str, seq: int, n_rows: int, start_us: int) -> TelemetryBatch:
    ts_ns = (start_us + np.arange(n_rows, dtype=np.int64) * 100_000) * 1000
    return TelemetryBatch(vehicle, seq, ts_ns, {"Vehicle.Speed": np.linspace(10.0, 20.0, n_rows)})


def valid_set(run: str) -> ValidSet:
    start = now_us() - 5_000_000
    telemetry = {f"{run}-T1": 3, f"{run}-T2": 2, f"{run}-T3": 4}
    messages = [
        Message(
            topics.topic_for(v, topics.TELEMETRY), wire_v1.encode(telemetry_batch(v, 1 + i, n, start))
        )
        for i, (v, n) in enumerate(telemetry.items())
    ]
    dtcs = {f"{run}-D1": ("P0301",), f"{run}-D2": ()}
    messages += [
        Message(topics.topic_for(v, topics.DTC), dtc_message(v, start, codes, agent_version="4.2.0"))
        for v, codes in dtcs.items()
    ]
    checkin = {"state": "online", "vehicle_id": f"{run}-S1", "agent_version": "0.1.0", "queue_rows": 3}
    messages.append(Message(topics.topic_for(f"{run}-S1", topics.STATUS), json.dumps(checkin).encode()))
    messages.append(Message(topics.topic_for(f"{run}-S2", topics.STATUS), b"online"))
    statuses = {f"{run}-S1": "online", f"{run}-S2": "online"}
    return ValidSet(messages, telemetry, dtcs, statuses, [*telemetry, *dtcs, *statuses])


def _status(vehicle: str, raw_json: bytes) -> Message:
    return Message(topics.topic_for(vehicle, topics.STATUS), raw_json)


def _dtc(vehicle: str, **fields: object) -> Message:
    doc = json.loads(dtc_message(vehicle, now_us(), ["P0420"], agent_version="1.0"))
    doc.update(fields)
    return Message(topics.topic_for(vehicle, topics.DTC), json.dumps(doc).encode())


def _frame_at(vehicle: str, ts0_us: int, deltas: tuple[int, ...] = (1000,)) -> Message:
    payload = frame(body(GOOD_SPEED, vid=vehicle.encode(), ts0=ts0_us, deltas=deltas))
    return Message(topics.topic_for(vehicle, topics.TELEMETRY), payload)


def _year_us(year: int) -> int:
    return int((year - 1970) * 365.2425 * 86_400 * 1_000_000)


def _inflating_frame(vehicle: str) -> Message:
    inner = body(GOOD_SPEED, vid=vehicle.encode(), ts0=now_us()) + b"\x00" * (4 << 20)
    return Message(topics.topic_for(vehicle, topics.TELEMETRY), frame(zlib.compress(inner, 9), flags=1))


def _huge_int_dtc(vehicle: str) -> Message:
    base = dtc_message(vehicle, now_us(), ["P0420"], agent_version="1.0")
    return Message(topics.topic_for(vehicle, topics.DTC), base[:-1] + b',"n":' + b"9" * 5000 + b"}")


HOSTILE: dict[str, Callable[[str], Hostile]] = {
    # valid DTC and status messages were lost when one of these made flush preparation raise
    "dtc_dated_2286": lambda v: Hostile(_dtc(v, ts_us=10**16), "timestamp_out_of_range"),
    "dtc_with_a_5000_digit_integer": lambda v: Hostile(_huge_int_dtc(v), "bad_dtc_message"),
    "status_with_a_5000_digit_integer": lambda v: Hostile(
        _status(v, b'{"state": "online", "n": ' + b"9" * 5000 + b"}"), "bad_status_message"
    ),
    # one bad status made PostgreSQL's jsonb refuse every status of the flush
    "status_with_nan": lambda v: Hostile(_status(v, b'{"state": "online", "x": NaN}'), "bad_status_message"),
    "status_with_infinity": lambda v: Hostile(
        _status(v, b'{"state": "online", "x": -Infinity}'), "bad_status_message"
    ),
    "status_with_1e999": lambda v: Hostile(
        _status(v, b'{"state": "online", "x": 1e999}'), "bad_status_message"
    ),
    # timestamps that overflowed int64 nanoseconds, or got the wrong reason
    "telemetry_dated_year_75000": lambda v: Hostile(_frame_at(v, _year_us(75_000)), "timestamp_out_of_range"),
    "telemetry_dated_2286": lambda v: Hostile(_frame_at(v, _year_us(2286)), "timestamp_out_of_range"),
    "telemetry_ending_after_2262": lambda v: Hostile(
        _frame_at(v, (2**63 - 1) // 1000 - 500), "timestamp_out_of_range"
    ),
    "telemetry_dated_before_1970": lambda v: Hostile(_frame_at(v, -1_000_000), "timestamp_out_of_range"),
    "telemetry_dated_2200": lambda v: Hostile(_frame_at(v, _year_us(2200)), "timestamp_in_future"),
    # decompression amplification: 4 KiB on the wire inflating to 4 MiB
    "frame_inflating_1000_to_1": lambda v: Hostile(_inflating_frame(v), "oversized"),
    # smaller ones
    "status_with_empty_vehicle_id": lambda v: Hostile(
        _status(v, b'{"state": "online", "vehicle_id": ""}'), "bad_vehicle_id"
    ),
    "frame_without_values": lambda v: Hostile(
        Message(topics.topic_for(v, topics.TELEMETRY), frame(body(vid=v.encode(), ts0=now_us()))),
        "empty_batch",
    ),
}
