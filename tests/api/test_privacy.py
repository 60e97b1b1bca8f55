"""An owner's erasure request and retention per data class (`api.privacy`), on a real PostgreSQL:
after an erasure no table holds the owner's name, e-mail, phone or id, their vehicles' positions
are gone from the raw rows, the last-known state and the aggregate, and the hazard evidence keeps
its counts while no pseudonym computed from the vehicle id finds it; another owner's data is
untouched. Retention removes only what is older than its class keeps."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from analytics import hazard_store
from api.privacy.erasure import erase_owner
from api.privacy.retention import apply_retention
from contract.timestamps import ns_of
from fleet.cli import app
from tests.conftest import migrated_fresh_database
from tests.remedies.conftest import raise_alarm, seed_owner

pytestmark = pytest.mark.postgres
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ERIKA = {"name": "Erika Mustermann", "email": "erika.mustermann@example.org", "phone": "+4917099988877"}
POS = {"V-ERIKA": (48.1371234, 11.5754321), "V-OTTO": (52.5201111, 13.4052222)}


def _seed(conn: psycopg.Connection) -> None:
    seed_owner(conn, "O-ERIKA", ("V-ERIKA",), **ERIKA)
    seed_owner(conn, "O-OTTO", ("V-OTTO",), name="Otto Normal", email="otto@example.org")
    conn.execute("SELECT fleet_ensure_partitions(%s::date - 1, %s::date + 1)", (NOW, NOW))
    key = hazard_store.secret(conn)
    (site,) = conn.execute(  # type: ignore[misc]
        "INSERT INTO hazard_sites (kind, lat, lon, state, events, vehicles) VALUES"
        " ('pothole', 48.1, 11.5, 'confirmed', 2, 2) RETURNING site_id"
    ).fetchone()
    for vid, (lat, lon) in POS.items():
        for k in range(5):
            conn.execute(
                "INSERT INTO telemetry (ts, vehicle_id, speed_kmh, latitude_deg, longitude_deg, altitude_m)"
                " VALUES (%s, %s, 50, %s, %s, 520)",
                (NOW - dt.timedelta(seconds=10 * k), vid, lat + k * 1e-4, lon),
            )
        signals = {
            "Vehicle.Speed": {"value": 50.0, "ts": NOW.isoformat()},
            "Vehicle.CurrentLocation.Latitude": {"value": lat, "ts": NOW.isoformat()},
            "Vehicle.CurrentLocation.Longitude": {"value": lon, "ts": NOW.isoformat()},
        }
        conn.execute(
            "INSERT INTO vehicle_latest (vehicle_id, ts, signals) VALUES (%s, %s, %s)",
            (vid, NOW, Jsonb(signals)),
        )
        conn.execute(
            "INSERT INTO telemetry_10m (vehicle_id, bucket, n_rows, speed_n, latitude_ts, latitude_deg,"
            " longitude_ts, longitude_deg) VALUES (%s, %s, 5, 5, %s, %s, %s, %s)",
            (vid, NOW.replace(minute=0, second=0), NOW, lat, NOW, lon),
        )
        conn.execute(
            "INSERT INTO dead_letters (topic, vehicle_id, reason, detail, payload)"
            " VALUES (%s, %s, 'bad', '', %s)",
            (f"fleet/v1/{vid}/telemetry", vid, f"lat={lat}".encode()),
        )
        vkey = int(hazard_store.vehicle_keys(key, [vid], np.array([lat]), np.array([lon]))[0])
        cell = int(hazard_store.cells(np.array([lat]), np.array([lon]))[0])
        conn.execute(
            "INSERT INTO hazard_events (vehicle_key, kind, ts, site_id, cell)"
            " VALUES (%s, 'pothole', %s, %s, %s)",
            (vkey, NOW, site, cell),
        )
        visit = int(hazard_store.visit_keys(key, [vid], np.array([site]), np.array([ns_of(NOW)]))[0])
        conn.execute(
            "INSERT INTO hazard_passes (site_id, visit_key, ts, with_event) VALUES (%s, %s, %s, true)",
            (site, visit, NOW),
        )
        alarm = raise_alarm(conn, vid)
        (nid,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO notifications (vehicle_id, alarm_id, remedy_id, facts) VALUES (%s, %s, 1, '{}')"
            " RETURNING notification_id",
            (vid, alarm),
        ).fetchone()
        owner = "O-ERIKA" if vid == "V-ERIKA" else "O-OTTO"
        conn.execute(
            "INSERT INTO notification_deliveries (notification_id, channel, state, owner_id, sent_at,"
            " message) VALUES (%s, 'email', 'sent', %s, %s, %s)",
            (nid, owner, NOW, Jsonb({"subject": f"Hello {owner}", "to_vehicle": vid})),
        )
    conn.commit()


def _tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables"
        " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()]  # fmt: skip


def _rows_mentioning(conn: psycopg.Connection, needle: str) -> list[str]:
    return [t for t in _tables(conn) if conn.execute(f"SELECT count(*) FROM {t} x WHERE x::text ILIKE %s",
                                                       (f"%{needle}%",)).fetchone()[0]]  # type: ignore[index]  # fmt: skip


def test_an_erasure_leaves_nothing_personal_and_keeps_the_hazard_counts(pg_server_url: str) -> None:
    url = migrated_fresh_database(pg_server_url, "privacy_erasure")
    with psycopg.connect(url) as conn:
        _seed(conn)
        assert _rows_mentioning(conn, ERIKA["email"])  # the scan finds what is there
        events_before = conn.execute(
            "SELECT count(*), count(DISTINCT vehicle_key) FROM hazard_events"
        ).fetchone()
        report = erase_owner(conn, "O-ERIKA", by="dpo@fleet", reason="ticket 42")
        assert (report.vehicles, report.telemetry_rows, report.latest_states, report.dead_letters) == (
            1,
            5,
            1,
            1,
        )
        assert (report.hazard_events_unlinked, report.hazard_passes_unlinked, report.notification_texts) == (
            1,
            1,
            1,
        )
        for needle in (*ERIKA.values(), "O-ERIKA"):
            assert _rows_mentioning(conn, needle) == [], needle
        assert _rows_mentioning(conn, f"{POS['V-ERIKA'][0]:.5f}") == []  # no position of hers anywhere
        assert _rows_mentioning(conn, "otto@example.org")  # another owner is untouched
        assert _rows_mentioning(conn, f"{POS['V-OTTO'][0]:.5f}")
        erika = conn.execute(
            "SELECT count(*) FILTER (WHERE latitude_deg IS NOT NULL OR longitude_deg IS NOT NULL"
            " OR altitude_m IS NOT NULL), count(speed_kmh) FROM telemetry WHERE vehicle_id = 'V-ERIKA'"
        ).fetchone()
        assert erika == (0, 5)  # the trajectory is gone, the diagnostics stay
        (latest,) = conn.execute("SELECT signals FROM vehicle_latest WHERE vehicle_id = 'V-ERIKA'").fetchone()  # type: ignore[misc]
        assert set(latest) == {"Vehicle.Speed"}
        assert (
            conn.execute("SELECT count(*), count(DISTINCT vehicle_key) FROM hazard_events").fetchone()
            == events_before
        )
        key = hazard_store.secret(conn)
        lat, lon = POS["V-ERIKA"]
        mine = int(hazard_store.vehicle_keys(key, ["V-ERIKA"], np.array([lat]), np.array([lon]))[0])
        assert conn.execute(
            "SELECT count(*) FROM hazard_events WHERE vehicle_key = %s", (mine,)
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM hazard_passes").fetchone() == (2,)
        ref, by = conn.execute("SELECT owner_ref, requested_by FROM erasures").fetchone()  # type: ignore[misc]
        assert ref == hashlib.sha256(b"O-ERIKA").hexdigest() and by == "dpo@fleet"
        with pytest.raises(LookupError):
            erase_owner(conn, "O-ERIKA", by="dpo@fleet", reason="again")
    again = CliRunner().invoke(
        app, ["privacy", "erase-owner", "O-ERIKA", "--by", "dpo"], env={"FLEET_DATABASE_URL": url}
    )
    assert again.exit_code == 2 and "no owner" in again.output


def test_retention_removes_only_what_its_class_keeps_too_long(pg_server_url: str) -> None:
    url = migrated_fresh_database(pg_server_url, "privacy_retention")
    with psycopg.connect(url) as conn:
        _seed(conn)
        conn.execute(
            "UPDATE dead_letters SET received_at = %s WHERE vehicle_id = 'V-ERIKA'",
            (NOW - dt.timedelta(days=31),),
        )
        conn.execute(
            "UPDATE notification_deliveries SET sent_at = %s WHERE owner_id = 'O-OTTO'",
            (NOW - dt.timedelta(days=400),),
        )
        conn.execute("UPDATE hazard_events SET ts = %s WHERE cell = (SELECT min(cell) FROM hazard_events)",
                     (NOW - dt.timedelta(days=366),))  # fmt: skip
        removed = apply_retention(conn, now=NOW)
        assert removed == {
            "dead_letters": 1,
            "notification_texts": 1,
            "hazard_events": 1,
            "hazard_passes": 0,
            "trips": 0,
        }
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (1,)
        assert conn.execute(
            "SELECT owner_id FROM notification_deliveries WHERE message IS NULL"
        ).fetchall() == [("O-OTTO",)]
        assert apply_retention(conn, now=NOW) == {k: 0 for k in removed}  # nothing more the second time
