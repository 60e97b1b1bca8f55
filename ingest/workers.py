"""Several ingest workers on one machine: one child process per worker, kept alive.

Owns: starting the workers, restarting one that dies (with backoff), and stopping them all on
SIGINT/SIGTERM. Python runs one flush pipeline per core at most, so scaling out is processes, each
with its own MQTT session and database connection, sharing the topic through an MQTT shared
subscription (`$share/<group>/fleet/v1/+/telemetry`): the broker hands each message to one worker.
A worker keeps its client id across restarts (`<client_id>-<index>`), so its persistent session and
the messages queued in it survive a crash.

Brokers: Mosquitto (also for MQTT 3.1.1 clients) and EMQX support shared subscriptions; amqtt,
the embedded broker, does not, so `fleet ingest` runs one worker there.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)


def supervise(commands: Sequence[Sequence[str]], env: dict[str, str], max_backoff_s: float = 10.0) -> None:
    """Run one child per command until SIGINT/SIGTERM, restarting children that exit."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: list[subprocess.Popen[bytes] | None] = [None] * len(commands)
    backoff = [0.5] * len(commands)
    next_start = [0.0] * len(commands)
    try:
        while not stopping:
            now = time.monotonic()
            for i, command in enumerate(commands):
                proc = procs[i]
                if proc is not None and proc.poll() is not None:
                    log.warning(
                        "worker %d exited with %s; restarting in %.1f s", i, proc.returncode, backoff[i]
                    )
                    next_start[i] = now + backoff[i]
                    backoff[i] = min(backoff[i] * 2, max_backoff_s)
                    procs[i] = proc = None
                if proc is None and now >= next_start[i]:
                    procs[i] = subprocess.Popen(list(command), env=env)
                    log.info("worker %d started (pid %d)", i, procs[i].pid)  # type: ignore[union-attr]
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in procs:
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
