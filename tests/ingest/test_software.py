"""The software inventory a vehicle reports in its check-in: kept per ECU as the newest report says,
every change in the history, the agent's own version apart, and a bad inventory dead-lettered."""

from __future__ import annotations

import dataclasses
import json
import time

import psycopg
import pytest

from contract import topics
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage

pytestmark = pytest.mark.postgres
MS = 1_000_000


def _check_in(
    vid: str, at_ns: int, software: object, agent: str = "0.2.0", *, retained: bool = False
) -> Envelope:
    doc = {"state": "online", "vehicle_id": vid, "agent_version": agent, "software": software}
    envelope = Envelope(topics.topic_for(vid, topics.STATUS), json.dumps(doc).encode(), at_ns)
    return dataclasses.replace(envelope, retained=True) if retained else envelope


def _inventory(pg_url: str, vid: str) -> tuple[list[tuple], list[tuple], str]:
    with psycopg.connect(pg_url) as conn:
        now = conn.execute(
            "SELECT ecu, software_version, hardware_id FROM vehicle_software"
            " WHERE vehicle_id = %s ORDER BY ecu",
            (vid,),
        ).fetchall()
        history = conn.execute(
            "SELECT ecu, software_version FROM software_history"
            " WHERE vehicle_id = %s ORDER BY reported_at, ecu",
            (vid,),
        ).fetchall()
        (agent,) = conn.execute(
            "SELECT agent_version FROM vehicle_status WHERE vehicle_id = %s", (vid,)
        ).fetchone()
    return now, history, agent


def test_the_newest_inventory_wins_and_every_change_is_in_the_history(pg_url: str) -> None:
    vid = f"SW-{time.time_ns() % 10**9}"
    t0 = time.time_ns()
    v1 = [{"ecu": "ECM", "version": "4.2.0", "hardware_id": "ecm-b12"}, {"ecu": "BCM", "version": "1.0"}]
    v2 = [{"ecu": "ECM", "version": "4.2.1", "hardware_id": "ecm-b12"}]  # patched, and the BCM left
    store = TelemetryStore(pg_url)
    try:
        store.write(triage([_check_in(vid, t0, v1)]))
        store.write(triage([_check_in(vid, t0 + MS, v1)]))  # the same again: no history entry
        store.write(triage([_check_in(vid, t0 + 2 * MS, v2, agent="0.3.0")]))
        store.write(triage([_check_in(vid, t0 + MS // 2, v1)]))  # older than what is stored
        store.write(triage([_check_in(vid, t0 + 3 * MS, v1, retained=True)]))  # a retained replay
        now, history, agent = _inventory(pg_url, vid)
    finally:
        store.close()
    assert now == [("ECM", "4.2.1", "ecm-b12")]
    assert history == [("BCM", "1.0"), ("ECM", "4.2.0"), ("ECM", "4.2.1")]
    assert agent == "0.3.0"  # the agent's own version, in a column of its own


def test_a_bare_state_keeps_the_inventory_and_a_bad_one_is_dead_lettered(pg_url: str) -> None:
    vid = f"SWBAD-{time.time_ns() % 10**9}"
    t0 = time.time_ns()
    good = [{"ecu": "ECM", "version": "4.2.0"}]
    offline = Envelope(topics.topic_for(vid, topics.STATUS), b"offline", t0 + MS)
    twice = [{"ecu": "ECM", "version": "1"}, {"ecu": "ECM", "version": "2"}]
    store = TelemetryStore(pg_url)
    try:
        store.write(triage([_check_in(vid, t0, good), offline]))
        results = [
            store.write(triage([_check_in(vid, t0 + k * MS, bad)]))
            for k, bad in enumerate(
                [twice, [{"ecu": "E/CM", "version": "1"}], {"ECM": "1"}, [{"ecu": "X"}]], 2
            )
        ]
        now, _, _ = _inventory(pg_url, vid)
    finally:
        store.close()
    assert now == [("ECM", "4.2.0", "")]
    assert [r.dead_reasons for r in results] == [("bad_status_message",)] * 4
