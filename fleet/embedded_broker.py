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


def _broker_class() -> type:
    from amqtt.broker import Broker

    class FleetBroker(Broker):
        """Two fixes to amqtt 0.12.1.

        1. amqtt acknowledges a QoS 1 PUBLISH when it queues it, not when it routes it, and drops
           the queue when the publisher disconnects: acknowledged messages were lost (measured:
           about a third of a 300-message burst). Route whatever is still queued before the session
           ends.
        2. On every connect amqtt sends the client the retained messages of every topic filter that
           *any* session subscribed to, whether or not this client subscribed to it, and without
           the ACL: a new subscriber to telemetry received retained `status` messages, and a vehicle
           could receive another vehicle's retained campaign. Send retained messages only for
           filters this session holds."""

        async def _publish_retained_messages_for_subscription(self, subscription, session):  # noqa: ANN001, ANN202
            holders = self._subscriptions.get(subscription[0], ())
            if not any(held is session for held, _ in holders):
                return
            await super()._publish_retained_messages_for_subscription(subscription, session)

        async def _handle_disconnect(self, client_session, handler, disconnect_waiter):  # noqa: ANN001, ANN202
            queue = client_session.delivered_message_queue
            loop = asyncio.get_running_loop()
            while not queue.empty():
                delivered = loop.create_future()
                delivered.set_result(queue.get_nowait())
                await self._handle_message_delivery(client_session, handler, delivered)
            await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    return FleetBroker


async def _serve(config: dict) -> None:
    broker = _broker_class()(config)
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
