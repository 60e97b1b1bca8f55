"""`fleet bench ota`, the server's half: one campaign over a large fleet, through the real broker.

Owns: a throw-away PostgreSQL and a private Mosquitto (`benchmarks.ingest.harness`), `fleet ingest`
as its own process, `vehicles` vehicles on ECM 4.2.0 with their report keys registered, a TUF
repository with the 4.2.1 target, and one approved campaign (waves 1/10/50/100 %, no soak). A bench
fleet (one MQTT connection subscribed to every vehicle's `command` topic) answers each offer at once
with the four signed reports of a good install (downloading, verified, installed, committed) on the
vehicle's `update` topic: the fleet's worst case, every report of a wave in one burst. The fleet
runs in a process of its own, as vehicles do. The controller runs in this process as the worker
would, step after step: `ota.loop.campaign_step` (join, waves, offers recorded and published) and
`ota.loop.report_step` (judge, record, inventory).

Measured: the controller's decisions (offers made, reports judged and recorded, waves opened) per
second of its own step time; the rate at which ingest stored the fleet's reports (per second, and
its peak over one-second buckets); and how far the controller lagged: each report's time from being
stored to being judged, the most reports stored and not judged yet at any moment (`max_backlog`),
and whether it kept up (`kept_up`: it judges at least as fast as the reports arrived in their
peak second, so no backlog outlives a step). The broker runs without logins here (the ACL is
tested elsewhere).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.ingest.harness import start_ingest, start_servers, stop_process
from benchmarks.ota_install import ECU, FROM_VERSION, HARDWARE_ID, TO_VERSION, publish_repository
from contract import topics
from contract.endpoint import MqttEndpoint
from contract.update import Software, parse_update_offer
from edge_agent.ota.report import ReportSigner, build_report, report_topic
from localservers.embedded import free_port
from ota.loop import LoopConfig, campaign_step, report_step

STATES = ("downloading", "verified", "installed", "committed")
BEFORE = Software(FROM_VERSION, "0" * 64)


class _FleetClient:
    """Every vehicle's answer to its offer: four signed reports, published at once."""

    def __init__(self, host: str, port: int, keys: dict[str, Ed25519PrivateKey]) -> None:
        self.signers = {vehicle_id: ReportSigner(key) for vehicle_id, key in keys.items()}
        self.offers = 0
        self.reports = 0
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-fleet", protocol=mqtt.MQTTv311
        )
        self._client.max_queued_messages_set(0)
        subscribed = threading.Event()
        self._client.on_connect = lambda c, *_: c.subscribe(topics.subscription_for(topics.COMMAND), qos=1)
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the bench fleet could not subscribe")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        offer = parse_update_offer(bytes(msg.payload))
        parsed = topics.parse_topic(msg.topic)
        assert parsed is not None  # the subscription's own topics
        vehicle_id = parsed[0]
        signer = self.signers[vehicle_id]
        self.offers += 1
        for seq, state in enumerate(STATES, start=1):
            after = Software(TO_VERSION, None) if state == "committed" else BEFORE
            report = build_report(
                offer, vehicle_id=vehicle_id, seq=seq, ts_us=time.time_ns() // 1000, state=state,
                before=BEFORE, after=after,
            )  # fmt: skip
            self._client.publish(report_topic(vehicle_id), signer.sign(report), qos=1)
            self.reports += 1

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _fleet_process(host: str, port: int, raw_keys: dict[str, bytes], pipe: Connection) -> None:
    """The bench fleet's process: answers offers until told to stop; sends its counts when asked."""
    try:
        fleet = _FleetClient(
            host, port, {v: Ed25519PrivateKey.from_private_bytes(k) for v, k in raw_keys.items()}
        )
    except (RuntimeError, OSError) as exc:
        pipe.send(f"failed: {exc}")
        return
    pipe.send("subscribed")
    while (command := pipe.recv()) != "stop":
        if command == "counts":
            pipe.send((fleet.offers, fleet.reports))
    fleet.close()


