"""The ingest service: subscribe, buffer, and store by size or by time; acknowledge after commit.

Owns: the MQTT side, when to flush, and when to acknowledge. Decoding and checks are
`ingest.pipeline`/`ingest.flush`, isolating a hostile message is `ingest.preparation`, SQL is
`ingest.store`.

No loss, no duplicates: the client uses a persistent session (clean_session=False, a fixed client
id) and subscribes with QoS 1, and every message is acknowledged (PUBACK) only after the
transaction holding its rows has committed. A crash before the commit leaves the message
unacknowledged and the broker delivers it again; a crash between commit and PUBACK makes the broker
deliver a batch that is already stored, and the (vehicle, seq) ledger drops it. aiomqtt 2.5 has no
manual-ack API, so this module switches paho's manual acknowledgement on through the aiomqtt
client's underlying paho client (`Client._client`, stable across aiomqtt 2.x, which we pin) and
calls paho's `ack(mid, qos)` on the event-loop thread; that keeps aiomqtt's disconnect detection.
A message received on an earlier connection is stored but never acknowledged on a later one (its
packet id means nothing there); the broker redelivers it and the ledger drops the copy.
For the same reason of version pinning, the receive loop also takes messages that are already
queued straight from aiomqtt's queue (`Client._queue`) instead of one `async for` step each: the
iterator creates a task and an `asyncio.wait` per message, which halved the receive rate.
aiomqtt reads one MQTT packet per readable event of the socket (paho's `loop_read` reads one packet
when nothing is in flight), so every message paid a whole event-loop turn and a queue wake-up; the
client's `loop_read` is wrapped (`_read_in_bursts`) to go on reading while the socket still has
data, up to `read_burst_packets`, so that a backlog arrives in bursts and is buffered in one go.

Throughput: flush k+1 is decoded, validated and COPY-encoded in a worker thread while flush k is in
PostgreSQL (two stages, one flush queued between them). A flush is cut as soon as the writer's
queue has room -- group commit: at light load every message is stored at once, and the busier the
database, the bigger the flushes -- or when the buffer reaches `max_buffer_messages` or
`max_buffer_bytes`, or when `flush_interval_s` has passed since its first message. Preparing stops
at `max_flush_memory_bytes` (estimated from its decoded rows and signals); what is left waits, in
order, for the next flush.

Failures: a lost broker is reconnected with backoff; a lost database keeps the prepared flush and
retries it (in order) with backoff, and the unacknowledged messages stay the broker's to keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import ssl
import time
from dataclasses import dataclass

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt import ProtocolVersion

from contract import topics
from contract.accounts import login_endpoint
from contract.endpoint import MqttEndpoint
from ingest import metrics
from ingest.flush import PreparedFlush
from ingest.pipeline import Envelope
from ingest.preparation import prepare_isolated
from ingest.store import StorageUnavailable, TelemetryStore, WriteResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """How the service buffers and flushes. `client_id` must stay the same across restarts: the
    broker keeps the persistent session (and the messages queued while ingest was down) under it.
    It is a login of the ingest account (`fleet-ingest` or `fleet-ingest-<suffix>`,
    `contract.accounts`), and the service logs in with it.
    `share_group` makes the subscription `$share/<group>/...` (several workers, Mosquitto/EMQX)."""

    flush_interval_s: float = 0.5
    max_buffer_messages: int = 2_000
    client_id: str = "fleet-ingest"
    share_group: str | None = None
    reconnect_max_s: float = 10.0
    storage_retry_max_s: float = 5.0
    max_buffer_bytes: int = 4 << 20  # ~50-80k rows of typical frames: long enough COPYs, short waits
    # Frames inflate, so wire bytes do not bound memory: a flush also stops at this much decoded,
    # prepared data (ingest.pipeline.flush_memory_bytes; a bench flush of 90k rows x 12 signals is
    # ~58 MB by that estimate). docs/scaling.md gives the process's memory bound from it.
    max_flush_memory_bytes: int = 64 << 20
    flush_poll_s: float = 0.002  # how often a waiting flush re-checks its deadline
    read_burst_packets: int = 256  # packets read per readable event at most (~10 ms of the loop)
    shutdown_drain_s: float = 10.0


@dataclass
class IngestTotals:
    """What this process has done since start; the demo and tests read it."""

    messages: int = 0
    batches: int = 0
    rows: int = 0
    samples: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    dtc_reports: int = 0
    update_reports: int = 0
    flushes: int = 0
    storage_failures: int = 0
    acked: int = 0


@dataclass(frozen=True, slots=True)
class _Received:
    envelope: Envelope
    mid: int
    qos: int
    connection: int  # which broker connection delivered it: acks are only valid on that one


class IngestService:
    def __init__(
        self, endpoint: MqttEndpoint, store: TelemetryStore, config: IngestConfig | None = None
    ) -> None:
        self._config = config or IngestConfig()
        # The client id is also the login (contract.accounts): fleet-ingest-3 logs in as itself
        # with the account's password. Raises ClientIdError for an id the account does not own.
        self._endpoint = login_endpoint(endpoint, self._config.client_id)
        self._store = store
        self._buffer: list[_Received] = []
        self._buffer_bytes = 0
        self._first_at = 0.0
        self._wake = asyncio.Event()
        self._prepared: asyncio.Queue[tuple[list[_Received], PreparedFlush]] = asyncio.Queue(maxsize=1)
        self._connection = 0
        self._paho: object | None = None  # the paho client of the live connection, for acks
        self.subscribed = asyncio.Event()
        self.totals = IngestTotals()

    async def run(self) -> None:
        """Run until cancelled. On cancellation, store and acknowledge what was received (for at most
        `shutdown_drain_s`), then disconnect; whatever is left unacknowledged the broker redelivers.

        Raises whatever broke a pipeline stage (a bug, not bad data or a lost server): exiting to be
        restarted, with nothing acknowledged that is not stored, beats running on without storing."""
        stages = [asyncio.create_task(self._flush_loop()), asyncio.create_task(self._write_loop())]
        receiver = asyncio.create_task(self._receive_forever())
        try:
            done, _ = await asyncio.wait([receiver, *stages], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            receiver.cancel()  # it drains through the stages, so they stop after it
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
            for task in stages:
                task.cancel()
            for task in stages:
                with contextlib.suppress(asyncio.CancelledError, StorageUnavailable):
                    await task

    async def _receive_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._client() as client:
                    self._connection += 1
                    self._paho = client._client  # noqa: SLF001  # manual ack: see the module docstring
                    consuming = asyncio.create_task(self._consume(client))
                    try:
                        await self._subscribe(client)
                        delay = 0.5
                        await consuming
                    except asyncio.CancelledError:
                        consuming.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await consuming
                        await self._drain()
                        raise
                    finally:
                        consuming.cancel()
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                self._paho = None
                metrics.BROKER_DISCONNECTS.inc()
                log.warning("broker connection lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.reconnect_max_s)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        """Subscribe while `_consume` already runs: a persistent session's queued messages may come
        before the SUBACK, and a broker that sends the SUBACK only once they are acknowledged (amqtt
        does, waiting 5 s and then dropping them) must get its acks from us."""
        group = self._config.share_group
        await client.subscribe([(topics.subscription_for(kind, group), 1) for kind in topics.UPLINK_KINDS])
        self.subscribed.set()
        log.info("subscribed", extra={"client_id": self._config.client_id})

    async def _consume(self, client: aiomqtt.Client) -> None:
        queue = client._queue  # noqa: SLF001  # see the module docstring
        async for message in client.messages:
            self._accept(message)
            while not queue.empty():
                self._accept(queue.get_nowait())

    def _client(self) -> aiomqtt.Client:
        tls = ssl.create_default_context() if self._endpoint.tls else None
        client = aiomqtt.Client(
            hostname=self._endpoint.host,
            port=self._endpoint.port,
            username=self._endpoint.username,
            password=self._endpoint.password,
            identifier=self._config.client_id,
            protocol=ProtocolVersion.V311,
            clean_session=False,
            tls_context=tls,
            keepalive=30,
        )
        client._client.manual_ack_set(True)  # noqa: SLF001  # see the module docstring
        _read_in_bursts(client._client, self._config.read_burst_packets)  # noqa: SLF001
        return client

    def _accept(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        if not self._buffer:
            self._first_at = time.monotonic()
            self._wake.set()
        envelope = Envelope(str(message.topic), bytes(payload), time.time_ns(), bool(message.retain))
        self._buffer.append(_Received(envelope, message.mid, message.qos, self._connection))
        self._buffer_bytes += len(payload)
        self.totals.messages += 1
        metrics.MESSAGES.inc()
        cfg = self._config
        if len(self._buffer) >= cfg.max_buffer_messages or self._buffer_bytes >= cfg.max_buffer_bytes:
            self._wake.set()

    async def _flush_loop(self) -> None:
        """Cut flushes and prepare them (CPU, in a thread) while the writer stores the previous one.

        A flush is cut as soon as the writer's queue has room (group commit: the busier the
        database, the bigger the flushes), or when it is full or `flush_interval_s` old."""
        cfg = self._config
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), cfg.flush_poll_s if self._buffer else 0.25)
            self._wake.clear()
            metrics.BUFFERED.set(len(self._buffer))
            if not self._buffer:
                continue
            room = self._prepared.empty()
            due = time.monotonic() - self._first_at >= cfg.flush_interval_s
            full = len(self._buffer) >= cfg.max_buffer_messages or self._buffer_bytes >= cfg.max_buffer_bytes
            if room or due or full:
                await self._cut_flush()

    async def _cut_flush(self) -> None:
        """Prepare the oldest buffered messages as one flush and queue it for the writer. Messages
        beyond the flush's decoded-size cap go back to the front of the buffer, in order."""
        cap = self._config.max_buffer_messages
        received, self._buffer = self._buffer[:cap], self._buffer[cap:]
        self._buffer_bytes -= sum(len(r.envelope.payload) for r in received)  # not the whole rest
        prepared, consumed = await asyncio.to_thread(self._prepare, [r.envelope for r in received])
        if consumed < len(received):
            received, deferred = received[:consumed], received[consumed:]
            self._buffer[:0] = deferred
            self._buffer_bytes += sum(len(r.envelope.payload) for r in deferred)
        if self._buffer:
            self._first_at = time.monotonic()
            self._wake.set()
        await self._prepared.put((received, prepared))

    def _prepare(self, envelopes: list[Envelope]) -> tuple[PreparedFlush, int]:
        started = time.perf_counter()
        prepared, consumed = prepare_isolated(
            envelopes, self._store.prepare, self._config.max_flush_memory_bytes
        )
        if prepared.n_envelopes != consumed:  # a bug: say so loudly, but the flush is still stored
            log.error("a flush accounts for %d of its %d messages", prepared.n_envelopes, consumed)
        metrics.PREPARE_SECONDS.observe(time.perf_counter() - started)
        return prepared, consumed

    async def _write_loop(self) -> None:
        while True:
            received, prepared = await self._prepared.get()
            self._wake.set()  # the queue has room again: the flusher may cut the next flush
            result = await self._write_with_retry(prepared)
            self._acknowledge(received)
            self._count(result)
            self._prepared.task_done()

    async def _write_with_retry(self, prepared: PreparedFlush) -> WriteResult:
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                result = await asyncio.to_thread(self._store.write_prepared, prepared)
            except StorageUnavailable as exc:
                self.totals.storage_failures += 1
                metrics.STORAGE_FAILURES.inc()
                log.warning("database unavailable (%s); retrying flush in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.storage_retry_max_s)
                continue
            metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
            return result

    def _acknowledge(self, received: list[_Received]) -> None:
        """PUBACK every message of a committed flush that arrived on the live connection."""
        paho = self._paho
        if paho is None:
            return
        ack = paho.ack  # type: ignore[attr-defined]
        acked = 0
        for r in received:
            if r.connection == self._connection and r.qos > 0:
                ack(r.mid, r.qos)
                acked += 1
        self.totals.acked += acked

    async def _drain(self) -> None:
        """On shutdown: cut what is buffered and wait (bounded) until it is stored and acknowledged."""
        with contextlib.suppress(TimeoutError, StorageUnavailable):
            async with asyncio.timeout(self._config.shutdown_drain_s):
                while self._buffer:
                    await self._cut_flush()
                await self._prepared.join()

    def _count(self, result: WriteResult) -> None:
        t = self.totals
        t.flushes += 1
        t.batches += result.batches
        t.rows += result.rows
        t.samples += result.samples
        t.duplicates += result.duplicates
        t.dead_letters += result.dead_letters
        t.dtc_reports += result.dtc_reports
        t.update_reports += result.update_reports
        metrics.record_write(result)
        if (
            result.batches
            or result.dead_letters
            or result.duplicates
            or result.dtc_reports
            or result.update_reports
        ):
            log.debug(
                "flush stored",
                extra={
                    "batches": result.batches,
                    "rows": result.rows,
                    "samples": result.samples,
                    "duplicates": result.duplicates,
                    "dead_letters": result.dead_letters,
                    "dtc_reports": result.dtc_reports,
                    "update_reports": result.update_reports,
                },
            )
        for reason in set(result.dead_reasons):
            log.info("dead letters", extra={"reason": reason, "count": result.dead_reasons.count(reason)})


def _read_in_bursts(paho: mqtt.Client, max_packets: int) -> None:
    """Make `paho.loop_read()` (which aiomqtt calls once per readable event) read on while the
    socket has more data, up to `max_packets` packets. A zero-timeout poll tells whether more is
    there; TLS-decoded bytes that the socket holds (`pending`) aiomqtt's caller already drains.
    Errors surface exactly as before: the first failing read returns its code or raises."""
    read_one = paho.loop_read
    poller: select.poll | None = None
    polled: object = None

    def loop_read(hint: int = 1) -> mqtt.MQTTErrorCode:
        nonlocal poller, polled
        rc = read_one(hint)
        sock = paho.socket()
        if sock is None:
            return rc
        if sock is not polled:  # a new connection: watch its socket
            poller, polled = select.poll(), sock
            poller.register(sock.fileno(), select.POLLIN)
        n = 1
        while rc == mqtt.MQTT_ERR_SUCCESS and n < max_packets and poller is not None and poller.poll(0):
            rc = read_one(hint)
            n += 1
        return rc

    paho.loop_read = loop_read  # type: ignore[method-assign,assignment]
