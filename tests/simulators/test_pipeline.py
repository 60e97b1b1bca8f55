"""End to end: a short scenario through the agent publishing code, a real broker and ingest into
PostgreSQL, with duplicates, outages and clock skew on; and the `fleet simulate` command."""

from __future__ import annotations

import json
import math
import threading
import time

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from api import create_app
from api.auth import Role, create_token
from contract import topics
from contract.accounts import SIMULATOR_DTC
from edge_agent.fleet_publishing import MqttPublisher
from fleet.cli import app
from simulators.engine import FleetSimulation
from simulators.feeder import FeedConfig, FeedStats, feed
from simulators.ground_truth import current_dtc_sets, ground_truth
from simulators.roads import city_grid
from simulators.runner import VehiclePublishers
from simulators.scenario import FaultSpec, NetworkSpec
from tests.conftest import INGEST_OBSERVER, BrokerUnderTest
from tests.simulators.helpers import busy_scenario


class DtcListener:
    """Subscribes to every vehicle's dtc topic as the ingest account and keeps the messages of the
    given vehicles (the session's broker also carries other tests' messages, malformed ones too)."""

    def __init__(self, broker: BrokerUnderTest, vehicle_ids: list[str]) -> None:
        self.messages: list[dict] = []
        self._vehicles = set(vehicle_ids)
        self._ready = threading.Event()
        ep = broker.login(INGEST_OBSERVER)
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=ep.username)
        self._client.username_pw_set(ep.username, ep.password)
        self._client.on_connect = lambda c, *a: c.subscribe(topics.subscription_for(topics.DTC), qos=1)
        self._client.on_subscribe = lambda *a: self._ready.set()
        self._client.on_message = lambda c, u, m: self._keep(m.topic, m.payload)
        self._client.connect(ep.host, ep.port)
        self._client.loop_start()
        assert self._ready.wait(10)

    def _keep(self, topic: str, payload: bytes) -> None:
        parsed = topics.parse_topic(topic)
        if parsed is not None and parsed[0] in self._vehicles:
            self.messages.append(json.loads(payload))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _publish_run(broker: BrokerUnderTest, sim: FleetSimulation) -> tuple[FeedStats, int]:
    """Feed the whole run through the simulator's gateway (batches, DTC messages and check-ins) and
    wait for every PUBACK: the feed's stats and the samples the broker acknowledged."""
    pubs = VehiclePublishers.connect(sim.vehicle_ids, gateway=broker.simulator)
    dtc = MqttPublisher(broker.simulator, SIMULATOR_DTC)
    dtc.connect()
    try:
        config = FeedConfig(sim.scenario.duration_s, 5.0, speedup=math.inf)
        stats = feed(sim, pubs, config, publish_message=dtc.publish_message)
        assert pubs.wait_acked(30) and dtc.wait_acked(10)
        return stats, pubs.samples_acked()
    finally:
        pubs.close()
        dtc.close()