class BenchFleet:
    """The bench fleet (`_FleetClient`) in a process of its own, as real vehicles are: its signing
    and MQTT work do not take the controller's interpreter (before, one process held both, and the
    controller waited for the fleet's threads)."""

    def __init__(self, host: str, port: int, keys: dict[str, Ed25519PrivateKey]) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        raw_keys = {v: k.private_bytes_raw() for v, k in keys.items()}
        self._process = context.Process(
            target=_fleet_process, args=(host, port, raw_keys, child), daemon=True
        )
        self._process.start()
        try:
            ready = self._pipe.recv() if self._pipe.poll(60) else "no answer within a minute"
        except (EOFError, OSError) as exc:  # it died (e.g. a script without a __main__ guard)
            ready = f"its process ended: {exc!r}"
        if ready != "subscribed":
            self._process.kill()
            raise RuntimeError(f"the bench fleet could not start: {ready}")

    def counts(self) -> tuple[int, int]:
        """(offers received, reports published) so far."""
        self._pipe.send("counts")
        offers, reports = self._pipe.recv()
        return int(offers), int(reports)

    def close(self) -> None:
        if self._process.is_alive():
            self._pipe.send("stop")
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


def bench_rollout(vehicles: int = 10_000, timeout_s: float = 600.0) -> dict[str, Any]:
    """Run the campaign to its end (or `timeout_s`); the measures (module docstring). Raises
    RuntimeError when a server does not start, psycopg.Error."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-bench-rollout-")))
        db_url, broker, _ = start_servers(stack, tmp, None, None)
        log = tmp / "ingest.log"
        ingest = start_ingest(db_url, broker.url, "fleet-ingest", free_port(), log)
        stack.callback(stop_process, ingest)
        _wait_subscribed(log, ingest)
        artifact = tmp / "ecm.bin"
        artifact.write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
        repo_dir, _, _ = publish_repository(tmp, artifact)
        ids = [f"BENCH-OTA-{k:05d}" for k in range(vehicles)]
        keys = {v: Ed25519PrivateKey.generate() for v in ids}
        with psycopg.connect(db_url, autocommit=True) as conn:
            _seed(conn, keys)
            campaign_id = _campaign(conn)
        fleet = BenchFleet("127.0.0.1", broker.port, keys)
        stack.callback(fleet.close)
        config = LoopConfig(repo_dir, "http://127.0.0.1:1/", MqttEndpoint("127.0.0.1", broker.port))
        steps = _run_controller(db_url, config, campaign_id, vehicles, timeout_s)
        return _measures(db_url, campaign_id, vehicles, steps, fleet)


def _wait_subscribed(log: Path, ingest: Any, timeout_s: float = 60.0) -> None:
    """Until ingest logged its subscription (a report published before it would be lost to it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and b'"subscribed"' in log.read_bytes():
            return
        if ingest.poll() is not None:
            raise RuntimeError(f"fleet ingest exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError("fleet ingest did not subscribe within a minute")


def _seed(conn: psycopg.Connection, keys: dict[str, Ed25519PrivateKey]) -> None:
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy("COPY vehicles (vehicle_id) FROM STDIN") as copy:
            for v in keys:
                copy.write_row((v,))
        with cur.copy(
            "COPY vehicle_software (vehicle_id, ecu, software_version, hardware_id, reported_at) FROM STDIN"
        ) as copy:
            for v in keys:
                copy.write_row((v, ECU, FROM_VERSION, HARDWARE_ID, dt.datetime.now(dt.UTC)))
    from ota.vehicle_keys import register_key

    with conn.transaction():
        for v, key in keys.items():
            register_key(conn, v, key.public_key().public_bytes(*raw))


def _campaign(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "INSERT INTO campaigns (name, ecu, from_version, to_version, target_filter, status, waves_pct,"
        " success_threshold, error_threshold, max_failures, soak_s, consent_required)"
        " VALUES ('bench', %s, %s, %s, %s, 'approved', %s, 0.95, 0.05, 100, 0, false) RETURNING campaign_id",
        (
            ECU,
            FROM_VERSION,
            TO_VERSION,
            json.dumps({"ecu": ECU, "software_version": FROM_VERSION}),
            [1, 10, 50, 100],
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _run_controller(
    db_url: str, config: LoopConfig, campaign_id: int, vehicles: int, timeout_s: float
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            campaign = campaign_step(conn, config)
            middle = time.perf_counter()
            reports = report_step(conn, config)
            end = time.perf_counter()
            judged = sum(reports["verdicts"].values())
            offers = campaign["publish"]["published"]
            steps.append(
                {"campaign_s": middle - start, "report_s": end - middle, "offers": offers, "judged": judged,
                 "recorded": reports["recorded"], "waves_opened": len(campaign["waves_opened"])}
            )  # fmt: skip
            row = conn.execute(
                "SELECT status FROM campaigns WHERE campaign_id = %s", (campaign_id,)
            ).fetchone()
            if row is not None and row[0] in ("finished", "paused", "cancelled"):
                break
            if offers == 0 and judged == 0:
                time.sleep(0.1)
    return steps


def _measures(
    db_url: str, campaign_id: int, vehicles: int, steps: list[dict[str, Any]], fleet: BenchFleet
) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        status = conn.execute(
            "SELECT status, reason FROM campaigns WHERE campaign_id = %s", (campaign_id,)
        ).fetchone()
        states: dict[str, int] = dict(
            conn.execute(
                "SELECT state, count(*) FROM campaign_vehicles WHERE campaign_id = %s GROUP BY state",
                (campaign_id,),
            ).fetchall()
        )
        dead: dict[str, int] = dict(
            conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason").fetchall()
        )
        rows = conn.execute(
            "SELECT extract(epoch FROM received_at), extract(epoch FROM verified_at) FROM update_reports"
        ).fetchall()
    received = np.array([float(r[0]) for r in rows])
    verified = np.array([float(r[1]) for r in rows if r[1] is not None])
    lag = np.array([float(r[1]) - float(r[0]) for r in rows if r[1] is not None])
    busy_s = sum(s["campaign_s"] + s["report_s"] for s in steps)
    offers = sum(s["offers"] for s in steps)
    judged = sum(s["judged"] for s in steps)
    waves = sum(s["waves_opened"] for s in steps)
    decisions = offers + judged + waves
    span_s = float(received.max() - received.min()) if len(received) > 1 else 0.0
    peak = int(np.bincount((received - received.min()).astype(np.int64)).max()) if len(received) else 0
    reports_per_s = judged / sum(s["report_s"] for s in steps) if steps and judged else 0.0
    p99 = float(np.percentile(lag, 99)) if len(lag) else None
    return {
        "vehicles": vehicles,
        "campaign": {
            "status": status[0] if status else None,
            "reason": status[1] if status else None,
            "members_by_state": states,
        },  # fmt: skip
        "steps": len(steps),
        "offers_published": offers,
        "reports_published_by_fleet": fleet.counts()[1],
        "reports_stored": len(received),
        "dead_letters": dead,
        "reports_judged": judged,
        "waves_opened": waves,
        "controller_busy_s": round(busy_s, 2),
        "controller_decisions_per_s": round(decisions / busy_s, 1) if busy_s else None,
        "controller_reports_per_s": round(reports_per_s, 1),
        "fleet_reports_per_s_mean": round(len(received) / span_s, 1) if span_s else None,
        "fleet_reports_per_s_peak_1s": peak,
        "lag_stored_to_judged_s": {
            "p50": round(float(np.percentile(lag, 50)), 2) if len(lag) else None,
            "p99": round(float(np.percentile(lag, 99)), 2) if len(lag) else None,
            "max": round(float(lag.max()), 2) if len(lag) else None,
        },
        "max_backlog": _max_backlog(received, verified),
        "kept_up": reports_per_s >= peak,
        "kept_up_detail": (
            f"the controller judged {reports_per_s:.0f} reports/s of its step time; the fleet's reports"
            f" arrived at up to {peak}/s (mean {len(received) / span_s if span_s else 0:.0f}/s);"
            f" lag p99 {p99 if p99 is None else round(p99, 1)} s"
        ),
    }


def _max_backlog(received: np.ndarray, verified: np.ndarray) -> int:
    """The most reports stored and not judged yet at any moment."""
    if not len(received):
        return 0
    times = np.concatenate([received, verified])
    steps = np.concatenate([np.ones(len(received), np.int64), -np.ones(len(verified), np.int64)])
    order = np.lexsort((-steps, times))  # at one instant, arrivals first
    return int(np.cumsum(steps[order]).max())
