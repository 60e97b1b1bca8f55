"""Process entry point of the embedded amqtt broker (MQTT 3.1.1 only).

Started by `fleet.embedded.EmbeddedBroker` as `python -m fleet.embedded_broker`. The broker
configuration, which holds secrets, arrives in an environment variable rather than argv so that it
never shows in a process list. Prints `ready` once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

CONFIG_ENV = "FLEET_EMBEDDED_BROKER_CONFIG"


async def _serve(config: dict) -> None:
    from amqtt.broker import Broker

    broker = Broker(config)
    await broker.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    config = json.loads(os.environ.pop(CONFIG_ENV))
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