@pytest.mark.broker
@pytest.mark.postgres
def test_scenario_lands_in_postgres_exactly_once(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    sc = busy_scenario(
        seed=9100 + len(broker.name),
        vehicles=25,
        duration_s=60.0,
        faults=(FaultSpec("misfire", 3, onset_s=5.0, params={"rate_per_h": 3600.0}),),
        network=NetworkSpec(
            outage_vehicle_share=0.2,
            outage_duration_s=(10.0, 30.0),
            duplicate_batch_probability=0.1,
            clock_skew_sd_s=1.0,
        ),
    )
    sim = FleetSimulation(sc, city_grid(blocks=6), float(int(time.time())))
    since = time.time() - 1
    listener = DtcListener(broker, sim.vehicle_ids)
    with running_ingest(broker.ingest) as ingest:
        stats, samples_acked = _publish_run(broker, sim)
        unique = samples_acked - stats.duplicate_samples
        assert stats.duplicates > 0 and stats.backlogged_batches > 0

        def since_run(select_from: str) -> int:
            """One count over this run's vehicles and messages, e.g. "count(*) FROM dtc_reports"."""
            with psycopg.connect(pg_url) as conn:
                row = conn.execute(
                    f"SELECT {select_from} WHERE vehicle_id = ANY(%s) AND received_at >= to_timestamp(%s)",
                    (sim.vehicle_ids, since),
                ).fetchone()
                return int(row[0]) if row else 0

        def ledger() -> int:
            return since_run("coalesce(sum(n_samples), 0) FROM ingest_batches")

        def dtc_reports() -> int:
            return since_run("count(*) FROM dtc_reports")

        assert ingest.wait_for(lambda totals: ledger() >= unique, timeout_s=30), (ledger(), unique)
        assert ledger() == unique

        assert ingest.wait_for(lambda totals: dtc_reports() >= stats.dtc_messages, timeout_s=10)
        assert dtc_reports() == stats.dtc_messages  # every DTC message stored once
    deadline = time.monotonic() + 10
    while len(listener.messages) < stats.dtc_messages and time.monotonic() < deadline:
        time.sleep(0.05)
    listener.close()
    assert stats.dtc_messages > 0 and len(listener.messages) == stats.dtc_messages
    assert {code[:4] for m in listener.messages for code in m["codes"]} == {"P030"}


@pytest.mark.broker
@pytest.mark.postgres
def test_stored_current_dtcs_match_the_ground_truth_clearing_included(
    broker: BrokerUnderTest, running_ingest, pg_url: str
) -> None:
    """Faults appear, some are repaired mid-run (their codes clear), vehicles go offline and their
    DTC messages arrive late: `vehicle_dtc_current` still shows every vehicle's newest true set."""
    sc = busy_scenario(
        seed=9200 + len(broker.name),
        vehicles=25,
        duration_s=60.0,
        faults=(
            FaultSpec("misfire", 2, onset_s=5.0, params={"rate_per_h": 3600.0}),
            FaultSpec("misfire", 2, onset_s=5.0, repaired_at_s=30.0, params={"rate_per_h": 3600.0}),
            FaultSpec("brake_pad_wear", 1, onset_s=0.0, repaired_at_s=40.0, params={"start_mm": 1.9}),
        ),
        network=NetworkSpec(outage_vehicle_share=0.3, outage_duration_s=(10.0, 30.0), clock_skew_sd_s=1.0),
    )
    sim = FleetSimulation(sc, city_grid(blocks=6), float(int(time.time())))
    with running_ingest(broker.ingest) as ingest:
        stats, _ = _publish_run(broker, sim)

        def reports() -> int:
            with psycopg.connect(pg_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM dtc_reports WHERE vehicle_id = ANY(%s)", (sim.vehicle_ids,)
                ).fetchone()
            return int(row[0]) if row else 0

        assert ingest.wait_for(lambda totals: reports() >= stats.dtc_messages, timeout_s=20), (
            reports(),
            stats.dtc_messages,
            ingest.service.totals,
        )
    expected = current_dtc_sets(ground_truth(sim))
    assert [] in expected.values() and any(expected.values())  # cleared and still-stored sets
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT vehicle_id, codes FROM vehicle_dtc_current WHERE vehicle_id = ANY(%s)", (sim.vehicle_ids,)
        ).fetchall()
    assert dict(rows) == expected


