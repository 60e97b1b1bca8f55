"""The read audit log against a real PostgreSQL: every answer with vehicle data is recorded with
who read it, the path and the vehicles (never a vehicle the caller was refused), written in batches
off the request path, kept across a database outage, and readable by admins only."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from api import create_app
from api.read_audit import ReadAudit

UNREACHABLE_URL = "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=1"


@pytest.mark.postgres
def test_reads_are_recorded_and_admins_read_the_log(seeded_url: str, tokens: dict[str, str]) -> None:
    north = {"Authorization": f"Bearer {tokens['north']}"}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with psycopg.connect(seeded_url) as conn:
        conn.execute("TRUNCATE api_read_audit")
    with TestClient(create_app(seeded_url)) as client:
        assert client.get("/v1/vehicles", headers=north).status_code == 200
        assert client.get("/v1/vehicles/VIN-N1/latest", headers=north).status_code == 200
        assert client.get("/v1/vehicles/VIN-S1/latest", headers=north).status_code == 404  # not recorded
        assert client.get("/v1/vehicles/VIN-N1/dtc", headers=north).status_code == 200
        client.app.state.read_audit.flush()  # type: ignore[attr-defined]
        log = client.get("/v1/audit/reads", headers=admin).json()["items"]
        assert [(e["principal"], e["path"], e["vehicle_ids"]) for e in log] == [
            ("service_centre:north-desk", "/v1/vehicles/VIN-N1/dtc", ["VIN-N1"]),
            ("service_centre:north-desk", "/v1/vehicles/VIN-N1/latest", ["VIN-N1"]),
            ("service_centre:north-desk", "/v1/vehicles", ["VIN-N1", "VIN-N2", "VIN-N3"]),
        ]
        n2 = client.get("/v1/audit/reads", params={"vehicle_id": "VIN-N2"}, headers=admin).json()["items"]
        assert [e["path"] for e in n2] == ["/v1/vehicles"]
        assert not any("VIN-S1" in e["vehicle_ids"] for e in log)
        by = client.get("/v1/audit/reads", params={"reader": "admin:ops"}, headers=admin).json()["items"]
        assert by == []  # reading the log is not a read of vehicle data
        page = client.get("/v1/audit/reads", params={"limit": 2}, headers=admin).json()
        rest = client.get(
            "/v1/audit/reads", params={"limit": 2, "cursor": page["next_cursor"]}, headers=admin
        )
        assert [e["audit_id"] for e in page["items"] + rest.json()["items"]] == [e["audit_id"] for e in log]
        for caller in ("north", "south"):
            r = client.get("/v1/audit/reads", headers={"Authorization": f"Bearer {tokens[caller]}"})
            assert r.status_code == 403
        client.get("/v1/vehicles/VIN-N2/status", headers=north)
    # Shutting the app down writes what is still pending.
    with psycopg.connect(seeded_url) as conn:
        last = conn.execute("SELECT path FROM api_read_audit ORDER BY audit_id DESC LIMIT 1").fetchone()
    assert last == ("/v1/vehicles/VIN-N2/status",)


@pytest.mark.postgres
def test_entries_survive_an_unreachable_database_until_the_next_flush(seeded_url: str) -> None:
    down = ReadAudit(UNREACHABLE_URL)
    down.record("engineer:e", "/v1/vehicles", ["B", "A", "A"])
    down.record("engineer:e", "/v1/vehicles", [])  # nothing read: nothing recorded
    assert down.flush() == 0 and down.flush() == 0  # kept, not lost
    down._url = seeded_url  # the database is back
    assert down.flush() == 1
    with psycopg.connect(seeded_url) as conn:
        row = conn.execute(
            "SELECT principal, vehicle_ids FROM api_read_audit ORDER BY audit_id DESC LIMIT 1"
        ).fetchone()
    assert row == ("engineer:e", ["A", "B"])
    down.close()


def test_a_full_buffer_drops_the_oldest_and_counts_them() -> None:
    audit = ReadAudit(UNREACHABLE_URL, max_pending=2)
    for i in range(5):
        audit.record("admin:a", f"/v1/vehicles/V{i}/latest", [f"V{i}"])
    assert audit.dropped == 3
    assert [e[2] for e in audit._pending] == ["/v1/vehicles/V3/latest", "/v1/vehicles/V4/latest"]
