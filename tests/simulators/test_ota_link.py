"""Through a real broker (amqtt and Mosquitto, MQTT 3.1.1): an offer published on a simulated
vehicle's command topic gets that vehicle's signed reports on its update topic, which the server's
checks accept; invalid offers and other commands are ignored."""

from __future__ import annotations

import json
import math
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics
from contract.accounts import SIMULATOR_DTC, SIMULATOR_OTA
from contract.update import parse_update_report
from edge_agent.fleet_publishing import MqttPublisher
from ota.offers import new_offer, offer_topic
from ota.reports import ACCEPTED, OfferRecord, judge
from simulators.closed_loop import ClosedLoop
from simulators.engine import FleetSimulation
from simulators.feeder import FeedConfig, feed
from simulators.ota_link import LinkError, OfferListener
from simulators.roads import city_grid
from simulators.runner import VehiclePublishers
from simulators.scenario import OtaSpec
from tests.conftest import INGEST_OBSERVER, BrokerUnderTest
from tests.simulators.helpers import busy_scenario

QUICK = OtaSpec(
    download_s=(5.0, 10.0),
    install_s=(10.0, 20.0),
    health_check_s=5.0,
    min_parked_s=5.0,
    download_failure_rate=0.0,
    install_failure_rate=0.0,
    rollback_rate=0.0,
)


class Cloud:
    """The server's side for the test: publishes commands and collects update reports and check-ins
    of the given vehicles (the ingest account's observer login)."""

    def __init__(self, broker: BrokerUnderTest, vehicle_ids: list[str]) -> None:
        self.received: list[tuple[str, str, bytes]] = []  # (vehicle id, kind, payload)
        self._vehicles = set(vehicle_ids)
        self._ready = threading.Event()
        ep = broker.login(INGEST_OBSERVER)
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=ep.username, protocol=mqtt.MQTTv311
        )
        self._client.username_pw_set(ep.username, ep.password)
        self._client.on_connect = lambda c, *a: c.subscribe(
            [(topics.subscription_for(topics.UPDATE), 1), (topics.subscription_for(topics.STATUS), 1)]
        )
        self._client.on_subscribe = lambda *a: self._ready.set()
        self._client.on_message = lambda c, u, m: self._keep(m.topic, bytes(m.payload))
        self._client.connect(ep.host, ep.port)
        self._client.loop_start()
        assert self._ready.wait(10)

    def _keep(self, topic: str, payload: bytes) -> None:
        parsed = topics.parse_topic(topic)
        if parsed is not None and parsed[0] in self._vehicles:
            self.received.append((parsed[0], parsed[1], payload))

    def send(self, topic: str, payload: bytes) -> None:
        assert self._client.publish(topic, payload, qos=1).wait_for_publish(10) is None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def wait_until(predicate, timeout_s: float = 15.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.broker
def test_an_offer_on_the_command_topic_gets_signed_reports_on_the_update_topic(
    broker: BrokerUnderTest,
) -> None:
    sc = busy_scenario(
        name="ota-link", seed=int(time.time()) % 10_000, vehicles=6, duration_s=300.0, ota=QUICK,
        initially_driving_share=0.0, mean_parking_s=100_000.0,
    )  # fmt: skip
    sim = FleetSimulation(sc, city_grid(blocks=4), time.time() - 400.0)
    loop = ClosedLoop(sim)
    cloud = Cloud(broker, sim.vehicle_ids)
    listener = OfferListener(broker.simulator, loop)
    listener.connect()
    vid = sim.vehicle_ids[2]
    ecu = "VCU" if sim.params.is_ev[2] else "ECM"
    offer = new_offer(
        ecu=ecu,
        target=f"{ecu}/4.2.1/image.bin",
        version="4.2.1",
        repository_url="https://ota.example.com/",
        now_us=int(sim.start_unix_s * 1e6),
    )
    pubs = VehiclePublishers.connect(sim.vehicle_ids, gateway=broker.simulator)
    uplink = MqttPublisher(broker.simulator, SIMULATOR_DTC)
    uplink.connect()
    try:
        cloud.send(
            topics.topic_for(sim.vehicle_ids[0], topics.COMMAND), b'{"type": "update_offer", "nonce": 1}'
        )
        cloud.send(topics.topic_for(sim.vehicle_ids[1], topics.COMMAND), b"\xff not json")
        cloud.send(topics.topic_for(sim.vehicle_ids[1], topics.COMMAND), b'{"type": "in_car_message"}')
        cloud.send(offer_topic(vid), offer.encode())
        assert wait_until(lambda: listener.stats.offers == 1)
        assert listener.stats.invalid_offers == 2 and listener.stats.other_commands == 1
        feed(
            sim,
            pubs,
            FeedConfig(sc.duration_s, 10.0, speedup=math.inf),
            publish_message=uplink.publish_message,
            closed_loop=loop,
        )
        assert pubs.wait_acked(20) and uplink.wait_acked(20)
        reports = lambda: [p for v, kind, p in cloud.received if kind == topics.UPDATE]  # noqa: E731
        assert wait_until(lambda: len(reports()) == 4)
    finally:
        listener.close()
        pubs.close()
        uplink.close()
        cloud.close()
    parsed = [parse_update_report(p) for p in reports()]
    assert [r.state for r in parsed] == ["downloading", "verified", "installed", "committed"]
    assert {r.vehicle_id for r in parsed} == {vid}
    record = OfferRecord(offer.offer_id, vid, offer.nonce, offer.ecu, offer.issued_at_us)
    keys = {loop.keys.key_id(vid): loop.keys.public_keys()[vid]}  # what the fleet layer registers
    for r in parsed:
        assert judge(r, record, keys) == ACCEPTED
        record = OfferRecord(offer.offer_id, vid, offer.nonce, offer.ecu, offer.issued_at_us, r.seq)
    checkins = [json.loads(p) for v, kind, p in cloud.received if kind == topics.STATUS and v == vid]
    versions = [
        e["version"] for c in checkins if isinstance(c, dict) for e in c["software"] if e["ecu"] == ecu
    ]
    assert versions[0] != "4.2.1" and versions[-1] == "4.2.1"  # it checked in again with the patch


@pytest.mark.broker
def test_the_listener_needs_the_simulator_account(broker: BrokerUnderTest) -> None:
    sim = FleetSimulation(busy_scenario(vehicles=2), city_grid(blocks=3), time.time())
    with pytest.raises(LinkError):
        OfferListener(broker.login(INGEST_OBSERVER), ClosedLoop(sim), client_id=INGEST_OBSERVER).connect(5.0)
    assert SIMULATOR_OTA.startswith("fleet-simulator-")
