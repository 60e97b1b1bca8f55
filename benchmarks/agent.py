"""`fleet bench agent`: the real agent process against a real local broker, measured from outside.

Owns: starting a private Mosquitto (or, without the binary, the embedded amqtt broker), running
the agent service (`python -m edge_agent` as systemd runs it, or `fleet agent` with
`entry="fleet"`) as a child process with the simulated source sampling every catalogue signal at
the base rate, and measuring that child with psutil: CPU share of one core over the measured window,
peak RSS (the kernel's VmHWM), and wire bytes per sample from the agent's own stats file. The
process measured is exactly the service a car runs; the broker's CPU is not counted.

The broker is `localservers.mosquitto.MosquittoProcess`, which the agent's tests also stop and restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from contract.credentials import vehicle_password
from edge_agent.sources.simulated import SimulatedSource

BENCH_VEHICLE = "BENCH-1"
MQTT_PUBLISH_OVERHEAD_BYTES = 2 + 2 + 2  # fixed header (2 for < 16 KiB), topic length, packet id


@contextlib.contextmanager
def local_broker(work_dir: Path, vehicle_id: str, fleet_secret: str) -> Iterator[tuple[str, int, str]]:
    """Yield (name, port, vehicle password): Mosquitto if installed, else the embedded amqtt."""
    from localservers.mosquitto import MosquittoProcess, find_mosquitto

    password = vehicle_password(fleet_secret, vehicle_id)
    if find_mosquitto() is not None:
        broker = MosquittoProcess(work_dir / "mosquitto", accounts={vehicle_id: password}, persistence=True)
        broker.start()
        try:
            yield "mosquitto", broker.port, password
        finally:
            broker.stop()
        return
    from localservers.embedded import BrokerAccounts, EmbeddedBroker

    embedded = EmbeddedBroker(BrokerAccounts(fleet_secret=fleet_secret))
    embedded.start()
    try:
        yield "amqtt", embedded.port, password
    finally:
        embedded.stop()


def agent_command() -> list[str]:
    fleet = Path(sys.executable).with_name("fleet")
    if fleet.exists():
        return [str(fleet)]
    return [sys.executable, "-c", "from fleet.cli import app; app()"]


def write_agent_config(
    directory: Path,
    *,
    vehicle_id: str,
    port: int,
    password: str,
    extra: str = "",
    period_ms: int = 1000,
    base_rate_hz: float = 10.0,
) -> Path:
    """An agent.toml for a local broker, password in a file next to it (mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "mqtt-password"
    secret.write_text(password)
    secret.chmod(0o600)
    path = directory / "agent.toml"
    path.write_text(
        f'[vehicle]\nid = "{vehicle_id}"\n\n'
        f'[broker]\nurl = "mqtt://127.0.0.1:{port}"\npassword_file = "mqtt-password"\n'
        "backoff_initial_s = 0.2\nbackoff_max_s = 2.0\n\n"
        f'[agent]\nstate_dir = "state"\n\n'
        f"[sampling]\ndefault_period_ms = {period_ms}\nbase_rate_hz = {base_rate_hz}\n"
        "flush_interval_s = 1.0\n\n"
        f"{extra}"
    )
    return path


def run_agent_bench(
    *,
    duration_s: float = 30.0,
    rate_hz: float = 10.0,
    warmup_s: float = 3.0,
    entry: str = "module",
    command: list[str] | None = None,
) -> dict:
    """Run and measure; returns the figures `fleet bench agent --json` prints. `entry` is "fleet"
    (`fleet agent --config`) or "module" (`python -m edge_agent --config`, without the CLI imports);
    `command` replaces both (a wrapper that takes `--config FILE --log-level LEVEL`)."""
    import psutil

    from contract.credentials import new_secret

    period_ms = max(10, round(1000 / rate_hz))
    with tempfile.TemporaryDirectory(prefix="fleet-bench-agent-") as tmp:
        work = Path(tmp)
        with local_broker(work, BENCH_VEHICLE, new_secret()) as (broker_name, port, password):
            config = write_agent_config(
                work / "agent",
                vehicle_id=BENCH_VEHICLE,
                port=port,
                password=password,
                period_ms=period_ms,
                base_rate_hz=rate_hz,
                extra='[source]\nkind = "simulated"\nseed = 1\n',
            )
            if command is None:
                command = (
                    [*agent_command(), "agent"] if entry == "fleet" else [sys.executable, "-m", "edge_agent"]
                )
            proc = subprocess.Popen(
                [*command, "--config", str(config), "--log-level", "WARNING"], stdout=subprocess.DEVNULL
            )
            try:
                ps = psutil.Process(proc.pid)
                time.sleep(warmup_s)
                cpu0 = ps.cpu_times()
                t0 = time.monotonic()
                peak_rss = ps.memory_info().rss
                while time.monotonic() - t0 < duration_s:
                    time.sleep(0.5)
                    peak_rss = max(peak_rss, ps.memory_info().rss)
                cpu1 = ps.cpu_times()
                wall = time.monotonic() - t0
                hwm = _vm_hwm_bytes(proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
            stats = json.loads((work / "agent" / "state" / "stats.json").read_text())
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    samples = max(stats["samples_acked"], 1)
    return {
        "broker": broker_name,
        "entry": " ".join(command),
        "signals": stats.get("signals", len(SimulatedSource().available_paths)),
        "rate_hz": rate_hz,
        "measured_s": round(wall, 2),
        "cpu_share_of_one_core_pct": round(100 * cpu_s / wall, 2),
        "peak_rss_mb": round(max(peak_rss, hwm or 0) / 2**20, 1),
        "samples_acked": stats["samples_acked"],
        "batches_acked": stats["batches_acked"],
        "wire_bytes_per_sample": round(stats["telemetry_bytes_acked"] / samples, 3),
        "mqtt_bytes_per_sample": round(
            (
                stats["telemetry_bytes_acked"]
                + stats["batches_acked"]
                * (MQTT_PUBLISH_OVERHEAD_BYTES + len(f"fleet/v1/{BENCH_VEHICLE}/telemetry"))
            )
            / samples,
            3,
        ),
        "dropped_batches": stats["dropped_batches"],
        "offline_bytes_per_sample_1s_batches": compare_wire_formats(rate_hz=rate_hz, batch_s=1.0),
        "offline_bytes_per_sample_10s_batches": compare_wire_formats(rate_hz=rate_hz, batch_s=10.0),
        "targets": {"cpu_share_of_one_core_pct": 5.0, "peak_rss_mb": 60.0, "wire_bytes_per_sample": 2.0},
    }


def compare_wire_formats(
    *, seconds: int = 60, rate_hz: float = 10.0, batch_s: float = 1.0
) -> dict[str, float]:
    """Bytes per sample of the wire format on the simulated data, in-process, per batch length (the
    longer the batch, the better zlib compresses it)."""
    import numpy as np

    from contract import wire_v1
    from contract.batch import TelemetryBatch
    from contract.signals import BY_PATH
    from edge_agent.sources.simulated import SimulatedSource

    step_ns = round(1e9 / rate_hz)
    clock = iter(range(1_700_000_000_000_000_000, 2**63, step_ns))
    source = SimulatedSource(seed=1, clock_ns=lambda: next(clock))
    paths = [p for p in BY_PATH if p in source.available_paths]
    rows = [source.read(paths, 0.0) for _ in range(round(seconds * rate_hz))]
    per_batch = max(1, round(batch_s * rate_hz))
    v1 = samples = 0
    for i in range(0, len(rows), per_batch):
        chunk = rows[i : i + per_batch]
        batch = TelemetryBatch(
            BENCH_VEHICLE,
            i,
            np.array([r.ts_ns for r in chunk], dtype=np.int64),
            {p: np.array([r.values[p] for r in chunk]) for p in paths},
        )
        v1 += len(wire_v1.encode(batch))
        samples += batch.n_samples
    return {"wire_v1": round(v1 / samples, 3)}


def _vm_hwm_bytes(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


if __name__ == "__main__":  # pragma: no cover - manual use
    print(json.dumps(run_agent_bench(duration_s=float(os.environ.get("DURATION_S", "10")))))
