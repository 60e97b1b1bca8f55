"""The OTA worker in process, over the in-memory TUF repository: when it waits, when it gives up
(superseded, expired, already running, an unknown time zone), that a refused consent is not giving
up, and that offers survive a restart while a finished offer id stays ignored. The reports are
checked signed and in order (the end-to-end test, test_agent_ota.py, runs the real broker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.software import EcuSoftware
from contract.update import MaintenanceWindow, UpdateOffer, UpdateReport, parse_update_report
from edge_agent.commands import Consent
from edge_agent.ota.client import ClientSettings, OtaClient
from edge_agent.ota.conditions import BATTERY_V, ENGINE_SPEED, PATHS, SPEED, ConditionTracker
from edge_agent.ota.install import Installer
from edge_agent.ota.offer_store import OfferStore
from edge_agent.ota.preconditions import Thresholds
from edge_agent.ota.report import ReportSigner
from edge_agent.ota.reporter import Reporter
from tests.tuf_simulator import BASE_URL, RepositorySimulator

CONFIGURED = (EcuSoftware("ECM", "4.2.1", "ecm-b12"),)
IMAGE = bytes(range(256)) * 64


class Car:
    """An OTA client over a state directory, with a sink that stands in for the agent's spool."""

    def __init__(
        self, tmp_path: Path, sim: RepositorySimulator, key: Ed25519PrivateKey, **settings: float
    ) -> None:
        self.sim, self.state_dir = sim, tmp_path / "state"
        root = tmp_path / "root.json"
        root.write_bytes(sim.signed_roots[0])
        self.payloads: list[bytes] = []
        self.tracker = ConditionTracker(PATHS)
        self.installer = Installer(
            self.state_dir,
            configured=CONFIGURED,
            thresholds=Thresholds(min_parked_s=0.0),
            on_event=self._event,
        )
        reporter = Reporter(
            "VEH-1",
            ReportSigner(key),
            self.state_dir / "ota" / "seq.json",
            OfferStore(self.state_dir / "ota" / "offers"),
            self._sink,
        )
        self.client = OtaClient(
            ClientSettings(root, self.state_dir, **{"check_interval_s": 0.05, **settings}),
            self.installer,
            reporter,
            self.tracker,
            self.installer.inventory,
            lambda: None,
            fetcher=sim,
        )

    def _sink(self, payload: bytes) -> bool:
        self.payloads.append(payload)
        return True

    def _event(self, event) -> None:  # noqa: ANN001
        self.client.on_event(event)

    def drive(self, parked: bool) -> None:
        speed = 0.0 if parked else 50.0
        self.tracker.observe(
            time.time_ns(), {SPEED: speed, ENGINE_SPEED: 0.0 if parked else 900.0, BATTERY_V: 12.6}
        )

    def reports(self, offer: UpdateOffer) -> list[UpdateReport]:
        return [r for r in map(parse_update_report, list(self.payloads)) if r.offer_id == offer.offer_id]

    def states(self, offer: UpdateOffer) -> list[str]:
        return [r.state for r in self.reports(offer)]


def wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def sim() -> RepositorySimulator:
    sim = RepositorySimulator()
    sim.add_target(IMAGE, version="4.3.0")
    sim.add_target(IMAGE[::-1], version="4.2.1")
    sim.publish_targets()
    return sim


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def car(tmp_path: Path, sim: RepositorySimulator, key: Ed25519PrivateKey) -> Iterator[Car]:
    car = Car(tmp_path, sim, key)
    feeding = threading.Event()
    car.parked = False  # type: ignore[attr-defined]

    def feed() -> None:
        while not feeding.is_set():
            car.drive(car.parked)  # type: ignore[attr-defined]
            time.sleep(0.02)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    car.client.resume()
    car.client.start()
    yield car
    car.client.request_stop()
    car.client.join(10)
    feeding.set()
    thread.join(5)


def park(car: Car) -> None:
    car.parked = True  # type: ignore[attr-defined]
    assert wait_for(lambda: car.tracker.snapshot(time.time_ns()).speed_kmh == 0.0)


def offer(n: int, version: str = "4.3.0", **terms: object) -> UpdateOffer:
    return UpdateOffer(
        **{  # type: ignore[arg-type]
            "offer_id": f"offer-{n}",
            "nonce": f"{n}" * 43,
            "issued_at_us": time.time_ns() // 1000,
            "ecu": "ECM",
            "target": f"ECM/{version}/ecm.bin",
            "version": version,
            "urgency": "soft",
            "repository_url": BASE_URL,
            **terms,
        }
    )


