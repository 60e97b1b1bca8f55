"""End to end on both brokers: vehicle publisher -> broker -> ingest -> PostgreSQL, read back exactly."""

from __future__ import annotations

import time

import numpy as np
import psycopg
import pytest

from contract import SIGNALS, TelemetryBatch
from contract.signals import BY_PATH
from edge_agent.fleet_publishing import MqttPublisher, PublishError, SequenceCounter
from localservers.embedded import SIMULATOR_USER
from tests.conftest import BrokerUnderTest

pytestmark = [pytest.mark.broker, pytest.mark.postgres]


def known_batch(vehicle_id: str, seq: int, n_rows: int = 20, seed: int = 1) -> TelemetryBatch:
    """Every catalogue signal, some with gaps, values chosen to be exact in their wire type.
    Batch `seed` k covers the k-th consecutive 10 s window from now, so batches never overlap."""
    rng = np.random.default_rng(seed)
    start_us = time.time_ns() // 1000 + seed * 10_000_000
    ts_ns = (start_us + np.arange(n_rows, dtype=np.int64) * 100_000) * 1000
    columns = {}
    for signal in SIGNALS:
        lo, hi = signal.min_value, signal.max_value
        values = (
            np.round(rng.uniform(lo, hi, n_rows), 3) if signal.wire_type != 3 else rng.integers(0, 2, n_rows)
        )
        values = values.astype(signal.wire_type.numpy_dtype).astype(np.float64)
        if signal.signal_id % 3 == 0:
            values[rng.random(n_rows) < 0.4] = np.nan
        columns[signal.vss_path] = values
    return TelemetryBatch(vehicle_id, seq, ts_ns, columns)


def read_back(pg_url: str, vehicle_id: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    cols = [s.column for s in SIGNALS]
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            f"SELECT (extract(epoch FROM ts) * 1000000)::bigint, {', '.join(cols)} FROM telemetry "
            "WHERE vehicle_id = %s ORDER BY ts",
            (vehicle_id,),
        ).fetchall()
    ts_us = np.array([r[0] for r in rows], dtype=np.int64)
    # psycopg renders float4 as its shortest decimal; back in float32 it is the exact stored value.
    values = {
        s.vss_path: np.array([np.nan if r[i + 1] is None else float(r[i + 1]) for r in rows])
        .astype(s.wire_type.numpy_dtype if s.wire_type != 3 else np.float64)
        .astype(np.float64)
        for i, s in enumerate(SIGNALS)
    }
    return ts_us, values


def test_published_samples_are_stored_exactly(broker: BrokerUnderTest, running_ingest, pg_url: str) -> None:
    vehicle_id = "VEH-A"
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM telemetry WHERE vehicle_id = %s", (vehicle_id,))
        conn.commit()
    seq = SequenceCounter()
    batches = [known_batch(vehicle_id, seq.next(), seed=i) for i in range(3)]
    with running_ingest(broker.ingest) as ingest:
        pub = MqttPublisher(broker.vehicle(vehicle_id), vehicle_id, status_vehicle_id=vehicle_id)
        pub.connect()
        try:
            for batch in batches:
                pub.publish_batch(batch)
            assert pub.wait_acked(10)
        finally:
            pub.close()
        expected_samples = sum(b.n_samples for b in batches)
        assert pub.stats.samples_acked == expected_samples
        assert ingest.wait_for(lambda t: t.samples >= expected_samples), ingest.service.totals
        assert ingest.service.totals.dead_letters == 0

    ts_us, stored = read_back(pg_url, vehicle_id)
    np.testing.assert_array_equal(ts_us, np.concatenate([b.ts_ns for b in batches]) // 1000)
    for path in BY_PATH:
        np.testing.assert_array_equal(
            stored[path], np.concatenate([b.columns[path] for b in batches]), err_msg=path
        )


def test_redelivered_batch_adds_no_rows(broker: BrokerUnderTest, running_ingest, pg_url: str) -> None:
    vehicle_id = f"DUP-{broker.name}-{time.time_ns()}"  # the gateway account may publish for any vehicle
    batch = known_batch(vehicle_id, SequenceCounter().next(), n_rows=5)
    with running_ingest(broker.ingest) as ingest:
        pub = MqttPublisher(broker.simulator, SIMULATOR_USER)
        pub.connect()
        try:
            for _ in range(3):
                pub.publish_batch(batch)
            assert pub.wait_acked(10)
        finally:
            pub.close()
        assert ingest.wait_for(lambda t: t.batches + t.duplicates >= 3)
        assert ingest.service.totals.batches == 1
    with psycopg.connect(pg_url) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM telemetry WHERE vehicle_id = %s", (vehicle_id,)
        ).fetchone()
    assert count == batch.n_rows


def test_vehicle_cannot_publish_as_another_vehicle(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    """The broker ACL confines VEH-C to its own topics: its publish for VEH-D never reaches ingest."""
    spoofed = known_batch("VEH-D", SequenceCounter().next(), n_rows=3)
    own = known_batch("VEH-C", SequenceCounter().next(), n_rows=3)
    with running_ingest(broker.ingest) as ingest:
        pub = MqttPublisher(broker.vehicle("VEH-C"), "VEH-C")
        pub.connect()
        try:
            pub.publish_batch(spoofed)
            pub.publish_batch(own)
            pub.wait_acked(10)
        finally:
            pub.close()
        assert ingest.wait_for(lambda t: t.batches >= 1)
        time.sleep(0.5)
    with psycopg.connect(pg_url) as conn:
        (spoofed_rows,) = conn.execute(
            "SELECT count(*) FROM telemetry WHERE vehicle_id = 'VEH-D' AND ts >= to_timestamp(%s)",
            (spoofed.ts_ns[0] / 1e9 - 0.001,),
        ).fetchone()
    assert spoofed_rows == 0


def test_wrong_password_is_refused(broker: BrokerUnderTest) -> None:
    pub = MqttPublisher(broker.vehicle("VEH-A", password="not-the-password"), "VEH-A")
    with pytest.raises(PublishError):
        pub.connect(timeout_s=5)
