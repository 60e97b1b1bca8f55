"""Storage of a triaged flush in one transaction: batches ledger, telemetry (binary COPY), vehicles,
last-known state and dead letters.

Owns: the SQL of the write path. A redelivered batch (same vehicle and seq) adds no rows because
the ledger insert decides, inside the same transaction, which batches are new. A lost database
raises StorageUnavailable so that the caller keeps the flush and retries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from contract.batch import TelemetryBatch
from ingest.copy_binary import TELEMETRY_COLUMNS, encode_copy_binary, rows_from_batches
from ingest.pipeline import Accepted, DeadLetter, Triage, dead_letter

COPY_SQL = f"COPY telemetry ({', '.join(TELEMETRY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


class StorageUnavailable(RuntimeError):
    """The database could not be reached or the transaction failed for transport reasons: retry."""


@dataclass(frozen=True)
class WriteResult:
    batches: int
    rows: int
    samples: int
    duplicates: int
    dead_letters: int


def _ts(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)


class TelemetryStore:
    """Writes flushes through one connection, reconnecting after a failure."""

    def __init__(self, database_url: str, *, unknown_vehicles: str = "register") -> None:
        self._url = database_url
        self._unknown_vehicles = unknown_vehicles
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, connect_timeout=5)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def ensure_partitions(self, days_back: int = 2, days_ahead: int = 7) -> int:
        """Pre-create daily partitions around today (a no-op on TimescaleDB)."""
        try:
            conn = self._connection()
            with conn.transaction():
                row = conn.execute(
                    "SELECT fleet_ensure_partitions(current_date - %s, current_date + %s)",
                    (days_back, days_ahead),
                ).fetchone()
            return int(row[0]) if row else 0
        except psycopg.OperationalError as exc:
            self._conn = None
            raise StorageUnavailable(str(exc)) from exc

    def write(self, triage: Triage) -> WriteResult:
        """Store one flush atomically. Raises StorageUnavailable on connection loss."""
        try:
            conn = self._connection()
            try:
                with conn.transaction():
                    return self._write(conn, triage)
            except psycopg.OperationalError:
                raise
            except psycopg.Error:
                # The database refused the data itself (not the transport): isolate the culprit.
                return self._write_one_by_one(conn, triage)
        except psycopg.OperationalError as exc:
            self._conn = None
            raise StorageUnavailable(str(exc)) from exc

    def _write_one_by_one(self, conn: psycopg.Connection, triage: Triage) -> WriteResult:
        """Store each accepted batch in its own transaction; one the database rejects is dead-lettered."""
        totals = [0, 0, 0, triage.duplicates, 0]
        dead = list(triage.dead)
        for item in triage.accepted:
            try:
                with conn.transaction():
                    r = self._write(conn, Triage(accepted=[item]))
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                dead.append(dead_letter(item.envelope, "storage_rejected", str(exc).splitlines()[0][:500]))
                continue
            for i, v in enumerate((r.batches, r.rows, r.samples, r.duplicates)):
                totals[i] += v
        with conn.transaction():
            self._store_dead_letters(conn, dead)
        return WriteResult(totals[0], totals[1], totals[2], totals[3], len(dead))

    def _write(self, conn: psycopg.Connection, triage: Triage) -> WriteResult:
        accepted = list(triage.accepted)
        dead = list(triage.dead)
        if accepted and self._unknown_vehicles == "reject":
            accepted, rejected = self._split_unknown(conn, accepted)
            dead.extend(rejected)
        batches = [a.batch for a in accepted]
        new = self._claim_new_batches(conn, batches)
        duplicates = triage.duplicates + len(batches) - len(new)
        block = rows_from_batches(new)
        if new:
            self._register_vehicles(conn, new)
            with conn.cursor().copy(COPY_SQL) as copy:
                copy.write(encode_copy_binary(block))
            self._merge_latest(conn, new)
        if dead:
            self._store_dead_letters(conn, dead)
        return WriteResult(len(new), block.n_rows, block.n_samples(), duplicates, len(dead))

    def _split_unknown(
        self, conn: psycopg.Connection, accepted: list[Accepted]
    ) -> tuple[list[Accepted], list[DeadLetter]]:
        ids = sorted({a.batch.vehicle_id for a in accepted})
        known = {
            r[0] for r in conn.execute("SELECT vehicle_id FROM vehicles WHERE vehicle_id = ANY(%s)", (ids,))
        }
        ok = [a for a in accepted if a.batch.vehicle_id in known]
        rejected = [
            dead_letter(a.envelope, "unknown_vehicle", "vehicle is not registered and the policy is reject")
            for a in accepted
            if a.batch.vehicle_id not in known
        ]
        return ok, rejected

    def _claim_new_batches(
        self, conn: psycopg.Connection, batches: list[TelemetryBatch]
    ) -> list[TelemetryBatch]:
        if not batches:
            return []
        rows = conn.execute(
            "INSERT INTO ingest_batches (vehicle_id, seq, first_ts, last_ts, n_rows, n_samples) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], "
            "%s::int[], %s::int[]) ON CONFLICT DO NOTHING RETURNING vehicle_id, seq",
            (
                [b.vehicle_id for b in batches],
                [b.seq for b in batches],
                [_ts(int(b.ts_ns[0])) for b in batches],
                [_ts(int(b.ts_ns[-1])) for b in batches],
                [b.n_rows for b in batches],
                [b.n_samples for b in batches],
            ),
        ).fetchall()
        fresh = set(rows)
        return [b for b in batches if (b.vehicle_id, b.seq) in fresh]

    def _register_vehicles(self, conn: psycopg.Connection, batches: list[TelemetryBatch]) -> None:
        last_seen: dict[str, int] = {}
        for b in batches:
            last_seen[b.vehicle_id] = max(last_seen.get(b.vehicle_id, 0), int(b.ts_ns[-1]))
        ids = sorted(last_seen)
        conn.execute(
            "INSERT INTO vehicles (vehicle_id, last_seen_at) "
            "SELECT * FROM unnest(%s::text[], %s::timestamptz[]) "
            "ON CONFLICT (vehicle_id) DO UPDATE SET last_seen_at = "
            "greatest(vehicles.last_seen_at, excluded.last_seen_at)",
            (ids, [_ts(last_seen[i]) for i in ids]),
        )

    def _merge_latest(self, conn: psycopg.Connection, batches: list[TelemetryBatch]) -> None:
        latest: dict[str, tuple[int, dict]] = {}
        for b in sorted(batches, key=lambda b: int(b.ts_ns[-1])):
            ts_prev, signals = latest.get(b.vehicle_id, (0, {}))
            for path, values in b.columns.items():
                idx = np.flatnonzero(~np.isnan(values))
                if idx.size:
                    i = int(idx[-1])
                    signals[path] = {"value": float(values[i]), "ts": _ts(int(b.ts_ns[i])).isoformat()}
            latest[b.vehicle_id] = (max(ts_prev, int(b.ts_ns[-1])), signals)
        ids = sorted(latest)
        # Newer data overrides per signal; older (late) data only fills signals not yet known.
        conn.execute(
            "INSERT INTO vehicle_latest (vehicle_id, ts, signals) "
            "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::jsonb[]) "
            "ON CONFLICT (vehicle_id) DO UPDATE SET "
            "signals = CASE WHEN excluded.ts >= vehicle_latest.ts "
            "THEN vehicle_latest.signals || excluded.signals "
            "ELSE excluded.signals || vehicle_latest.signals END, "
            "ts = greatest(vehicle_latest.ts, excluded.ts)",
            (ids, [_ts(latest[i][0]) for i in ids], [Jsonb(latest[i][1]) for i in ids]),
        )

    def _store_dead_letters(self, conn: psycopg.Connection, dead: list[DeadLetter]) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (received_at, topic, vehicle_id, reason, detail, payload) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [(_ts(d.received_at_ns), d.topic, d.vehicle_id, d.reason, d.detail, d.payload) for d in dead],
            )


__all__ = ["StorageUnavailable", "TelemetryStore", "WriteResult"]
