"""Whole-agent paths on a private Mosquitto: OBD-II (ELM327-emulator) with a new-DTC trigger and the
DTC topic, and an agent that starts on a corrupt queue file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from edge_agent.agent import Agent
from edge_agent.sources.simulated import SimulatedSource
from tests.conftest import INGEST_OBSERVER
from tests.edge_agent.conftest import EMULATED_DTCS, PrivateBroker
from tests.edge_agent.test_agent_e2e import AgentThread, agent_config, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.mosquitto]


def _listen(
    broker: PrivateBroker, topic: str, as_vehicle: str | None = None
) -> tuple[mqtt.Client, list[bytes]]:
    got: list[bytes] = []
    ready = threading.Event()
    account = broker.vehicle(as_vehicle) if as_vehicle else broker.login(INGEST_OBSERVER)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=account.username, protocol=mqtt.MQTTv311
    )
    client.username_pw_set(account.username, account.password)
    client.on_message = lambda c, u, m: got.append(bytes(m.payload))
    client.on_subscribe = lambda *a: ready.set()
    client.connect("127.0.0.1", broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert ready.wait(5)
    return client, got


@pytest.mark.timeout(60)
def test_obd_agent_publishes_pids_dtcs_and_a_dtc_triggered_window(
    obd_source, private_broker: PrivateBroker, tmp_path: Path
) -> None:  # noqa: ANN001
    vid = "AGT-OBD"
    state = tmp_path / "state"
    state.mkdir()
    campaign = {
        "campaign_id": "obd",
        "version": 1,
        "base_rate_hz": 5,
        "flush_interval_s": 0.5,
        "batch_interval_s": 0.5,
        "signals": [{"path": p, "period_ms": 1000} for p in sorted(obd_source.available_paths)],
        "triggers": [{"name": "dtc", "condition": "new_dtc", "pre_s": 0.5, "post_s": 0.5}],
    }
    (state / "campaign.json").write_text(json.dumps(campaign))
    listener, dtc_messages = _listen(private_broker, topics.topic_for(vid, topics.DTC))
    agent = Agent(agent_config(private_broker, vid, state), obd_source, manage_source=False)
    try:
        with AgentThread(agent):
            sent = agent.sender.stats
            assert wait_until(lambda: agent.stats.triggers_fired == 1 and sent.batches_acked >= 2, 15)
            assert wait_until(lambda: bool(dtc_messages), 5)
    finally:
        listener.loop_stop()
        listener.disconnect()
    message = json.loads(dtc_messages[0])
    assert message["schema"] == "fleetpulse.dtc.v2" and message["vehicle_id"] == vid
    assert message["agent_version"]  # the agent's own version, in a field of its own
    assert message["codes"] == sorted(f"P{c}" for c in EMULATED_DTCS)
    assert agent.sender.stats.samples_acked >= len(campaign["signals"])
    assert agent.stats.source_errors == 0


def test_agent_starts_on_a_corrupt_queue_and_reports_it(
    private_broker: PrivateBroker, tmp_path: Path
) -> None:
    vid = "AGT-CORRUPT"
    state = tmp_path / "state"
    state.mkdir()
    (state / "queue.sqlite").write_bytes(b"this is not an SQLite file" * 100)
    listener, status = _listen(private_broker, topics.topic_for(vid, topics.STATUS))
    agent = Agent(agent_config(private_broker, vid, state), SimulatedSource(seed=2))
    try:
        with AgentThread(agent):
            assert wait_until(lambda: agent.sender.stats.batches_acked >= 1, 10)
    finally:
        listener.loop_stop()
        listener.disconnect()
    checkin = json.loads(next(m for m in status if m.startswith(b"{")))
    assert checkin["queue_corrupt_files"] and checkin["queue_corrupt_files"][0].startswith(
        "queue.sqlite.corrupt-"
    )
    assert list(state.glob("queue.sqlite.corrupt-*"))


def test_agent_link_cannot_publish_as_another_vehicle(private_broker: PrivateBroker) -> None:
    """The shipped ACL: AGT-OUTAGE's credentials reach only AGT-OUTAGE's topics."""
    from edge_agent.link import AgentLink, LinkConfig

    listener, got = _listen(private_broker, "fleet/v1/+/telemetry")
    link = AgentLink(
        LinkConfig(private_broker.vehicle("AGT-OUTAGE"), "AGT-OUTAGE", "AGT-OUTAGE", backoff_initial_s=0.1),
        lambda: b"{}",
    )
    link.start()
    try:
        assert link.connected.wait(5)
        assert link.publish(topics.topic_for("AGT-KILL", topics.TELEMETRY), b"spoofed") is not None
        assert link.publish(topics.topic_for("AGT-OUTAGE", topics.TELEMETRY), b"own") is not None
        assert wait_until(lambda: b"own" in got, 5)
    finally:
        link.stop()
        listener.loop_stop()
        listener.disconnect()
    assert got == [b"own"]  # the spoofed publish was acknowledged by the broker and dropped


def test_fleet_campaign_push_publishes_retained(private_broker: PrivateBroker, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fleet.cli import app

    campaign = tmp_path / "campaign.json"
    campaign.write_text('{"campaign_id": "c", "version": 2, "signals": [{"path": "Vehicle.Speed"}]}')
    ingest = private_broker.ingest
    url = f"mqtt://{ingest.username}:{ingest.password}@127.0.0.1:{private_broker.port}"
    result = CliRunner().invoke(
        app, ["campaign", "push", "AGT-CAMPAIGN", str(campaign)], env={"FLEET_MQTT_URL": url}
    )
    assert result.exit_code == 0, result.output
    # The ACL lets only the vehicle itself read its config topic.
    listener, got = _listen(private_broker, topics.topic_for("AGT-CAMPAIGN", topics.CONFIG), "AGT-CAMPAIGN")
    try:
        assert wait_until(lambda: bool(got), 5)
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert got[0] == campaign.read_bytes()
