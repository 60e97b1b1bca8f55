"""The broker's own QoS 1 delivery rate, the ceiling `fleet bench ingest` reports ingest against
(`broker_ratio`): plain paho subscribers with manual acknowledgement and no processing, draining
the same pre-published messages from persistent sessions that were opened before publishing, as
ingest's were.

Each subscriber is a process of its own (as each ingest worker is), in the same shared-subscription
group as the workers when there are several. A subscriber acknowledges each message as it arrives
(paho's manual ack, the call ingest makes after its commit), stops after it has been idle for
`idle_s` once messages flowed, and prints JSON: its first and last receive times (Unix seconds)
and its count. The rate is all counts over (last of all - first of all).

Run as `python -m benchmarks.ingest.broker_baseline URL CLIENT_ID GROUP|- TIMEOUT_S`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import topics


def drain(
    mqtt_url: str, client_id: str, share_group: str | None, timeout_s: float, idle_s: float = 2.0
) -> dict:
    """Receive and acknowledge what the broker holds for `client_id` until idle; the counts and times."""
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311
    )
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    client.manual_ack_set(True)
    lock = threading.Lock()
    seen = {"count": 0, "first_s": 0.0, "last_s": 0.0}

    def on_message(c: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        c.ack(message.mid, message.qos)
        with lock:
            if seen["count"] == 0:
                seen["first_s"] = now
            seen["count"] += 1
            seen["last_s"] = now

    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe(
        topics.subscription_for(topics.TELEMETRY, share_group), qos=1
    )
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            with lock:
                if seen["count"] and time.time() - seen["last_s"] > idle_s:
                    break
    finally:
        client.disconnect()
        client.loop_stop()
    return dict(seen)


def measure(
    mqtt_url: str, client_ids: list[str], share_group: str | None, expected: int, timeout_s: float
) -> dict:
    """Start one subscriber process per client id, wait for them, and combine. Raises RuntimeError
    when they did not receive `expected` messages in all."""
    command = [sys.executable, "-m", "benchmarks.ingest.broker_baseline", mqtt_url]
    procs = [
        subprocess.Popen(
            [*command, cid, share_group or "-", str(timeout_s)], stdout=subprocess.PIPE, text=True
        )
        for cid in client_ids
    ]
    results = [json.loads(p.communicate(timeout=timeout_s + 30)[0]) for p in procs]
    for cid in client_ids:
        _discard_session(mqtt_url, cid)  # the later phases' messages are not queued for it
    received = sum(r["count"] for r in results)
    if received != expected:
        raise RuntimeError(f"the baseline subscribers received {received} of {expected} messages")
    span_s = max(r["last_s"] for r in results) - min(r["first_s"] for r in results if r["count"])
    return {
        "subscribers": len(client_ids),
        "messages": received,
        "drain_s": round(span_s, 3),
        "messages_per_s": round(received / span_s) if span_s > 0 else None,
    }


def _discard_session(mqtt_url: str, client_id: str) -> None:
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311
    )
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.disconnect()


if __name__ == "__main__":
    url, cid, group, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    print(json.dumps(drain(url, cid, None if group == "-" else group, timeout)))
