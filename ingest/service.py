"""The ingest service: subscribe with aiomqtt, buffer, and flush to the store by size or by time.

Owns: the MQTT side and the flush loop. Decoding and checks are `ingest.pipeline`, SQL is
`ingest.store`. A lost broker is reconnected with backoff; a lost database keeps the buffered
messages and retries the same flush, so nothing received is dropped while the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field

import aiomqtt
from aiomqtt import ProtocolVersion

from contract import topics
from contract.endpoint import MqttEndpoint
from ingest import metrics
from ingest.pipeline import Envelope, Triage, triage
from ingest.store import StorageUnavailable, TelemetryStore, WriteResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    flush_interval_s: float = 0.5
    max_buffer_messages: int = 2_000
    client_id: str = "fleet-ingest"
    share_group: str | None = None
    reconnect_max_s: float = 10.0
    storage_retry_max_s: float = 5.0


@dataclass
class IngestTotals:
    """What this process has done since start; the demo and tests read it."""

    messages: int = 0
    batches: int = 0
    rows: int = 0
    samples: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    flushes: int = 0
    storage_failures: int = 0
    last_write: WriteResult | None = field(default=None, repr=False)


class IngestService:
    def __init__(
        self, endpoint: MqttEndpoint, store: TelemetryStore, config: IngestConfig | None = None
    ) -> None:
        self._endpoint = endpoint
        self._store = store
        self._config = config or IngestConfig()
        self._buffer: list[Envelope] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.subscribed = asyncio.Event()
        self.totals = IngestTotals()

    async def run(self) -> None:
        """Run until cancelled: receive forever, flush in the background, flush once more at the end."""
        flusher = asyncio.create_task(self._flush_loop())
        try:
            await self._receive_forever()
        finally:
            # Let an in-flight flush finish rather than cancel it mid-transaction, then flush the rest.
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, StorageUnavailable):
                await asyncio.shield(flusher)
            with contextlib.suppress(StorageUnavailable):
                await self._flush_once()

    async def _receive_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._client() as client:
                    for kind in (topics.TELEMETRY,):
                        await client.subscribe(topics.subscription_for(kind, self._config.share_group), qos=1)
                    self.subscribed.set()
                    delay = 0.5
                    async for message in client.messages:
                        self._accept(message)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                metrics.BROKER_DISCONNECTS.inc()
                log.warning("broker connection lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.reconnect_max_s)

    def _client(self) -> aiomqtt.Client:
        tls = ssl.create_default_context() if self._endpoint.tls else None
        return aiomqtt.Client(
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

    def _accept(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        self._buffer.append(Envelope(str(message.topic), bytes(payload), time.time_ns()))
        self.totals.messages += 1
        metrics.MESSAGES.inc()
        if len(self._buffer) >= self._config.max_buffer_messages:
            self._wake.set()

    async def _flush_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.flush_interval_s)
            self._wake.clear()
            delay = 0.2
            while True:
                try:
                    await self._flush_once()
                    break
                except StorageUnavailable as exc:
                    if self._stopping:
                        raise
                    self.totals.storage_failures += 1
                    metrics.STORAGE_FAILURES.inc()
                    log.warning("database unavailable (%s); retrying flush in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._config.storage_retry_max_s)

    async def _flush_once(self) -> None:
        if not self._buffer:
            return
        pending, self._buffer = self._buffer, []
        started = time.perf_counter()
        try:
            result, triaged = await asyncio.to_thread(self._triage_and_write, pending)
        except StorageUnavailable:
            self._buffer[:0] = pending  # keep order: the failed flush goes first next time
            raise
        metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
        for dead in triaged.dead:
            metrics.DEAD_LETTERS.labels(reason=dead.reason).inc()
            log.info("dead letter on %s: %s (%s)", dead.topic, dead.reason, dead.detail)
        self._count(result)

    def _triage_and_write(self, pending: list[Envelope]) -> tuple[WriteResult, Triage]:
        triaged = triage(pending)
        return self._store.write(triaged), triaged

    def _count(self, result: WriteResult) -> None:
        t = self.totals
        t.flushes += 1
        t.batches += result.batches
        t.rows += result.rows
        t.samples += result.samples
        t.duplicates += result.duplicates
        t.dead_letters += result.dead_letters
        t.last_write = result
        metrics.SAMPLES.inc(result.samples)
        metrics.ROWS.inc(result.rows)
        metrics.DUPLICATES.inc(result.duplicates)
