"""Storage of a prepared flush in one transaction: batch ledger, telemetry (binary COPY), vehicles,
last-known state, DTC reports and dead letters.

Owns: the SQL of the write path. A redelivered batch (same vehicle and seq) adds no rows because
the ledger insert decides, inside the same transaction, which batches are new. Commit comes before
the service acknowledges the MQTT messages, so a crash at any point loses nothing (the broker
redelivers) and duplicates nothing (the ledger drops what was already committed).

Errors: a lost database raises StorageUnavailable (the caller keeps the flush and retries it); data
the database refuses is isolated batch by batch and dead-lettered as `storage_rejected`.
Round trips per flush: ledger, vehicles, COPY, latest state, DTC reports, update reports and dead
letters (if any), commit. A DTC report is keyed on (vehicle, time, codes), an OTA update report on
(vehicle, SHA-256 of its bytes), so a redelivered one adds no row.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import psycopg

from contract.errors import DeadLetterReason
from contract.timestamps import datetime_of_ns as _ts
from ingest.flush import (
    PreparedFlush,
    StorageParams,
    dtc_document,
    prepare_flush,
    software_document,
    status_document,
    storage_params,
    update_document,
)
from ingest.pipeline import AcceptedDtc, AcceptedStatus, AcceptedUpdate, DeadLetter, Triage, dead_letter
from ingest.row_writers import COPY_SQL, RowWriter, copy_rows, insert_rows
from ingest.validation import ValidationPolicy

T = TypeVar("T")
M = TypeVar("M", AcceptedDtc, AcceptedStatus, AcceptedUpdate)

# Times travel as Unix µs (psycopg adapts a list of ints much faster than one of datetimes); the
# product of a bigint and an interval is exact for them (below 2^53 µs, about 285 years).
_CLAIM_SQL = (
    "INSERT INTO ingest_batches (vehicle_id, seq, first_ts, last_ts, n_rows, n_samples)"
    " SELECT v, s, timestamptz 'epoch' + f * interval '1 microsecond',"
    " timestamptz 'epoch' + l * interval '1 microsecond', n, m"
    " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::int[], %s::int[])"
    " AS r(v, s, f, l, n, m)"
    " ON CONFLICT DO NOTHING RETURNING vehicle_id, seq"
)
_VEHICLES_SQL = (
    "INSERT INTO vehicles (vehicle_id, last_seen_at) SELECT * FROM unnest(%s::text[], %s::timestamptz[]) "
    "ON CONFLICT (vehicle_id) DO UPDATE SET last_seen_at = "
    "greatest(vehicles.last_seen_at, excluded.last_seen_at)"
)
# Per signal, the value with the newer time wins, so late (out-of-order) data never hides newer data.
# Fast path (in-order data, the usual case): every new value is newer than the stored row's newest,
# so a plain jsonb `||` is right. Otherwise (new vehicle or late data) merge signal by signal.
# Per vehicle, its signals object travels as JSON text in a text array (built in `ingest.flush`
# without a dict or `json.dumps`), parsed one vehicle at a time. The arrays go in binary (`%b`):
# as text, psycopg would quote and escape every JSON string into an array literal, 5x slower.
_LATEST_SQL = (
    "WITH new AS (SELECT * FROM unnest(%b::text[], %b::text[]::timestamptz[], %b::text[]::jsonb[],"
    " %b::text[]::timestamptz[])"
    " AS r(v, t, s, oldest)),"
    " fast AS (UPDATE vehicle_latest cur SET ts = new.t, signals = cur.signals || new.s"
    " FROM new WHERE cur.vehicle_id = new.v AND new.oldest >= cur.ts RETURNING cur.vehicle_id)"
    " INSERT INTO vehicle_latest AS cur (vehicle_id, ts, signals)"
    " SELECT v, t, s FROM new WHERE v NOT IN (SELECT vehicle_id FROM fast)"
    " ON CONFLICT (vehicle_id) DO UPDATE SET ts = greatest(cur.ts, excluded.ts), signals = ("
    " SELECT jsonb_object_agg(k, CASE WHEN n.v IS NULL THEN o.v WHEN o.v IS NULL THEN n.v"
    " WHEN (n.v->>'ts')::timestamptz >= (o.v->>'ts')::timestamptz THEN n.v ELSE o.v END)"
    " FROM jsonb_each(cur.signals) o(k, v) FULL JOIN jsonb_each(excluded.signals) n(k, v) USING (k))"
)
_DTC_SQL = (
    "INSERT INTO dtc_reports (vehicle_id, ts, codes, agent_version, software, v1_firmware_version)"
    " SELECT v, t, ARRAY(SELECT jsonb_array_elements_text(c)), av, sw, fw1 FROM jsonb_to_recordset(%s::jsonb)"
    " AS r(v text, t timestamptz, c jsonb, av text, sw jsonb, fw1 text) ON CONFLICT DO NOTHING"
)
# OTA update reports, verified later by `ota.reports` over the stored payload.
_UPDATE_SQL = (
    "INSERT INTO update_reports (vehicle_id, offer_id, seq, state, reason, ts, ecu, before_version,"
    " before_sha256, after_version, after_sha256, target_version, target_sha256, key_id, payload,"
    " payload_sha256, received_at)"
    " SELECT v, o, seq, st, r, t, ecu, bv, bs, av, \"as\", tv, tsha, k, decode(p, 'hex'),"
    " sha256(decode(p, 'hex')), at FROM jsonb_to_recordset(%s::jsonb) AS x(v text, o text, seq int,"
    ' st text, r text, t timestamptz, ecu text, bv text, bs text, av text, "as" text, tv text,'
    " tsha text, k text, p text, at timestamptz) ON CONFLICT (vehicle_id, payload_sha256) DO NOTHING"
)
# Status has no vehicle clock: ingest's receive time orders it, and an older one never wins. A bare
# `online`/`offline` updates the state and keeps the last check-in's details. A retained replay
# (the broker's stored copy, sent again when ingest subscribes) only fills a missing row: it is the
# status already stored, and must not move `reported_at` to the time ingest restarted.
_STATUS_ROWS = (
    "INSERT INTO vehicle_status AS cur (vehicle_id, state, details, agent_version, reported_at)"
    " SELECT v, state, d, av, t"
    " FROM jsonb_to_recordset(%s::jsonb) AS r(v text, state text, d jsonb, av text, t timestamptz)"
)
_STATUS_SQL = (
    _STATUS_ROWS + " ON CONFLICT (vehicle_id) DO UPDATE SET state = excluded.state,"
    " reported_at = excluded.reported_at,"
    " details = CASE WHEN excluded.details = '{}'::jsonb THEN cur.details ELSE excluded.details END,"
    " agent_version = CASE WHEN excluded.details = '{}'::jsonb THEN cur.agent_version"
    " ELSE excluded.agent_version END"
    " WHERE excluded.reported_at >= cur.reported_at"
)
_STATUS_REPLAY_SQL = _STATUS_ROWS + " ON CONFLICT (vehicle_id) DO NOTHING"
# A check-in's software inventory replaces the vehicle's, unless an inventory reported later is
# already stored (a retained replay only fills in a vehicle that has none). The claim on
# `vehicle_status.software_reported_at` decides which vehicles' inventories apply; for those, each
# changed (vehicle, ECU) entry goes to the history, ECUs no longer reported are removed and the
# rest upserted.
_SOFTWARE_CLAIM_SQL = (
    "UPDATE vehicle_status s SET software_reported_at = r.t"
    " FROM jsonb_to_recordset(%(doc)s::jsonb) AS r(v text, t timestamptz) WHERE s.vehicle_id = r.v"
    " AND (s.software_reported_at IS NULL OR (NOT %(replay)s AND r.t >= s.software_reported_at))"
    " RETURNING s.vehicle_id"
)
_SOFTWARE_NEW = (
    "WITH new AS (SELECT * FROM jsonb_to_recordset(%(doc)s::jsonb)"
    " AS r(v text, t timestamptz, ecu text, ver text, hw text))"
)
_SOFTWARE_HISTORY_SQL = (
    _SOFTWARE_NEW + " INSERT INTO software_history"
    " (vehicle_id, ecu, software_version, hardware_id, reported_at)"
    " SELECT n.v, n.ecu, n.ver, n.hw, n.t FROM new n"
    " LEFT JOIN vehicle_software cur ON cur.vehicle_id = n.v AND cur.ecu = n.ecu"
    " WHERE n.ecu IS NOT NULL"
    " AND (cur.software_version, cur.hardware_id) IS DISTINCT FROM (n.ver, n.hw) ON CONFLICT DO NOTHING"
)
_SOFTWARE_REMOVED_SQL = (
    _SOFTWARE_NEW + " DELETE FROM vehicle_software cur WHERE cur.vehicle_id IN (SELECT v FROM new)"
    " AND NOT EXISTS (SELECT 1 FROM new n WHERE n.v = cur.vehicle_id AND n.ecu = cur.ecu)"
)
_SOFTWARE_SQL = (
    _SOFTWARE_NEW + " INSERT INTO vehicle_software AS cur"
    " (vehicle_id, ecu, software_version, hardware_id, reported_at)"
    " SELECT v, ecu, ver, hw, t FROM new WHERE ecu IS NOT NULL ORDER BY v, ecu ON CONFLICT (vehicle_id, ecu)"
    " DO UPDATE SET software_version = excluded.software_version,"
    " hardware_id = excluded.hardware_id, reported_at = excluded.reported_at"
)
# A retained replay (the broker resends its stored copy at every subscribe) is news only once: it
# is not stored again when the same bytes on the same topic are already in the store.
_DEAD_SQL = (
    "INSERT INTO dead_letters (received_at, topic, vehicle_id, reason, detail, payload, payload_sha256)"
    " SELECT r.at, r.topic, r.vid, r.reason, r.detail, r.payload, sha256(r.payload) FROM (SELECT"
    " %s::timestamptz AS at, %s::text AS topic, %s::text AS vid, %s::text AS reason, %s::text AS detail,"
    " %s::bytea AS payload, %s::boolean AS replay) r WHERE NOT (r.replay AND EXISTS (SELECT 1 FROM"
    " dead_letters d WHERE d.payload_sha256 = sha256(r.payload) AND d.topic = r.topic))"
)


@dataclass(frozen=True)
class _Screened:
    """A flush after the unknown-vehicle policy: which batches stay, the DTC reports and statuses
    that stay, and the dead letters of the rest."""

    keep: np.ndarray
    dtcs: list[AcceptedDtc]
    statuses: list[AcceptedStatus]
    dead: list[DeadLetter]
    updates: list[AcceptedUpdate] = field(default_factory=list)


class StorageUnavailable(RuntimeError):
    """The database could not be reached or the transaction failed for transport reasons: retry."""


@dataclass(frozen=True)
class WriteResult:
    batches: int
    rows: int
    samples: int
    duplicates: int
    dead_letters: int
    dead_reasons: tuple[DeadLetterReason, ...] = ()
    committed_at_ns: int = 0
    newest_ts_us: tuple[int, ...] = ()  # newest sample time of each stored batch (for the lag metric)
    dtc_reports: int = 0  # DTC reports stored
    dtc_duplicates: int = 0  # DTC reports already stored (redeliveries)
    update_reports: int = 0  # OTA update reports stored (redeliveries not counted)
    statement_s: tuple[tuple[str, float], ...] = ()  # seconds per statement of the transaction


class _Laps:
    """Seconds spent per statement of one write transaction (`WriteResult.statement_s`): one
    `perf_counter` call per statement, so that the metric costs nothing next to the round trip."""

    def __init__(self) -> None:
        self._at = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, statement: str) -> None:
        now = time.perf_counter()
        self.seconds[statement] = self.seconds.get(statement, 0.0) + now - self._at
        self._at = now


class TelemetryStore:
    """Writes flushes through one connection, reconnecting after a failure.

    `row_writer="insert"` replaces the binary COPY of the rows by an INSERT (see
    `ingest.row_writers`); `connect` replaces `psycopg.connect(database_url)`, e.g. to share the one
    connection a single-connection test server allows."""

    def __init__(
        self,
        database_url: str,
        *,
        unknown_vehicles: str = "register",
        validation: ValidationPolicy | None = None,
        row_writer: RowWriter = "copy",
        connect: Callable[[], psycopg.Connection] | None = None,
    ) -> None:
        if unknown_vehicles not in ("register", "reject"):
            raise ValueError("unknown_vehicles must be 'register' or 'reject'")
        if row_writer not in ("copy", "insert"):
            raise ValueError("row_writer must be 'copy' or 'insert'")
        self._url = database_url
        self._unknown_vehicles = unknown_vehicles
        self._row_writer = row_writer
        self._connect = connect or (lambda: psycopg.connect(self._url, connect_timeout=5))
        self.validation = validation or ValidationPolicy()
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def ensure_partitions(self, days_back: int = 2, days_ahead: int = 7) -> int:
        """Pre-create daily partitions around today (a no-op on TimescaleDB).
        Raises StorageUnavailable when the database cannot be reached."""
        return int(
            self._call(
                "SELECT fleet_ensure_partitions(current_date - %s, current_date + %s)",
                (days_back, days_ahead),
            )
        )

    def maintain(self) -> str:
        """Run `fleet_maintain()` (partitions, aggregates, retention; see migration 0003) and return
        its summary. Raises StorageUnavailable when the database cannot be reached."""
        return str(self._call("SELECT fleet_maintain()", ()))

    def _call(self, sql: str, params: tuple) -> Any:
        try:
            conn = self._connection()
            with conn.transaction():
                row = conn.execute(sql, params).fetchone()
            return row[0] if row else 0
        except psycopg.OperationalError as exc:
            self._conn = None
            raise StorageUnavailable(str(exc)) from exc

    def prepare(self, triage: Triage) -> PreparedFlush:
        """The CPU half of a write (validation and COPY encoding); no database access."""
        return prepare_flush(triage, self.validation)

    def write(self, triage: Triage) -> WriteResult:
        """Validate and store one flush atomically. Raises StorageUnavailable on connection loss."""
        return self.write_prepared(self.prepare(triage))

    def write_prepared(self, prepared: PreparedFlush) -> WriteResult:
        """Store one prepared flush atomically. Raises StorageUnavailable on connection loss."""
        try:
            conn = self._connection()
            try:
                laps = _Laps()
                with conn.transaction():
                    result = self._write_screened(conn, prepared, self._screen(conn, prepared, laps), laps)
                laps.lap("commit")
                return replace(result, statement_s=tuple(laps.seconds.items()))
            except psycopg.OperationalError:
                raise
            except psycopg.Error:
                # The database refused the data itself (not the transport): isolate the culprit.
                return self._write_one_by_one(conn, prepared)
        except psycopg.OperationalError as exc:
            self._conn = None
            raise StorageUnavailable(str(exc)) from exc

    def _write_one_by_one(self, conn: psycopg.Connection, prepared: PreparedFlush) -> WriteResult:
        """Store each accepted batch in its own savepoint, and each group of DTC reports and statuses
        too (one by one if the group is refused); whatever the database refuses is dead-lettered."""
        screened = self._screen(conn, prepared)
        results: list[WriteResult] = []
        flush_dead = [*prepared.dead, *screened.dead]
        everything = np.arange(len(prepared.accepted))
        passed = _Screened(np.ones(1, dtype=bool), [], [], [])  # screened above: not queried again
        for i in np.flatnonzero(screened.keep).tolist():
            one = prepared.only_batches(everything == i)
            one = replace(one, dead=(), duplicates=0, dtcs=(), statuses=(), superseded_statuses=0, updates=())
            result, detail = _in_savepoint(conn, self._write_screened, conn, one, passed)
            if result is not None:
                results.append(result)
            else:
                envelope = prepared.accepted[i].envelope
                flush_dead.append(dead_letter(envelope, DeadLetterReason.STORAGE_REJECTED, detail or ""))
        with conn.transaction():

            def store_dtcs(dtcs: list[AcceptedDtc]) -> int:
                _upsert_vehicles(conn, _seen_at(dtcs, [], {}))
                return _store_dtcs(conn, dtcs)

            def store_statuses(statuses: list[AcceptedStatus]) -> int:
                _upsert_vehicles(conn, _seen_at([], statuses, {}))
                _store_statuses(conn, statuses)
                return len(statuses)

            def store_updates(updates: list[AcceptedUpdate]) -> int:
                _upsert_vehicles(conn, _seen_at([], [], {}, updates))
                return _store_updates(conn, updates)

            dtc_stored, dtc_dead = _store_isolated(conn, screened.dtcs, store_dtcs)
            _, status_dead = _store_isolated(conn, screened.statuses, store_statuses)
            updates_stored, update_dead = _store_isolated(conn, screened.updates, store_updates)
            flush_dead += dtc_dead + status_dead + update_dead
            self._store_dead_letters(conn, flush_dead)
        dtcs_kept = len(screened.dtcs) - len(dtc_dead)
        return WriteResult(
            batches=sum(r.batches for r in results),
            rows=sum(r.rows for r in results),
            samples=sum(r.samples for r in results),
            duplicates=prepared.duplicates + sum(r.duplicates for r in results),
            dead_letters=len(flush_dead) + sum(r.dead_letters for r in results),
            dead_reasons=tuple(d.reason for d in flush_dead)
            + tuple(x for r in results for x in r.dead_reasons),
            committed_at_ns=time.time_ns(),
            newest_ts_us=tuple(x for r in results for x in r.newest_ts_us),
            dtc_reports=dtc_stored,
            dtc_duplicates=dtcs_kept - dtc_stored,
            update_reports=updates_stored,
        )

    def _write_screened(
        self,
        conn: psycopg.Connection,
        prepared: PreparedFlush,
        screened: _Screened,
        laps: _Laps | None = None,
    ) -> WriteResult:
        laps = laps or _Laps()
        dead = [*prepared.dead, *screened.dead]
        keep = screened.keep.copy()
        candidates = int(np.count_nonzero(keep))
        params = prepared.params or storage_params(prepared)
        if candidates:
            keep &= self._claim_new(conn, params, keep)
            laps.lap("ledger")
        duplicates = prepared.duplicates + candidates - int(np.count_nonzero(keep))
        new = prepared if keep.all() else prepared.only_batches(keep)
        dead.extend(new.quarantine.values())
        samples = 0
        new_params = (new.params or storage_params(new)) if new.accepted else None
        seen = dict(zip(new_params.latest_vehicles, new_params.latest_ts, strict=True)) if new_params else {}
        _upsert_vehicles(conn, _seen_at(screened.dtcs, screened.statuses, seen, screened.updates))
        laps.lap("vehicles")
        if new_params is not None:
            samples = sum(new_params.n_samples)  # counted once, while preparing
            if self._row_writer == "copy":
                copy_rows(conn, new.copy_data)
            else:
                insert_rows(conn, new.block)
            laps.lap("rows")
            p = new_params
            conn.execute(
                _LATEST_SQL, (p.latest_vehicles, p.latest_ts_iso, p.latest_signals_json, p.latest_oldest_iso)
            )
            laps.lap("latest")
        dtc_stored = _store_dtcs(conn, screened.dtcs)
        _store_statuses(conn, screened.statuses)
        updates_stored = _store_updates(conn, screened.updates)
        laps.lap("dtc_status_update")
        self._store_dead_letters(conn, dead)
        laps.lap("dead_letters")
        return WriteResult(
            batches=len(new.accepted),
            rows=new.block.n_rows,
            samples=samples,
            duplicates=duplicates,
            dead_letters=len(dead),
            dead_reasons=tuple(d.reason for d in dead),
            committed_at_ns=time.time_ns(),
            newest_ts_us=tuple(int(a.batch.ts_ns[-1]) // 1000 for a in new.accepted),
            dtc_reports=dtc_stored,
            dtc_duplicates=len(screened.dtcs) - dtc_stored,
            update_reports=updates_stored,
        )

    def _screen(
        self, conn: psycopg.Connection, prepared: PreparedFlush, laps: _Laps | None = None
    ) -> _Screened:
        """The unknown-vehicle policy, applied alike to every message kind: under `reject`, what an
        unregistered vehicle sent (telemetry, DTC report or status) is dead-lettered."""
        dtcs, statuses, updates = list(prepared.dtcs), list(prepared.statuses), list(prepared.updates)
        if self._unknown_vehicles != "reject":
            return _Screened(np.ones(len(prepared.accepted), dtype=bool), dtcs, statuses, [], updates)
        senders = [(a.batch.vehicle_id, a.envelope) for a in prepared.accepted]
        senders += [(d.report.vehicle_id, d.envelope) for d in dtcs]
        senders += [(st.vehicle_id, st.envelope) for st in statuses]
        senders += [(u.report.vehicle_id, u.envelope) for u in updates]
        known = _known_vehicles(conn, {v for v, _ in senders}) if senders else set()
        if laps is not None:
            laps.lap("screen")
        reason = "vehicle is not registered and the policy is reject"
        dead = [
            dead_letter(envelope, DeadLetterReason.UNKNOWN_VEHICLE, reason)
            for v, envelope in senders
            if v not in known
        ]
        return _Screened(
            np.array([a.batch.vehicle_id in known for a in prepared.accepted], dtype=bool),
            [d for d in dtcs if d.report.vehicle_id in known],
            [st for st in statuses if st.vehicle_id in known],
            dead,
            [u for u in updates if u.report.vehicle_id in known],
        )

    def _claim_new(
        self, conn: psycopg.Connection, params: StorageParams, candidates: np.ndarray
    ) -> np.ndarray:
        """Insert the ledger rows of the candidate batches; True for each batch not stored before."""
        order = [i for i in params.ledger_order if candidates[i]]
        rows = conn.execute(
            _CLAIM_SQL,
            tuple(
                [column[i] for i in order]
                for column in (
                    params.vehicle_ids,
                    params.seqs,
                    params.first_ts_us,
                    params.last_ts_us,
                    params.n_rows,
                    params.n_samples,
                )
            ),
        ).fetchall()
        fresh = set(rows)
        keys = zip(params.vehicle_ids, params.seqs, strict=True)
        return np.array([key in fresh for key in keys], dtype=bool) & candidates

    def _store_dead_letters(self, conn: psycopg.Connection, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        with conn.cursor() as cur:
            cur.executemany(
                _DEAD_SQL,
                [
                    (
                        _ts(d.received_at_ns),
                        d.topic,
                        d.vehicle_id,
                        d.reason.value,  # psycopg would store an Enum member's name
                        d.detail,
                        d.payload,
                        d.retained,
                    )
                    for d in dead
                ],
            )


def _in_savepoint(
    conn: psycopg.Connection, write: Callable[..., T], *args: Any
) -> tuple[T | None, str | None]:
    """Run `write(*args)` in a savepoint: (its result, None), or (None, the first line of the error)
    when the database refuses the data. A lost connection (OperationalError) still raises."""
    try:
        with conn.transaction():
            return write(*args), None
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        return None, str(exc).splitlines()[0][:500]


def _store_isolated(
    conn: psycopg.Connection, items: list[M], store: Callable[[list[M]], int]
) -> tuple[int, list[DeadLetter]]:
    """Store `items` together in a savepoint; if the database refuses, store each alone, so one
    refused message is dead-lettered (`storage_rejected`) without the others. Returns what `store`
    counted and the dead letters."""
    if not items:
        return 0, []
    stored, detail = _in_savepoint(conn, store, items)
    if stored is not None:
        return stored, []
    total, dead = 0, []
    for item in items:
        one, detail = _in_savepoint(conn, store, [item])
        if one is None:
            dead.append(dead_letter(item.envelope, DeadLetterReason.STORAGE_REJECTED, detail or ""))
        else:
            total += one
    return total, dead


def _store_dtcs(conn: psycopg.Connection, dtcs: list[AcceptedDtc]) -> int:
    """Insert the reports (their vehicles are upserted before); how many were new."""
    if not dtcs:
        return 0
    return max(conn.execute(_DTC_SQL, (dtc_document(dtcs),)).rowcount, 0)


def _store_updates(conn: psycopg.Connection, updates: list[AcceptedUpdate]) -> int:
    """Insert the update reports (their vehicles are upserted before); how many were new."""
    if not updates:
        return 0
    return max(conn.execute(_UPDATE_SQL, (update_document(updates),)).rowcount, 0)


def _store_statuses(conn: psycopg.Connection, statuses: list[AcceptedStatus]) -> None:
    if any(s.envelope.retained for s in statuses):
        conn.execute(_STATUS_REPLAY_SQL, (status_document(statuses, retained=True),))
    if any(not s.envelope.retained for s in statuses):
        conn.execute(_STATUS_SQL, (status_document(statuses, retained=False),))
    for replay in (True, False):
        reporting = [s for s in statuses if s.envelope.retained == replay and s.report.software is not None]
        if not reporting:
            continue
        claim = {"doc": software_document(reporting, retained=replay), "replay": replay}
        fresh = {row[0] for row in conn.execute(_SOFTWARE_CLAIM_SQL, claim).fetchall()}
        params = {"doc": software_document([s for s in reporting if s.vehicle_id in fresh], retained=replay)}
        if fresh:
            for statement in (_SOFTWARE_HISTORY_SQL, _SOFTWARE_REMOVED_SQL, _SOFTWARE_SQL):
                conn.execute(statement, params)


def _seen_at(
    dtcs: list[AcceptedDtc],
    statuses: list[AcceptedStatus],
    seen: Mapping[str, dt.datetime | None],
    updates: Sequence[AcceptedUpdate] = (),
) -> dict[str, dt.datetime | None]:
    """`seen` extended with the vehicles of DTC reports (newest report time wins) and of statuses
    and update reports (registered, but with no time: they leave `last_seen_at` to telemetry and
    DTCs)."""
    out = dict(seen)
    for d in dtcs:
        at = _ts(d.report.ts_us * 1000)
        before = out.get(d.report.vehicle_id)
        out[d.report.vehicle_id] = at if before is None else max(before, at)
    for status in statuses:
        out.setdefault(status.vehicle_id, None)
    for update in updates:
        out.setdefault(update.report.vehicle_id, None)
    return out


def _upsert_vehicles(conn: psycopg.Connection, seen: dict[str, dt.datetime | None]) -> None:
    """Register (or touch) every vehicle of the flush in one statement, in id order, so that
    concurrent workers lock `vehicles` rows in one order and cannot deadlock."""
    if seen:
        ids = sorted(seen)
        conn.execute(_VEHICLES_SQL, (ids, [seen[v] for v in ids]))


def _known_vehicles(conn: psycopg.Connection, ids: set[str]) -> set[str]:
    rows = conn.execute("SELECT vehicle_id FROM vehicles WHERE vehicle_id = ANY(%s)", (sorted(ids),))
    return {r[0] for r in rows}


__all__ = ["COPY_SQL", "StorageUnavailable", "TelemetryStore", "WriteResult"]
