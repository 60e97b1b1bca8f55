"""`fleet bench autosave`: what a Mosquitto crash loses, and what saving more often costs.

Mosquitto keeps its state in memory and writes all of it (every session, every queued message) to
`mosquitto.db` on an autosave: every `autosave_interval` seconds, or with `autosave_on_changes`
after that many changes (a message queued for an offline client is one; mosquitto 2.0.11
`loop.c`, `database.c`), and on a clean stop. Each save rewrites the whole file and fsyncs it.
A broker killed rather than stopped comes back with its last save: QoS 1 messages it acknowledged
since then are gone, although their publishers (agents) dropped them from their spools.

One run, for one setting: a private Mosquitto with persistence on; an offline subscriber's
persistent session (ingest while it is down); a publisher that sends numbered QoS 1 messages to it
(as fast as the broker acknowledges them, or paced at `rate`); SIGKILL of the broker once a random
number of messages, uniform in [`kill_from` × `messages`, `messages`], has been acknowledged; a
restart on the same files; the subscriber drains its session. Lost = acknowledged before the kill
and never delivered after it. Cost, from /proc/<broker pid>/io up to the kill: bytes the broker
wrote (`wchar`: what it passed to write(2); `write_bytes`: what reached the block layer), per
acknowledged message, the number of saves (its log), and the publish rate (acknowledged messages
per second; this one depends on the machine's load, the others do not).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import accounts, topics
from localservers.mosquitto import MosquittoProcess

SUBSCRIBER = f"{accounts.INGEST}-autosave"  # logins in the accounts' namespaces (anonymous broker)
PUBLISHER = f"{accounts.SIMULATOR}-autosave"
TOPIC = topics.topic_for("AUTOSAVE", topics.TELEMETRY)
WINDOW = 1000  # unacknowledged messages at most (paho's own queue slows down quadratically with more)


@dataclass(frozen=True)
class Setting:
    """`interval` seconds between saves, or with `on_changes` a number of changes."""

    interval: int
    on_changes: bool = False

    @classmethod
    def parse(cls, text: str) -> Setting:
        """`60` (seconds) or `changes:1000`. Raises ValueError."""
        kind, _, value = text.rpartition(":")
        if kind not in ("", "interval", "changes") or not value.isdigit() or int(value) < 1:
            raise ValueError(f"a setting is SECONDS, interval:SECONDS or changes:COUNT, got {text!r}")
        return cls(int(value), kind == "changes")

    def __str__(self) -> str:
        return f"changes:{self.interval}" if self.on_changes else f"interval:{self.interval}"


@dataclass(frozen=True)
class AutosaveBenchConfig:
    settings: tuple[Setting, ...]
    runs: int = 3
    messages: int = 10_000
    payload_bytes: int = 1_000
    rate: float = 0.0  # messages/s; 0 = as fast as the broker acknowledges
    kill_from: float = 0.25
    seed: int = 1
    mosquitto: str | None = None


class _Publisher:
    """Numbered QoS 1 messages; `acked` holds the numbers the broker acknowledged (PUBACK)."""

    def __init__(self, port: int, payload_bytes: int) -> None:
        self.acked: set[int] = set()
        self.max_ack_gap_s = 0.0  # longest wait between two PUBACKs: a save blocks the broker
        self._last_ack = 0.0
        self._by_mid: dict[int, int] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self._padding = b"x" * max(0, payload_bytes - 8)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=PUBLISHER, protocol=mqtt.MQTTv311)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        now = time.monotonic()
        with self._lock:
            if self._last_ack:
                self.max_ack_gap_s = max(self.max_ack_gap_s, now - self._last_ack)
            self._last_ack = now
            if mid in self._by_mid:
                self.acked.add(self._by_mid.pop(mid))
            else:
                self._early.add(mid)

    def publish(self, number: int) -> None:
        info = self._client.publish(TOPIC, b"%08d" % number + self._padding, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked.add(number)
            else:
                self._by_mid[info.mid] = number

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _session(port: int, on_message=None) -> mqtt.Client:  # noqa: ANN001
    """The offline subscriber: connect with a persistent session, subscribe at QoS 1."""
    subscribed = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=SUBSCRIBER, protocol=mqtt.MQTTv311, clean_session=False
    )
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe(TOPIC, qos=1)
    if on_message is not None:
        client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("the subscriber could not subscribe")
    return client


def _proc_io(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f.read().splitlines())}


def one_run(setting: Setting, cfg: AutosaveBenchConfig, rng: random.Random, work_dir: Path) -> dict[str, Any]:
    """Publish, kill, restart, drain; see the module docstring. Raises RuntimeError."""
    log_path, db_path = work_dir / "mosquitto.log", work_dir / "mosquitto.db"
    broker = MosquittoProcess(
        work_dir,
        binary=cfg.mosquitto,
        persistence=True,
        autosave_interval=setting.interval,
        autosave_on_changes=setting.on_changes,
        log_path=log_path,
        max_queued_messages=cfg.messages + 1000,
    )
    broker.start()
    try:
        sub = _session(broker.port)
        sub.disconnect()
        sub.loop_stop()
        kill_at = rng.randint(max(1, int(cfg.kill_from * cfg.messages)), cfg.messages)
        pub = _Publisher(broker.port, cfg.payload_bytes)
        assert broker.pid is not None
        io0 = _proc_io(broker.pid)
        started = time.monotonic()
        sent = 0
        while (acked_now := pub.acked_count()) < kill_at:
            due = sent < (time.monotonic() - started) * cfg.rate if cfg.rate else sent - acked_now < WINDOW
            if sent < cfg.messages and due:
                pub.publish(sent)
                sent += 1
            elif time.monotonic() - started > 600:
                raise RuntimeError("the broker stopped acknowledging")
            else:
                time.sleep(0.0005)
        io1 = _proc_io(broker.pid)
        broker.kill()
        elapsed = time.monotonic() - started
        log_at_kill = log_path.read_text(errors="replace")
        acked = set(pub.acked)  # the broker is dead: this is final
        db_bytes = db_path.stat().st_size if db_path.exists() else 0
        pub.close()
        broker.start()
        received: set[int] = set()
        last = [time.monotonic()]

        def got(client, userdata, message) -> None:  # noqa: ANN001
            received.add(int(message.payload[:8]))
            last[0] = time.monotonic()

        drain = _session(broker.port, got)
        while time.monotonic() - last[0] < 3.0 and not acked <= received:
            time.sleep(0.05)
        drain.disconnect()
        drain.loop_stop()
    finally:
        broker.stop()
    lost = len(acked - received)
    return {
        "setting": str(setting),
        "acked_before_kill": len(acked),
        "lost_acked": lost,
        "lost_fraction": round(lost / len(acked), 4) if acked else 0.0,
        "lost_seconds_of_traffic": round(lost * elapsed / len(acked), 2) if acked else 0.0,
        "publish_s": round(elapsed, 2),
        "acked_per_s": round(len(acked) / elapsed, 1),
        "saves_before_kill": log_at_kill.count("Saving in-memory database"),
        "db_bytes_at_kill": db_bytes,
        "wchar_per_msg": round((io1["wchar"] - io0["wchar"]) / len(acked), 1) if acked else 0.0,
        "write_bytes_per_msg": round((io1["write_bytes"] - io0["write_bytes"]) / len(acked), 1)
        if acked
        else 0.0,
        "broker_write_calls": io1["syscw"] - io0["syscw"],
        "max_ack_gap_ms": round(pub.max_ack_gap_s * 1000, 1),
    }


def run_autosave_bench(cfg: AutosaveBenchConfig) -> dict[str, Any]:
    """Every setting `cfg.runs` times, interleaved (so that a change of load hits them all)."""
    rng = random.Random(cfg.seed)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fleet-autosave-") as tmp:
        for run in range(cfg.runs):
            for i, setting in enumerate(cfg.settings):
                runs.append(one_run(setting, cfg, rng, Path(tmp) / f"{run}-{i}") | {"run": run})
    summary = {}
    for setting in cfg.settings:
        mine = [r for r in runs if r["setting"] == str(setting)]
        summary[str(setting)] = {
            "lost_fraction": [r["lost_fraction"] for r in mine],
            "lost_acked": [r["lost_acked"] for r in mine],
            "wchar_per_msg_median": statistics.median_high(r["wchar_per_msg"] for r in mine),
            "acked_per_s_median": statistics.median_high(r["acked_per_s"] for r in mine),
        }
    return {
        "config": {
            "runs": cfg.runs,
            "messages": cfg.messages,
            "payload_bytes": cfg.payload_bytes,
            "rate": cfg.rate,
            "kill_from": cfg.kill_from,
            "seed": cfg.seed,
        },
        "summary": summary,
        "runs": runs,
    }
