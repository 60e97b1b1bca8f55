"""The campaign controller against a real PostgreSQL: approval is the gate, waves open one after
the other once their vehicles succeeded and soaked, install failures pause the campaign at the
error threshold, a person resumes it, late joiners go into a later wave, and every change is
recorded."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from ota.controller import Offer, act, record_report, step_campaigns
from ota.rollout import Event, Status, TransitionError
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres
T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
N = 300


@pytest.fixture
def url(pg_server_url: str) -> str:
    url = migrated_fresh_database(pg_server_url, "campaigns")
    with psycopg.connect(url) as conn:
        for i in range(N):
            vid = f"V{i:04d}"
            conn.execute("INSERT INTO vehicles (vehicle_id) VALUES (%s)", (vid,))
            conn.execute(
                "INSERT INTO vehicle_software (vehicle_id, ecu, software_version, reported_at)"
                " VALUES (%s, 'ECM', %s, now())",
                (vid, "4.2.0" if i % 3 else "4.1.2"),
            )
        conn.execute(
            "INSERT INTO campaigns (name, ecu, from_version, to_version, target_filter, status, soak_s)"
            " VALUES ('ECM fix', 'ECM', '4.2.0', '4.2.1', %s, 'proposed', 600)",
            (json.dumps({"ecu": "ECM", "software_version": "4.2.0"}),),
        )
    return url


def q(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def step(url: str, now: dt.datetime, offers: list[Offer]) -> dict:
    with psycopg.connect(url) as conn:
        return step_campaigns(conn, offers.append, now=now).as_dict()


def report_all(url: str, state: str, at: dt.datetime, wave: int, limit: int | None = None) -> list[str]:
    sql = "SELECT vehicle_id FROM campaign_vehicles WHERE wave = %s AND state = 'offered' ORDER BY vehicle_id"
    vids = [r[0] for r in q(url, sql, wave)][:limit]
    with psycopg.connect(url) as conn:
        for vid in vids:
            assert record_report(conn, 1, vid, state, at)
    return vids


def test_a_campaign_rolls_out_in_waves_and_pauses_on_failures(url: str) -> None:
    offers: list[Offer] = []
    assert step(url, T0, offers)["campaigns"] == 0  # proposed: nothing happens before approval
    with psycopg.connect(url) as conn:
        assert act(conn, 1, Event.APPROVE, "alice") is Status.APPROVED
        with pytest.raises(TransitionError):
            act(conn, 1, Event.RESUME, "alice")
    first = step(url, T0, offers)
    assert first["started"] == [1] and first["joined"] == 200  # the 200 vehicles on ECM 4.2.0
    sizes = dict(q(url, "SELECT wave, count(*) FROM campaign_vehicles GROUP BY wave"))
    assert sum(sizes.values()) == 200 and sizes.get(0, 0) < sizes[3]
    assert len(offers) == sizes.get(0, 0) and all(o.to_version == "4.2.1" for o in offers)
    # Wave 1 (index 0): all commit; the next wave opens only after the soak.
    report_all(url, "committed", T0 + dt.timedelta(minutes=5), 0)
    assert step(url, T0 + dt.timedelta(minutes=10), offers)["waves_opened"] == []
    assert step(url, T0 + dt.timedelta(minutes=16), offers)["waves_opened"] == [(1, 1)]
    # Wave 2: enough roll back to reach the 5% error threshold: the campaign pauses.
    step(url, T0 + dt.timedelta(minutes=17), offers)
    n2 = sizes[1]
    bad = report_all(url, "rolled_back", T0 + dt.timedelta(minutes=20), 1, limit=max(1, -(-5 * n2 // 100)))
    paused = step(url, T0 + dt.timedelta(minutes=21), offers)["paused"]
    assert paused and paused[0][0] == 1 and "error threshold" in paused[0][1]
    assert q(url, "SELECT status FROM campaigns") == [("paused",)]
    # The server believes the vehicles' reports: those that rolled back are on the old version.
    assert {r[0] for r in q(url, "SELECT state FROM campaign_vehicles WHERE vehicle_id = ANY(%s)", bad)} == {
        "rolled_back"}  # fmt: skip
    # A late joiner (a vehicle that moves onto 4.2.0) goes into a later wave, never the open one.
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE vehicle_software SET software_version = '4.2.0' WHERE vehicle_id = 'V0000'")
        assert act(conn, 1, Event.RESUME, "alice", "fixed the rollback cause") is Status.RUNNING
    step(url, T0 + dt.timedelta(minutes=30), offers)
    ((joined_wave,),) = q(url, "SELECT wave FROM campaign_vehicles WHERE vehicle_id = 'V0000'")
    assert joined_wave >= 2
    history = q(url, "SELECT status, actor FROM campaign_history ORDER BY at")
    assert history[0] == ("approved", "alice") and ("paused", "controller") in history
    assert history[-1][0] == "running"


def test_a_campaign_finishes_after_its_last_wave_and_cancel_is_final(url: str) -> None:
    offers: list[Offer] = []
    with psycopg.connect(url) as conn:
        act(conn, 1, Event.APPROVE, "alice")
    now = T0
    for wave in range(4):
        step(url, now, offers)
        report_all(url, "committed", now, wave)
        now += dt.timedelta(minutes=11)
        step(url, now, offers)
    assert q(url, "SELECT status FROM campaigns") == [("finished",)]
    assert len(offers) == 200 and len({o.vehicle_id for o in offers}) == 200
    with psycopg.connect(url) as conn, pytest.raises(TransitionError):
        act(conn, 1, Event.CANCEL, "alice")
