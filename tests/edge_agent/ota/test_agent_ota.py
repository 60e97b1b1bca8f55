"""The agent's OTA client end to end: an agent process, a real broker (amqtt and Mosquitto) and a real
TUF repository over HTTP. An offer on the command topic is downloaded, verified, installed into the
inactive slot and committed, and its signed reports arrive on the broker and are accepted by
`ota.reports.judge` against the offer `ota.offers.new_offer` made. A tampered artifact is never
installed, an agent killed mid-install finishes or rolls back and reports after its restart, it
waits for the owner's consent and for the car to park, and invalid commands never crash it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from contract.update import UpdateOffer, UpdateReport
from edge_agent.ota.install import Installer
from ota.offers import new_offer
from tests.conftest import INGEST_OBSERVER, BrokerUnderTest
from tests.edge_agent.conftest import PrivateBroker
from tests.edge_agent.ota.agent_harness import (
    AgentProcess,
    Cloud,
    Vehicle,
    image,
    judged,
    provision,
    served_repository,
)

pytestmark = [pytest.mark.broker]
VEHICLE = "VEH-C"


def offer_for(url: str, version: str = "4.3.0", **terms: object) -> UpdateOffer:
    return new_offer(
        ecu="ECM",
        target=f"ECM/{version}/ecm.bin",
        version=version,
        repository_url=url,
        now_us=time.time_ns() // 1000,
        **terms,  # type: ignore[arg-type]
    )


def progress(reports: list[UpdateReport]) -> list[str]:
    """The states reported, without the waiting reports (a `verified` again, saying what it waits
    for: here the few hundred ms until the car counts as parked when the offer came early)."""
    waiting = [r for r in reports[2:] if r.state == "verified"]
    assert all(r.detail.startswith("waiting: parked (") for r in waiting), [r.detail for r in waiting]
    return [r.state for r in reports if r not in waiting]


def running_version(vehicle: Vehicle) -> str:
    status = Installer(vehicle.state_dir).status().ecu_status("ECM")
    return "4.2.1" if status is None or status.running is None else status.running.version


def slot_image(vehicle: Vehicle) -> bytes:
    installer = Installer(vehicle.state_dir)
    status = installer.status().ecu_status("ECM")
    assert status is not None and status.boot is not None
    return installer.slots.ecu("ECM").image_path(status.boot.booted).read_bytes()


def test_an_offer_is_verified_installed_committed_and_reported(
    broker: BrokerUnderTest, tmp_path: Path
) -> None:
    with served_repository(tmp_path / "ota") as (repo, url):
        vehicle = provision(tmp_path / "car", VEHICLE, broker.vehicle(VEHICLE), repo.root_bytes())
        cloud = Cloud(broker.login(INGEST_OBSERVER), VEHICLE)
        agent = AgentProcess(vehicle)
        try:
            assert cloud.wait_for(lambda: any(c.get("state") == "online" for c in cloud.checkins), 30), (
                agent.log
            )
            offer = offer_for(url)
            cloud.send(offer.encode())
            assert cloud.wait_for(lambda: "committed" in cloud.states(offer), 60), agent.log
            assert cloud.wait_for(
                lambda: any(
                    {"ecu": "ECM", "version": "4.3.0", "hardware_id": "ecm-b12"} in c.get("software", [])
                    for c in cloud.checkins
                ),
                20,
            ), cloud.checkins[-1:]
            cloud.send(offer.encode())  # the same offer again: ignored
            time.sleep(1.5)
        finally:
            assert agent.stop() == 0, agent.log
            cloud.close()
    reports = cloud.parsed(offer)
    assert progress(reports) == ["downloading", "verified", "installed", "committed"]
    assert judged(offer, vehicle, reports) == ["accepted"] * len(reports)
    sha = repo.list_targets()[0]["sha256"]
    assert reports[0].target.sha256 is None and all(r.target.sha256 == sha for r in reports[1:])
    assert reports[0].before.version == "4.2.1" and reports[1].after.version == "4.2.1"
    assert reports[-1].after.version == "4.3.0" and reports[-1].after.sha256 == sha
    assert running_version(vehicle) == "4.3.0" and slot_image(vehicle) == image("4.3.0")
    stats = json.loads((vehicle.state_dir / "stats.json").read_text())["ota"]
    assert stats["enabled"] and stats["offers_received"] == 1 and stats["offers_ignored"] == 1
    assert stats["pending_offers"] == 0 and not (vehicle.state_dir / "ota" / "install.json").exists()


def test_a_tampered_artifact_is_never_installed(amqtt_broker: BrokerUnderTest, tmp_path: Path) -> None:
    broker = amqtt_broker
    with served_repository(tmp_path / "ota") as (repo, url):
        [target] = repo.list_targets()
        stored = repo.repo_dir / "targets" / "ECM" / "4.3.0" / f"{target['sha256']}.ecm.bin"
        tampered = bytearray(stored.read_bytes())
        tampered[1000] ^= 0xFF  # same length, one byte changed
        stored.write_bytes(bytes(tampered))
        vehicle = provision(tmp_path / "car", VEHICLE, broker.vehicle(VEHICLE), repo.root_bytes())
        cloud = Cloud(broker.login(INGEST_OBSERVER), VEHICLE)
        agent = AgentProcess(vehicle)
        try:
            offer = offer_for(url)
            time.sleep(0.5)
            assert cloud.wait_for(lambda: bool(cloud.checkins), 30), agent.log
            cloud.send(offer.encode())
            assert cloud.wait_for(lambda: "failed" in cloud.states(offer), 60), agent.log
        finally:
            assert agent.stop() == 0, agent.log
            cloud.close()
    reports = cloud.parsed(offer)
    assert [r.state for r in reports] == ["downloading", "failed"]
    assert reports[-1].reason == "hash_mismatch" and reports[-1].after.version == "4.2.1"
    assert judged(offer, vehicle, reports) == ["accepted", "accepted"]
    assert running_version(vehicle) == "4.2.1"
    assert not (vehicle.state_dir / "ota" / "ecus" / "ECM").exists()  # nothing was written to a slot
    assert not [p for p in (vehicle.state_dir / "ota" / "downloads").iterdir() if p.name.endswith(".ecm.bin")]


@pytest.mark.parametrize(
    ("kill", "expected"),
    [
        ("write:chunk", ["downloading", "verified", "failed"]),  # before the switch: abandoned
        ("saved:health_check", ["downloading", "verified", "installed", "committed"]),  # after: finished
    ],
)
def test_an_agent_killed_mid_install_finishes_or_rolls_back_and_reports(
    amqtt_broker: BrokerUnderTest, tmp_path: Path, kill: str, expected: list[str]
) -> None:
    broker = amqtt_broker
    with served_repository(tmp_path / "ota") as (repo, url):
        vehicle = provision(tmp_path / "car", VEHICLE, broker.vehicle(VEHICLE), repo.root_bytes())
        cloud = Cloud(broker.login(INGEST_OBSERVER), VEHICLE)
        first = AgentProcess(vehicle, kill=kill)
        try:
            assert cloud.wait_for(lambda: bool(cloud.checkins), 30), first.log
            offer = offer_for(url)
            cloud.send(offer.encode())
            assert first.wait_killed(60) == -9, first.log
            assert "killing the agent at " + kill in first.log
            second = AgentProcess(vehicle)
            try:
                assert cloud.wait_for(lambda: expected[-1] in cloud.states(offer), 60), second.log
                time.sleep(1.0)
            finally:
                assert second.stop() == 0, second.log
        finally:
            cloud.close()
    reports = cloud.parsed(offer)
    assert progress(reports) == expected
    assert judged(offer, vehicle, reports) == ["accepted"] * len(reports)
    if expected[-1] == "failed":
        assert reports[-1].reason == "interrupted" and reports[-1].after.version == "4.2.1"
        assert running_version(vehicle) == "4.2.1"
    else:
        assert reports[-1].after.version == "4.3.0" and running_version(vehicle) == "4.3.0"
        assert slot_image(vehicle) == image("4.3.0")


def test_it_waits_to_be_parked_and_for_consent_then_installs(
    amqtt_broker: BrokerUnderTest, tmp_path: Path
) -> None:
    broker = amqtt_broker
    with served_repository(tmp_path / "ota") as (repo, url):
        vehicle = provision(
            tmp_path / "car", VEHICLE, broker.vehicle(VEHICLE), repo.root_bytes(), parked_at_s=6.0
        )
        cloud = Cloud(broker.login(INGEST_OBSERVER), VEHICLE)
        agent = AgentProcess(vehicle)
        try:
            assert cloud.wait_for(lambda: bool(cloud.checkins), 30), agent.log
            offer = offer_for(url, consent_required=True)
            cloud.send(offer.encode())

            def waiting_for(*names: str) -> bool:
                details = [r.detail for r in cloud.parsed(offer) if r.state == "verified" and r.detail]
                return any(all(f"{n} (" in d for n in names) and d.count(" (") == len(names) for d in details)

            assert cloud.wait_for(lambda: waiting_for("parked", "consent"), 30), agent.log
            assert cloud.wait_for(lambda: waiting_for("consent"), 30), agent.log  # parked now
            assert "installed" not in cloud.states(offer)
            cloud.send(json.dumps({"type": "consent", "offer_id": offer.offer_id, "given": True}).encode())
            assert cloud.wait_for(lambda: "committed" in cloud.states(offer), 30), agent.log
        finally:
            assert agent.stop() == 0, agent.log
            cloud.close()
    reports = cloud.parsed(offer)
    states = [r.state for r in reports]
    assert states[:2] == ["downloading", "verified"] and states[-2:] == ["installed", "committed"]
    assert set(states[2:-2]) == {"verified"}  # the waiting reports, one per change of what it waits for
    assert len(states) == 6
    assert judged(offer, vehicle, reports) == ["accepted"] * len(reports)


def test_invalid_commands_never_crash_it_and_without_ota_offers_are_refused(
    amqtt_broker: BrokerUnderTest, tmp_path: Path
) -> None:
    broker = amqtt_broker
    vehicle = provision(tmp_path / "car", VEHICLE, broker.vehicle(VEHICLE), None)  # no [ota]
    cloud = Cloud(broker.login(INGEST_OBSERVER), VEHICLE)
    agent = AgentProcess(vehicle)
    try:
        assert cloud.wait_for(lambda: bool(cloud.checkins), 30), agent.log
        for payload in (
            b"\xff\xfe not json",
            b"[1, 2]",
            b'{"type": 5}',
            b'{"type": "reboot_now"}',
            b'{"type": "update_offer", "offer_id": "x"}',
            b'{"type": "consent", "offer_id": "offer-1", "given": "yes"}',
            b"{" * 20000,
            b'{"type": "notice", "notification_id": 3, "vehicle_id": "VEH-C"}',  # valid, but no screen here
        ):
            cloud.send(payload)
        offer = offer_for("http://127.0.0.1:9/")
        cloud.send(offer.encode())
        time.sleep(2.0)
        assert agent.proc.poll() is None, agent.log
    finally:
        assert agent.stop() == 0, agent.log
        cloud.close()
    stats = json.loads((vehicle.state_dir / "stats.json").read_text())["ota"]
    assert stats == {
        "enabled": False,
        "disabled_reason": "no [ota] section in the configuration",
        "commands_received": 9,
        "commands_rejected": 7,
        "commands_not_handled": 1,
        "last_command_error": stats["last_command_error"],
        "offers_refused": 1,
    }
    assert stats["last_command_error"].startswith("too_large")
    assert f"refused UpdateOffer {offer.offer_id}: OTA is off" in agent.log
    assert cloud.states(offer) == []


@pytest.mark.mosquitto
def test_reports_of_an_install_during_a_broker_outage_arrive_afterwards(
    private_broker: PrivateBroker, tmp_path: Path
) -> None:
    vid = "AGT-OTA"
    with served_repository(tmp_path / "ota") as (repo, url):
        vehicle = provision(
            tmp_path / "car", vid, private_broker.vehicle(vid), repo.root_bytes(), parked_at_s=8.0
        )
        cloud = Cloud(private_broker.login(INGEST_OBSERVER), vid, persistent=True)
        agent = AgentProcess(vehicle)
        try:
            assert cloud.wait_for(lambda: bool(cloud.checkins), 30), agent.log
            offer = offer_for(url)
            cloud.send(offer.encode())
            assert cloud.wait_for(lambda: len(cloud.states(offer)) == 3, 30), agent.log  # waiting: driving
            private_broker.mosquitto.stop()  # the car parks (8 s after its start) during the outage
            stats = vehicle.state_dir / "stats.json"
            assert cloud.wait_for(
                lambda: stats.exists() and '"installs_finished": 1' in stats.read_text(), 30
            )
            assert "committed" not in cloud.states(offer)
            private_broker.mosquitto.start()
            assert cloud.wait_for(lambda: "committed" in cloud.states(offer), 60), agent.log
        finally:
            assert agent.stop() == 0, agent.log
            cloud.close()
    reports = cloud.parsed(offer)
    assert [r.state for r in reports] == ["downloading", "verified", "verified", "installed", "committed"]
    assert judged(offer, vehicle, reports) == ["accepted"] * 5
    assert running_version(vehicle) == "4.3.0"