@pytest.mark.broker
def test_fleet_simulate_publish_only_writes_ground_truth_and_report(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    for key in ("FLEET_DATABASE_URL", "FLEET_MQTT_URL", "FLEET_SIMULATOR_MQTT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["simulate", "--scenario", "smoke", "--vehicles", "20", "--duration", "30", "--no-ingest", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["vehicles"] == 20 and summary["samples_published"] > 0
    report = tmp_path / "fleet-report"
    for name in ("ground_truth.json", "routes.png", "signals.png", "summary.json"):
        assert (report / name).stat().st_size > 0
    truth = json.loads((report / "ground_truth.json").read_text())
    assert truth["faults"] and truth["hazards"]
    assert truth["dtc_sets"]  # written after the run: the worn pads' code was stored at once


@pytest.mark.broker
@pytest.mark.postgres
def test_fleet_simulate_stores_every_sample_and_the_current_dtcs(
    tmp_path,  # noqa: ANN001
    monkeypatch,  # noqa: ANN001
    amqtt_broker: BrokerUnderTest,
    pg_url: str,
) -> None:
    """`fleet simulate` through ingest into the given servers; the smoke scenario's worn pads are
    replaced at 60 s, so one vehicle's current set is empty again."""
    b = amqtt_broker
    monkeypatch.setenv("FLEET_DATABASE_URL", pg_url)
    monkeypatch.setenv("FLEET_MQTT_URL", f"mqtt://{b.ingest.username}:{b.ingest.password}@{b.host}:{b.port}")
    monkeypatch.setenv(
        "FLEET_SIMULATOR_MQTT_URL", f"mqtt://{b.simulator.username}:{b.simulator.password}@{b.host}:{b.port}"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", "smoke", "--vehicles", "20", "--duration", "80", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["samples_stored"] == summary["samples_published_unique"] > 0
    assert summary["dtc_reports_stored"] == summary["dtc_messages"] > 0 and summary["dead_letters"] == 0
    truth = json.loads((tmp_path / "fleet-report" / "ground_truth.json").read_text())
    expected = current_dtc_sets(truth)
    assert [] in expected.values()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT vehicle_id, codes FROM vehicle_dtc_current WHERE vehicle_id = ANY(%s)",
            ([v["vehicle_id"] for v in truth["vehicles"]],),
        ).fetchall()
    assert dict(rows) == expected
    _check_registry(pg_url, truth)


def _check_registry(pg_url: str, truth: dict) -> None:
    """Every vehicle of the run is in the registry with a model, fleet, service centre and owner, as
    the ground truth says; it reported its ECU software; and a token for each centre lists exactly
    that centre's vehicles through the API."""
    ids = [v["vehicle_id"] for v in truth["vehicles"]]
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT v.vehicle_id, v.model_id, v.fleet_id, v.service_centre_id, v.owner_id, o.time_zone"
            " FROM vehicles v JOIN vehicle_models USING (model_id) JOIN fleets USING (fleet_id)"
            " JOIN service_centres USING (service_centre_id) JOIN owners o USING (owner_id)"
            " WHERE v.vehicle_id = ANY(%s)",
            (ids,),
        ).fetchall()
        reported = conn.execute(
            "SELECT count(DISTINCT vehicle_id) FROM vehicle_software WHERE vehicle_id = ANY(%s)", (ids,)
        ).fetchone()
        centres = [c["service_centre_id"] for c in truth["registry"]["service_centres"]]
        tokens = {c: create_token(conn, f"t-{c}-{time.time_ns()}", Role.SERVICE_CENTRE, c) for c in centres}
    by_id = {r[0]: r[1:] for r in rows}
    keys = ("model_id", "fleet_id", "service_centre_id", "owner_id")
    assert by_id == {
        v["vehicle_id"]: (*(v[k] for k in keys), by_id[v["vehicle_id"]][4]) for v in truth["vehicles"]
    }
    assert len({r[5] for r in rows}) > 1  # owners in several time zones
    assert reported == (len(ids),)
    assigned = {
        c: {v["vehicle_id"] for v in truth["vehicles"] if v["service_centre_id"] == c} for c in centres
    }
    assert sum(1 for vehicles in assigned.values() if vehicles) >= 2
    with TestClient(create_app(pg_url)) as client:
        for centre, token in tokens.items():
            page = client.get(
                "/v1/vehicles", params={"limit": 1000}, headers={"Authorization": f"Bearer {token}"}
            )
            assert page.status_code == 200
            seen = {v["vehicle_id"] for v in page.json()["items"]}
            assert seen & set(ids) == assigned[centre]  # this run's vehicles: exactly the centre's own
