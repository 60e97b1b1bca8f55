"""The six fleet queries against a direct computation over the raw rows, on plain PostgreSQL (native
mode: the rollup table refreshed from the pending ranges). Data goes through ingest's real write
path; scenarios are seeded (tests/api/fleet_scenario.py). Then a late backlog lands in buckets
already aggregated, and the answers must equal the reference again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from api.fleet_queries import FleetAnswer, FleetQuery, UnknownFleet, run_query
from ingest import TelemetryStore
from ingest.schema.migrate import migrate
from tests.api import fleet_scenario as fs

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def fleet_db(pg_server) -> str:  # noqa: ANN001
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fleet_queries_test")
        conn.execute("CREATE DATABASE fleet_queries_test")
    url = pg_server.get_uri("fleet_queries_test")
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url


@pytest.fixture
def conn(fleet_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fleet_db, autocommit=True) as c:
        c.execute("TRUNCATE vehicles, fleets, vehicle_models, ingest_batches, telemetry_10m_pending CASCADE")
        c.execute("TRUNCATE telemetry, telemetry_10m")
        yield c


def as_tuples(answer: FleetAnswer) -> list[tuple]:
    out: list[tuple] = []
    for r in answer.rows:
        match answer.query:
            case FleetQuery.LAST_LOCATION:
                out.append(
                    (r.vehicle_id, r.latitude_deg, _us(r.latitude_ts), r.longitude_deg, _us(r.longitude_ts))
                )
            case FleetQuery.LOW_FUEL:
                out.append((r.vehicle_id, r.signal, r.level_pct, _us(r.ts)))
            case FleetQuery.STATIONARY:
                out.append((r.vehicle_id, r.speed_avg_kmh))
            case FleetQuery.LONG_DRIVING | FleetQuery.LONG_DAILY:
                out.append((r.vehicle_id, r.driving_buckets))
            case FleetQuery.DAILY_ACTIVITY:
                out.append((_us(r.day), r.model_id, r.vehicles_driving, r.driving_buckets))
    return out


def _us(t: dt.datetime | None) -> int | None:
    return None if t is None else (t - fs.EPOCH) // fs.US


def untils(scenario: fs.Scenario) -> list[dt.datetime | None]:
    end = scenario.end
    edge = fs.EPOCH + (_us(end) - _us(end) % 600_000_000) * fs.US  # type: ignore[operator]
    return [
        None,  # now: the last-state table answers last-location and low-fuel
        end - dt.timedelta(hours=2, seconds=17, microseconds=5),  # past, not on an edge
        edge - dt.timedelta(hours=5),  # exactly on a bucket edge
        end + dt.timedelta(minutes=3),  # after the newest data, not on an edge
    ]


def check_all(conn: psycopg.Connection, scenario: fs.Scenario, *, days: int = 2) -> int:
    """Every query for every `until` equals the reference; returns the pending ranges refreshed."""
    members = scenario.fleet_vehicles["fq-main"]
    raw = fs.raw_rows(conn, [v for v, _ in members])
    refreshed = 0
    for until in untils(scenario):
        for query in FleetQuery:
            answer = run_query(conn, query, "fq-main", until=until, days=days)
            refreshed += answer.refreshed
            expected = fs.reference(query.value, members, raw, answer.window.until, days)
            got = as_tuples(answer)
            if query is FleetQuery.LOW_FUEL:  # the reference has no models: compare what it has
                assert [r.model_id for r in answer.rows] == [dict(members)[r.vehicle_id] for r in answer.rows]
            assert got == expected, (query, until)
    return refreshed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fleet_queries_equal_the_raw_rows_before_and_after_late_data(
    conn: psycopg.Connection, fleet_db: str, seed: int
) -> None:
    scenario = fs.make_scenario(seed)
    fs.register(conn, scenario)
    store = TelemetryStore(fleet_db)
    try:
        store.ensure_partitions()
        fs.deliver(store, scenario.on_time)
        assert check_all(conn, scenario) > 0  # the first query aggregated what ingest wrote
        assert conn.execute("SELECT count(*) FROM telemetry_10m_pending").fetchone() == (0,)
        answers = [as_tuples(run_query(conn, q, "fq-main", until=scenario.end)) for q in FleetQuery]

        fs.deliver(store, scenario.late)  # the backlog, into buckets aggregated already
        pending = conn.execute("SELECT count(*) FROM telemetry_10m_pending").fetchone()
        assert pending is not None and pending[0] == len(scenario.late)
        assert check_all(conn, scenario) > 0
        after = [as_tuples(run_query(conn, q, "fq-main", until=scenario.end)) for q in FleetQuery]
    finally:
        store.close()
    assert after != answers  # the backlog changed some answer, and the reference agreed with it


def test_without_refresh_late_data_is_reported_stale_and_maintain_catches_up(
    conn: psycopg.Connection, fleet_db: str
) -> None:
    scenario = fs.make_scenario(7, vehicles=4, hours=5)
    fs.register(conn, scenario)
    store = TelemetryStore(fleet_db)
    try:
        store.ensure_partitions()
        fs.deliver(store, scenario.on_time + scenario.late)
        stale = run_query(conn, FleetQuery.LONG_DRIVING, "fq-main", until=scenario.end, refresh=False)
        assert stale.refreshed == -1
        summary = store.maintain()  # fleet_maintain() refreshes the rollup in native mode
    finally:
        store.close()
    assert "10-minute: " in summary
    fresh = run_query(conn, FleetQuery.LONG_DRIVING, "fq-main", until=scenario.end, refresh=False)
    assert fresh.refreshed == 0
    check_all(conn, scenario)


def test_a_fleet_out_of_scope_looks_like_one_that_does_not_exist(
    conn: psycopg.Connection, fleet_db: str
) -> None:
    scenario = fs.make_scenario(5, vehicles=4, hours=1)
    fs.register(conn, scenario)
    for query in FleetQuery:
        for fleet, allowed in (("fq-main", ["fq-other"]), ("nope", None), ("nope", ["nope"])):
            with pytest.raises(UnknownFleet):
                run_query(conn, query, fleet, only_fleet_ids=allowed)
        run_query(conn, query, "fq-main", only_fleet_ids=["fq-other", "fq-main"])


def test_data_stored_before_the_migration_is_aggregated(pg_server) -> None:  # noqa: ANN001
    """0018 marks each vehicle's existing time range pending, so old data is counted too."""
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS fleet_queries_upgrade")
        c.execute("CREATE DATABASE fleet_queries_upgrade")
    url = pg_server.get_uri("fleet_queries_upgrade")
    with psycopg.connect(url, autocommit=True) as c:
        migrate(c)
        c.autocommit = True  # migrate() leaves it off
        c.execute("DELETE FROM schema_migrations WHERE version = 18")  # as if 0018 were new
        c.execute("DROP TABLE telemetry_10m, telemetry_10m_pending")
        c.execute("ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scope_check")
        c.execute("UPDATE api_tokens SET fleet_ids = NULL")
        c.execute("INSERT INTO fleets (fleet_id, name) VALUES ('old', 'old')")
        c.execute("INSERT INTO vehicles (vehicle_id, fleet_id) VALUES ('OLD-1', 'old')")
        c.execute(
            "INSERT INTO telemetry (ts, vehicle_id, speed_kmh) SELECT now() - make_interval(secs => 10 * g),"
            " 'OLD-1', 50 FROM generate_series(1, 1800) g"
        )
        migrate(c)
        answer = run_query(c, FleetQuery.LONG_DRIVING, "old")  # not in autocommit: it commits
    assert answer.refreshed == 1
    assert [r.vehicle_id for r in answer.rows] == ["OLD-1"]
    assert answer.rows[0].driving_buckets == 24  # 5 hours at 50 km/h: every bucket of the 4 hours
