"""Process entry point of the embedded amqtt broker (MQTT 3.1.1 only).

Started by `localservers.embedded.EmbeddedBroker` as `python -m localservers.embedded_broker`. The broker
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
    from amqtt.errors import AMQTTError, MQTTError, NoDataError
    from amqtt.events import MQTTEvents
    from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
    from amqtt.utils import gen_client_id

    class FleetBroker(Broker):
        """Three fixes to amqtt 0.12.1.

        1. amqtt acknowledges a QoS 1 PUBLISH when it queues it, not when it routes it, and drops
           the queue when the publisher disconnects: acknowledged messages were lost (measured:
           about a third of a 300-message burst). Route whatever is still queued before the session
           ends.
        2. On every connect amqtt sends the client the retained messages of every topic filter that
           *any* session subscribed to, whether or not this client subscribed to it, and without
           the ACL: a new subscriber to telemetry received retained `status` messages, and a vehicle
           could receive another vehicle's retained campaign. Send retained messages only for
           filters this session holds.
        3. amqtt looks up the session of the CONNECT's client id before it authenticates the
           client: with clean_session it deletes that session (subscriptions and queued messages),
           without it hands the session over, and it disconnects a connected holder; only then
           does it refuse a client that failed authentication. A client that the auth plugin
           refused (wrong password, or a client id not its own: `contract.accounts`) thus took over
           or wiped another client's session: ingest's queued messages vanished. Authenticate the
           CONNECT first and refuse it (CONNACK "not authorised") before any session is touched.
           The rest of `_initialize_client_session` is amqtt's, unchanged."""

        async def _initialize_client_session(self, reader, writer, remote_address, remote_port):  # noqa: ANN001, ANN202
            try:
                handler, client_session = await BrokerProtocolHandler.init_from_connect(
                    reader, writer, self.plugins_manager
                )
            except (AMQTTError, NoDataError) as exc:
                raise AMQTTError(exc) from exc
            except MQTTError:
                await writer.close()
                raise
            if not await self._authenticate(client_session, None):
                connack = ConnackPacket.build(0, NOT_AUTHORIZED)
                await self.plugins_manager.fire_event(MQTTEvents.PACKET_SENT, packet=connack)
                await connack.to_stream(writer)
                await writer.close()
                raise MQTTError(f"refused client id {client_session.client_id!r}: not authorised")
            if client_session.clean_session:
                if client_session.client_id:
                    await self._delete_session(client_session.client_id)
                else:
                    client_session.client_id = gen_client_id()
                client_session.parent = 0
            elif client_session.client_id in self._sessions:
                existing, _ = self._sessions[client_session.client_id]
                for name in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive"):
                    setattr(existing, name, getattr(client_session, name))
                existing.username, existing.password = client_session.username, client_session.password
                client_session = existing
                client_session.parent = 1
            else:
                client_session.parent = 0
            delay = self.config.get("timeout-disconnect-delay", 0)
            if client_session.keep_alive > 0 and isinstance(delay, int):
                client_session.keep_alive += delay
            return handler, client_session

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
