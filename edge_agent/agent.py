"""The agent's imperative shell, its orchestrator: source -> collector -> spool -> sender, in one loop.

Owns: timing (read the source at the campaign's base rate, flush and fsync every flush interval),
applying campaigns received on the config topic, handing commands (update offers, consents) to the
OTA wiring and its signed reports to the spool, the check-in and the stats file. The work itself
lives in other modules: the decisions in pure ones (`collector`, `sampling`, `trigger`,
`expression`), store-and-forward in `spool_router`, draining the spool fairly over the link in
`sender`, the connection in `link`, and OTA in `agent_ota` and `edge_agent.ota`.

Never a crash loop: the spool (`edge_agent.spool_router`) rides out a full or failing disk in
memory, a campaign that cannot be saved still runs, and a step of the loop that fails anyway is
logged (rate-limited), counted (`loop_errors`) and the loop goes on: under systemd's
`Restart=always` a crash would only restart the agent into the same state.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from contract import topics, wire_v1
from contract.batch import TelemetryBatch
from contract.dtc import dtc_message
from contract.errors import DecodeError, EncodeError
from contract.signals import BY_PATH, WireType
from contract.software import versions_of
from edge_agent.agent_ota import AgentOta
from edge_agent.campaign import Campaign, CampaignError, default_campaign, parse_campaign, supersedes
from edge_agent.collector import PRIORITY_DTC, PRIORITY_LOW, Chunk, Collector, merge_chunks
from edge_agent.config import AgentConfig
from edge_agent.link import AgentLink, LinkConfig
from edge_agent.ratelimit import LogThrottle
from edge_agent.sender import Sender
from edge_agent.sources.base import Source, SourceError
from edge_agent.spool_budget import check_max_bytes, largest_batch_bytes
from edge_agent.spool_router import Spool

log = logging.getLogger(__name__)


def _package_version() -> str:
    try:
        return importlib.metadata.version("fleetpulse")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


AGENT_VERSION = _package_version()
TS_RESOLUTION_NS = 1_000_000
MAX_BATCH_ROWS = 5_000  # below wire_v1.MAX_ROWS; a frame still too big is split in halves
MAX_CORRUPT_FILES_IN_CHECKIN = 5  # the newest; the check-in must stay small (16 KiB at ingest)


@dataclass
class AgentStats:
    rows_read: int = 0
    samples_read: int = 0
    source_errors: int = 0
    samples_collected: int = 0  # in every chunk the collector produced: kept, sent or dropped later
    batches_queued: int = 0
    samples_queued: int = 0
    dtc_messages_queued: int = 0
    triggers_fired: int = 0
    campaigns_applied: int = 0
    campaigns_rejected: int = 0
    last_campaign_error: str = ""
    loop_errors: int = 0
    values_unsendable: int = 0  # readings dropped because wire v1 cannot carry them (inf, beyond float32)


@dataclass
class _Schedule:
    """When each periodic task of the loop is next due (monotonic seconds)."""

    tick: float
    flush: float
    cut: float
    checkin: float
    stats: float


class Agent:
    """One vehicle's agent. `run(stop)` blocks until `stop` is set; everything else is for tests."""

    def __init__(
        self,
        config: AgentConfig,
        source: Source,
        *,
        client_id: str | None = None,
        manage_source: bool = True,
        ota_probe: Callable[[str], None] | None = None,
    ) -> None:
        """`manage_source=False`: the caller opens and closes `source` (a shared test session).
        `ota_probe`: the installer's probe (the tests stop the process at a step of an install)."""
        self.config = config
        self.source = source
        self._manage_source = manage_source
        self.stats = AgentStats()
        # The A/B slots under the state directory and the OTA client (edge_agent.agent_ota).
        self.ota = AgentOta(config, source.available_paths, self._put_report, self._commit, probe=ota_probe)
        self.installer = self.ota.installer
        self.software = self.installer.inventory()
        self.queue = Spool(
            config.queue_path, config.queue_max_bytes, memory_max_bytes=config.queue_memory_max_bytes
        )
        self._throttle = LogThrottle(log)
        self.campaign = self._initial_campaign()
        self._check_spool_size(self.campaign)
        self.collector = Collector(self.campaign)
        self.link = AgentLink(
            LinkConfig(
                endpoint=config.endpoint,
                vehicle_id=config.vehicle_id,
                client_id=client_id or config.vehicle_id,  # its login (contract.accounts)
                keepalive_s=config.keepalive_s,
                backoff_initial_s=config.backoff_initial_s,
                backoff_max_s=config.backoff_max_s,
                ca_file=config.ca_file,
                cert_file=config.cert_file,
                key_file=config.key_file,
                max_inflight=max(config.max_inflight * 2, 20),
            ),
            self._checkin_payload,
        )
        self._bool_paths = {s.vss_path for s in BY_PATH.values() if s.wire_type is WireType.BOOL}
        self._rows_ts: list[int] = []
        self._rows: list[dict[str, float]] = []
        self._row_dtcs: list[frozenset[str] | None] = []
        self._last_ts_ns = 0
        self._dtcs_sent: frozenset[str] | None = None
        self._spool_state = self.queue.state
        self.sender = Sender(self.queue, self.link, config.vehicle_id, config.max_inflight)
        self.ota.resume()  # an install a restart interrupted is finished (and reported) first
        self.software = self.installer.inventory()

    # -- campaigns ------------------------------------------------------------------------------
    def _initial_campaign(self) -> Campaign:
        for path in (self.config.campaign_path, self.config.campaign_file):
            if path is not None and path.exists():
                try:
                    return parse_campaign(path.read_bytes())
                except (CampaignError, OSError) as exc:
                    log.error("ignoring campaign file %s: %s", path, exc)
        paths = tuple(p for p in BY_PATH if p in self.source.available_paths)
        return default_campaign(paths, period_ms=self.config.default_period_ms).model_copy(
            update={
                "base_rate_hz": self.config.base_rate_hz,
                "flush_interval_s": self.config.flush_interval_s,
                "batch_interval_s": max(self.config.batch_interval_s, self.config.flush_interval_s),
            }
        )

    def offer_campaign(self, payload: bytes) -> bool:
        """Validate and, if newer, switch to a campaign. Returns whether it was applied."""
        try:
            campaign = parse_campaign(payload)
        except CampaignError as exc:
            self.stats.campaigns_rejected += 1
            self.stats.last_campaign_error = str(exc).splitlines()[0][:200]
            log.error("rejected campaign: %s", self.stats.last_campaign_error)
            self.link.send_checkin()
            return False
        if not supersedes(campaign, self.campaign):
            return False
        self._flush(cut=True)  # rows read so far belong to the old campaign
        try:
            _write_atomically(self.config.campaign_path, payload)
        except OSError as exc:  # e.g. a full disk: run it anyway; a restart falls back to the old one
            log.error("cannot save campaign %s (%s); running it unsaved", campaign.version_tag, exc)
        self._check_spool_size(campaign)
        self.campaign = campaign
        self.collector = Collector(campaign)
        self.stats.campaigns_applied += 1
        log.info("running campaign %s", campaign.version_tag)
        self.link.send_checkin()
        return True

    def refresh_software(self) -> None:
        """Read the running software again (after an install): each ECU's running slot, else the
        configured entry (edge_agent.ota.inventory). Reported in check-ins and DTC messages."""
        self.software = self.installer.inventory()

    def _check_spool_size(self, campaign: Campaign) -> None:
        """Warn when the spool holds few of this campaign's batches (it splits those too big)."""
        try:
            warning = check_max_bytes(self.config.queue_max_bytes, largest_batch_bytes(campaign))
        except ValueError as exc:
            warning = f"{exc}; campaign {campaign.version_tag} still runs, its batches are split"
        if warning:
            log.warning("%s", warning)

    def _spool_status(self) -> dict[str, object]:
        """The spool's state, reported alike in the check-in and the stats file."""
        return {
            "queue_rows": self.queue.rows,
            "spool_state": self.queue.state,
            "memory_rows": self.queue.memory.rows,
            "memory_bytes": self.queue.memory.bytes_held,
            "disk_full_events": self.queue.disk_full_events,
        }

    def _checkin_payload(self) -> bytes:
        counters = self.queue.counters
        return json.dumps(
            {
                "state": "online",
                "vehicle_id": self.config.vehicle_id,
                "campaign_id": self.campaign.campaign_id,
                "campaign_version": self.campaign.version,
                "agent_version": AGENT_VERSION,
                "software": [e.as_json() for e in self.software],
                "source": self.source.kind,
                **self._spool_status(),
                "queue_bytes": self.queue.bytes_used,
                "queue_file_bytes": self.queue.file_bytes(),
                "memory_chunks": len(self.queue.memory.chunks),
                "dropped_batches": counters["dropped_batches"],
                "dropped_chunks": counters["dropped_chunks"],
                "dropped_samples": counters["dropped_samples"],
                "dropped_bytes": counters["dropped_bytes"],
                "queue_corrupt_files": [
                    p.name for p in self.queue.corrupt_files[-MAX_CORRUPT_FILES_IN_CHECKIN:]
                ],
                "queue_corrupt_count": len(self.queue.corrupt_files),
                "loop_errors": self.stats.loop_errors,
                "values_unsendable": self.stats.values_unsendable,
                "campaigns_rejected": self.stats.campaigns_rejected,
                "last_campaign_error": self.stats.last_campaign_error,
                "disconnects": self.link.disconnects,
            }
        ).encode()

    # -- the loop -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Read, collect, queue and send until `stop` is set; then flush, fsync and disconnect."""
        if self._manage_source:
            self.source.open()
        self.link.start()
        self.ota.start()
        now = time.monotonic()
        due = _Schedule(
            tick=now,
            flush=now,
            cut=now + self.campaign.batch_interval_s,
            checkin=now + self.config.checkin_interval_s,
            stats=now + 10.0,
        )
        try:
            while not stop.is_set():
                try:
                    self._step(due)
                except Exception:  # one failed step must not end the agent (see the module docstring)
                    self.stats.loop_errors += 1
                    self._throttle.log(logging.ERROR, "loop", "agent loop step failed", exc_info=True)
                    stop.wait(1.0)
                    continue
                stop.wait(max(0.0, min(due.tick, due.flush) - time.monotonic()))
        finally:
            self.ota.stop()
            self._flush(cut=True)
            deadline = time.monotonic() + 2.0  # a short grace period to send what is left
            self.pump()
            while self.sender.in_flight and self.link.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
                self.pump()
            self._commit()
            self.link.stop()
            self.write_stats()
            self.queue.close()
            if self._manage_source:
                self.source.close()

    def _step(self, due: _Schedule) -> None:
        """One pass of the loop: whatever is due of sampling, campaigns, flushing, sending, check-in."""
        now = time.monotonic()
        period_s = 1.0 / self.campaign.base_rate_hz
        if now >= due.tick:
            self.sample_once(timeout_s=period_s / 2)
            due.tick = max(due.tick + period_s, now)
        for payload in self.link.take_configs():
            self.offer_campaign(payload)
        self.ota.take(self.link.take_commands())
        self.ota.drain()
        if self.ota.software_changed.is_set():
            self.ota.software_changed.clear()
            self.refresh_software()
            self.link.send_checkin()
        if now >= due.flush:
            cut = now >= due.cut
            if cut:
                due.cut = now + self.campaign.batch_interval_s
            self._flush(cut=cut)
            due.flush = max(due.flush + self.campaign.flush_interval_s, now)
        self.pump()
        if now >= due.checkin:
            self.link.send_checkin()
            due.checkin = now + self.config.checkin_interval_s
        if now >= due.stats:
            self.write_stats()
            due.stats = now + 10.0

    def sample_once(self, timeout_s: float = 0.05) -> None:
        """Read one row from the source (errors are counted; the row is then skipped)."""
        paths = self.collector.paths
        extra = [p for p in self.ota.paths if p not in paths]
        try:
            reading = self.source.read([*paths, *extra] if extra else paths, timeout_s)
        except SourceError as exc:
            self.stats.source_errors += 1
            log.warning("source read failed: %s", exc)
            return
        self.ota.observe(reading.ts_ns, reading.values)
        if extra:  # read for the OTA preconditions only: not the campaign's data
            reading = replace(reading, values={p: v for p, v in reading.values.items() if p not in extra})
        # Whole milliseconds: finer than the loop's own jitter, and steady deltas compress well.
        # Times must strictly increase for the wire format (µs resolution).
        ts = max(reading.ts_ns // TS_RESOLUTION_NS * TS_RESOLUTION_NS, self._last_ts_ns + 1000)
        self._last_ts_ns = ts
        self._rows_ts.append(ts)
        values = dict(reading.values)
        for path in self._bool_paths.intersection(values):
            values[path] = 1.0 if values[path] else 0.0  # the wire accepts only 0/1 for booleans
        self._rows.append(values)
        self._row_dtcs.append(reading.dtcs)
        self.stats.rows_read += 1
        self.stats.samples_read += len(reading.values)

    def _flush(self, *, cut: bool = False) -> None:
        """Collect the rows read since the last flush, stage periodic data and queue trigger
        windows and DTCs; with `cut`, merge the staged data into one batch. Then commit (fsync)."""
        if self._rows_ts:
            paths = self.collector.paths
            ts = np.array(self._rows_ts, dtype=np.int64)
            values = np.array([[row.get(p, np.nan) for p in paths] for row in self._rows], dtype=np.float64)
            values = values.reshape(len(ts), len(paths))
            bad = wire_v1.unsendable(paths, values)
            if bad.any():  # a reading the wire cannot carry (inf, 1e39 as float32): drop it, not the batch
                values[bad] = np.nan
                self.stats.values_unsendable += int(bad.sum())
                self._throttle.log(
                    logging.WARNING, "unsendable", "dropped %d readings the wire cannot carry", int(bad.sum())
                )
            dtcs = self._row_dtcs
            self._rows_ts, self._rows, self._row_dtcs = [], [], []
            before = self.collector.trigger_count
            chunks = self.collector.process(ts, values, dtcs)
            self.stats.triggers_fired += self.collector.trigger_count - before
            for chunk in chunks:
                self.stats.samples_collected += chunk.n_samples
                if chunk.priority == PRIORITY_LOW:
                    self._stage_chunk(chunk)
                else:
                    self._put_chunk(chunk)
            for row, codes in enumerate(dtcs):
                if codes is not None and codes != self._dtcs_sent:
                    self._dtcs_sent = codes
                    self._put_dtc(self._dtc_message(int(ts[row]) // 1000, codes))
        if cut:
            self._cut_staged()
        self._commit()

    def _stage_chunk(self, chunk: Chunk) -> None:
        # Stored as a v1 frame without seq: exact for the wire types, and compact.
        if chunk.n_samples == 0:
            return  # nothing to send (every reading absent or dropped)
        staged = TelemetryBatch(self.config.vehicle_id, 0, chunk.ts_ns, chunk.columns)
        payload = wire_v1.encode(staged)
        if len(payload) > self.queue.max_entry_bytes:
            self._put_chunk(chunk)  # too big to stage: a batch of its own (split to fit)
            return
        self.queue.stage(payload, chunk.n_samples)

    def _cut_staged(self) -> None:
        staged = self.queue.staged()
        if not staged:
            return
        pieces = []
        for _, payload in staged:
            try:
                batch = wire_v1.decode(payload)
            except DecodeError as exc:  # not ours to send (e.g. staged by an older agent): skip it
                self._throttle.log(logging.WARNING, "staged", "skipping an undecodable staged chunk: %s", exc)
                continue
            pieces.append((batch.ts_ns, batch.columns))
        with self.queue.atomic():  # the batches and the unstaging: one transaction
            for ts_ns, columns in merge_chunks(pieces):
                for lo in range(0, ts_ns.shape[0], MAX_BATCH_ROWS):
                    part = {p: c[lo : lo + MAX_BATCH_ROWS] for p, c in columns.items()}
                    self._put_chunk(Chunk(ts_ns[lo : lo + MAX_BATCH_ROWS], part, PRIORITY_LOW, "periodic"))
            self.queue.unstage([staged_id for staged_id, _ in staged])

    def _put_chunk(self, chunk: Chunk) -> None:
        """Number, encode and queue a batch; one too big for a frame or for the spool's biggest
        entry is split in halves (the seq taken for it stays unused: numbers need not be contiguous)."""
        if chunk.n_samples == 0:
            return
        seq = self.queue.next_seq()
        batch = TelemetryBatch(self.config.vehicle_id, seq, chunk.ts_ns, chunk.columns)
        try:
            payload: bytes | None = wire_v1.encode(batch)
        except EncodeError:
            if batch.n_rows < 2:
                raise
            payload = None
        if payload is None or (len(payload) > self.queue.max_entry_bytes and batch.n_rows >= 2):
            half = batch.n_rows // 2
            for part in (slice(0, half), slice(half, None)):
                cols = {p: c[part] for p, c in chunk.columns.items()}
                self._put_chunk(Chunk(chunk.ts_ns[part], cols, chunk.priority, chunk.reason))
            return
        samples = batch.n_samples
        self.queue.put(topics.TELEMETRY, payload, priority=chunk.priority, samples=samples, seq=seq)
        self.stats.batches_queued += 1
        self.stats.samples_queued += samples

    def _dtc_message(self, ts_us: int, codes: frozenset[str]) -> bytes:
        """The full set of stored codes whenever it changes (an empty list when they were cleared)."""
        return dtc_message(
            self.config.vehicle_id,
            ts_us,
            sorted(codes),
            agent_version=AGENT_VERSION,
            software=versions_of(self.software),
        )

    def _put_report(self, payload: bytes, priority: int) -> None:
        """A signed OTA update report, on the `update` topic (committed by the caller)."""
        self.queue.put(topics.UPDATE, payload, priority=priority, samples=0)

    def _put_dtc(self, payload: bytes) -> None:
        self.queue.put(topics.DTC, payload, priority=PRIORITY_DTC, samples=0)
        self.stats.dtc_messages_queued += 1

    def _commit(self) -> None:
        """Commit this flush's writes and the deletion of acknowledged entries (the spool never
        raises for a disk failure)."""
        self.queue.commit()
        self._sync_with_spool()

    def _sync_with_spool(self) -> None:
        """React to the spool: new ids (the sender starts over) or a new state (check in now)."""
        self.sender.follow_spool()
        if self.queue.state != self._spool_state:
            self._spool_state = self.queue.state
            self.link.send_checkin()

    def pump(self) -> None:
        """Let the sender account acknowledgements and publish up to its in-flight limit."""
        self._sync_with_spool()
        self.sender.pump()

    def write_stats(self) -> None:
        doc = {**asdict(self.stats), **asdict(self.sender.stats), **self.queue.counters}
        doc.update(self._spool_status())
        doc["queue_corrupt_files"] = [str(p) for p in self.queue.corrupt_files]
        doc["campaign"] = self.campaign.version_tag
        doc["signals"] = len(self.collector.paths)
        doc["disconnects"] = self.link.disconnects
        doc["ota"] = self.ota.status()
        with contextlib.suppress(OSError):
            _write_atomically(self.config.stats_path, json.dumps(doc).encode(), fsync=False)


def _write_atomically(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write to a temporary file and rename it over `path`. Raises OSError (e.g. ENOSPC), and then
    leaves no partial temporary file to take space on a full disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