def test_it_waits_while_driving_and_a_newer_offer_supersedes_the_waiting_one(car: Car) -> None:
    first, second = offer(1), offer(2)
    car.client.submit(first)
    assert wait_for(lambda: car.states(first) == ["downloading", "verified", "verified"])
    assert car.reports(first)[-1].detail.startswith("waiting: parked (moving at 50 km/h)")
    time.sleep(0.3)  # tried again every 50 ms: no new report while what it waits for stays the same
    assert car.states(first) == ["downloading", "verified", "verified"]
    car.client.submit(second)
    assert wait_for(lambda: "failed" in car.states(first))
    assert car.reports(first)[-1].reason == "superseded"
    park(car)
    assert wait_for(lambda: "committed" in car.states(second))
    assert [r.seq for r in car.reports(second)] == list(range(1, len(car.reports(second)) + 1))
    car.client.submit(second)  # finished: a repeat is ignored
    time.sleep(0.2)
    assert car.client.stats.offers_ignored == 1 and car.states(second)[-1] == "committed"


def test_a_refused_consent_keeps_waiting_and_a_given_one_installs(car: Car) -> None:
    park(car)
    asked = offer(3, consent_required=True)
    car.client.submit(asked)
    assert wait_for(lambda: len(car.states(asked)) == 3)
    assert car.reports(asked)[-1].detail.startswith("waiting: consent (")
    car.client.submit(Consent(asked.offer_id, False))
    time.sleep(0.3)
    assert car.states(asked) == ["downloading", "verified", "verified"]  # not given up
    car.client.submit(Consent("offer-unknown", True))
    car.client.submit(Consent(asked.offer_id, True))
    assert wait_for(lambda: car.states(asked)[-1:] == ["committed"])
    assert car.client.stats.offers_ignored == 1


def test_what_can_never_install_is_given_up(car: Car) -> None:
    park(car)
    running = offer(4, version="4.2.1")
    car.client.submit(running)
    assert wait_for(lambda: "failed" in car.states(running))
    assert car.reports(running)[-1].reason == "already_running"
    zone = offer(5, maintenance_window=MaintenanceWindow("22:00", "05:00", "Mars/Olympus_Mons"))
    car.client.submit(zone)
    assert wait_for(lambda: car.states(zone) == ["failed"])
    assert car.reports(zone)[-1].reason == "bad_maintenance_window"
    unknown = offer(6, version="9.9.9")
    car.client.submit(unknown)
    assert wait_for(lambda: car.states(unknown) == ["downloading", "failed"])
    assert car.reports(unknown)[-1].reason == "unknown_target"
    assert wait_for(lambda: car.client.records == {})


def test_an_offer_never_installable_in_time_expires(
    tmp_path: Path, sim: RepositorySimulator, key: Ed25519PrivateKey
) -> None:
    car = Car(tmp_path, sim, key, give_up_after_s=0.5)
    car.client.start()
    try:
        late = offer(7)
        car.client.submit(late)  # nobody reads signals: the conditions are unknown, it waits
        assert wait_for(lambda: "failed" in car.states(late))
    finally:
        car.client.request_stop()
        car.client.join(10)
    assert car.states(late)[:2] == ["downloading", "verified"]
    assert car.reports(late)[-1].reason == "expired"


def test_a_pending_offer_survives_a_restart(
    tmp_path: Path, sim: RepositorySimulator, key: Ed25519PrivateKey
) -> None:
    first = Car(tmp_path, sim, key)
    first.client.start()
    pending = offer(8)
    first.client.submit(pending)
    assert wait_for(lambda: len(first.states(pending)) == 3)  # verified, then waiting (no signals)
    first.client.request_stop()
    first.client.join(10)
    second = Car(tmp_path, sim, key)
    assert list(second.client.records) == [pending.offer_id]
    second.drive(parked=True)
    second.client.resume()
    second.client.start()
    try:
        second.drive(parked=True)

        def committed() -> bool:
            second.drive(parked=True)  # the signals keep coming while it waits
            return second.states(pending)[-1:] == ["committed"]

        assert wait_for(committed)
    finally:
        second.client.request_stop()
        second.client.join(10)
    states = second.states(pending)
    assert states == ["installed", "committed"]  # downloading and verified were sent before
    seqs = [r.seq for r in first.reports(pending) + second.reports(pending)]
    assert seqs == list(range(1, len(seqs) + 1))
