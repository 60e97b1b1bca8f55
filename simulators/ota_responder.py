"""How simulated vehicles answer OTA update offers: one state machine per (vehicle, offer).

Owns: taking a parsed `contract.update.UpdateOffer` for a vehicle at sim time t and producing,
as sim time passes, the signed reports a real agent sends (docs/ota.md §3): `downloading` ->
`verified` -> `installed` -> `committed`, or `failed` / `rolled_back`. It respects the offer's
preconditions the way the agent does (`edge_agent.ota.preconditions`): an install starts only
after the vehicle has been parked `OtaSpec.min_parked_s` with enough power, inside the offer's
maintenance window in the window's time zone, and with the owner's consent when the offer asks for
it and is not forced (`edge_agent.ota.policy.terms_of`: urgency `forced`, or `forced_after` once
its time has come). A simulated owner answers after a drawn delay and consents with
`consent_probability`; one who declines makes the offer wait, as on the agent (a declined consent
is "not now"): the vehicle sends one more `verified` report saying so, and the offer installs if
it becomes forced, or ends `expired`. An install needs the vehicle parked throughout: one that
drives off abandons the install, which starts afresh at the next stop. Durations and failures are
drawn per offer from `OtaSpec`, with a random stream of its own per (seed, vehicle, offer), so the
outcome of one offer does not depend on the others. Every offer ends in exactly one final report
(`committed`, `rolled_back` or `failed`); `failed` reasons: `busy` (another install under way),
`unknown_ecu`, `already_running`, `unknown_timezone`, `download_failed`, `install_failed`,
`expired` (not installable within `give_up_after_s`); `rolled_back`: `health_check_failed`.
A redelivered offer (same offer id) is ignored.

The simulated image's SHA-256 is that of its target name (no bytes are downloaded). Pure: no
I/O and no clock; `simulators.closed_loop` feeds it and applies what commits to the engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from contract.update import MaintenanceWindow, Software, UpdateOffer, UpdateReport
from simulators.report_keys import SimulatedKeys
from simulators.scenario import OtaSpec

DOWNLOADING, WAITING, INSTALLING, CHECKING = "downloading", "waiting", "installing", "checking"
# The `verified` report's detail when the owner declines, in the agent's form for a waiting offer.
DECLINED_DETAIL = "waiting: consent (the owner declined)"
NO_VERSION = "none"  # `before`/`after` of an ECU the vehicle does not have (an `unknown_ecu` refusal)


@dataclass(frozen=True)
class Draws:
    """What happens to one offer on one vehicle, drawn when it arrives."""

    download_s: float
    install_s: float
    download_fails: bool
    install_fails: bool
    rolls_back: bool
    consents: bool
    consent_at_s: float  # when the owner answers (seconds into the run)


@dataclass(frozen=True)
class OtaJob:
    """One offer under way on one vehicle."""

    vehicle: int
    offer: UpdateOffer
    before: str  # the version the ECU ran when the offer arrived
    received_s: float
    draws: Draws
    phase: str
    until_s: float  # when the phase's timer runs out (download, install, health check)
    seq: int  # the last report's seq
    interrupted: int = 0  # installs abandoned because the vehicle drove off
    declined_sent: bool = False  # the `verified` report saying the owner declined went out


@dataclass(frozen=True)
class OtaReport:
    """A report to publish on the vehicle's `update` topic (signed `payload`)."""

    vehicle: int
    t_s: float
    report: UpdateReport
    payload: bytes


def image_sha256(offer: UpdateOffer) -> str:
    """The simulated image's SHA-256: that of the target name."""
    return hashlib.sha256(offer.target.encode()).hexdigest()


def draw(spec: OtaSpec, seed: int, vehicle: int, offer: UpdateOffer, t_s: float) -> Draws:
    """The offer's fate on `vehicle`, from its own stream (seed, vehicle, offer id)."""
    offer_key = int.from_bytes(hashlib.sha256(offer.offer_id.encode()).digest()[:8], "big")
    rng = np.random.default_rng([seed, 0x07A, vehicle, offer_key])
    u = rng.random(7)
    lo_d, hi_d = spec.download_s
    lo_i, hi_i = spec.install_s
    lo_c, hi_c = spec.consent_delay_s
    return Draws(
        download_s=lo_d + (hi_d - lo_d) * float(u[0]),
        install_s=lo_i + (hi_i - lo_i) * float(u[1]),
        download_fails=bool(u[2] < spec.download_failure_rate),
        install_fails=bool(u[3] < spec.install_failure_rate),
        rolls_back=bool(u[4] < spec.rollback_rate),
        consents=bool(u[5] < spec.consent_probability),
        consent_at_s=t_s + lo_c + (hi_c - lo_c) * float(u[6]),
    )


def in_window(window: MaintenanceWindow | None, unix_s: float) -> bool:
    """Whether the local time at `unix_s` in the window's zone is in [start, end) (a window whose
    end is before its start crosses midnight); no window: always. Raises ZoneInfoNotFoundError,
    ValueError or OSError for a zone that is not one (`OtaResponder.offer` refuses those first)."""
    if window is None:
        return True
    local = datetime.fromtimestamp(unix_s, ZoneInfo(window.timezone)).time().replace(tzinfo=None)
    start, end = time.fromisoformat(window.start), time.fromisoformat(window.end)
    return start <= local < end if start < end else (local >= start or local < end)


class OtaResponder:
    """The fleet's offers under way, and what became of the finished ones (`finished`)."""

    def __init__(
        self,
        spec: OtaSpec,
        seed: int,
        vehicle_ids: list[str],
        start_unix_s: float,
        clock_skew_ns: np.ndarray | None = None,
        keys: SimulatedKeys | None = None,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.vehicle_ids = list(vehicle_ids)
        self.start_unix_s = float(start_unix_s)
        n = len(self.vehicle_ids)
        self.clock_skew_ns = clock_skew_ns if clock_skew_ns is not None else np.zeros(n, dtype=np.int64)
        self.keys = keys or SimulatedKeys(seed, self.vehicle_ids)
        self.jobs: dict[int, OtaJob] = {}
        self.finished: list[dict[str, object]] = []
        self._seen: set[tuple[int, str]] = set()

    def offer(
        self, vehicle: int, offer: UpdateOffer, current_version: str | None, t_s: float
    ) -> list[OtaReport]:
        """`vehicle` receives `offer` at `t_s`; `current_version` is what the offer's ECU runs (None:
        the vehicle has no such ECU). Returns the reports it sends at once (none for a redelivery)."""
        if (vehicle, offer.offer_id) in self._seen:
            return []
        self._seen.add((vehicle, offer.offer_id))
        before = current_version or ""
        draws = draw(self.spec, self.seed, vehicle, offer, t_s)
        job = OtaJob(vehicle, offer, before, t_s, draws, DOWNLOADING, t_s + draws.download_s, 0)
        refusal = None
        if vehicle in self.jobs:
            refusal = ("busy", "another install is under way")
        elif current_version is None:
            refusal = ("unknown_ecu", f"no ECU {offer.ecu} in this vehicle")
        elif current_version == offer.version:
            refusal = ("already_running", f"{offer.ecu} already runs {offer.version}")
        elif offer.maintenance_window is not None:
            try:
                ZoneInfo(offer.maintenance_window.timezone)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory: OSError
                refusal = ("unknown_timezone", f"unknown time zone {offer.maintenance_window.timezone}")
        if refusal is not None:
            return [self._finish(job, t_s, "failed", refusal[0], refusal[1], before)]
        self.jobs[vehicle], report = self._emit(job, t_s, "downloading", None, "", before)
        return [report]

    def step(self, t_s: float, parked_s: np.ndarray, power_ok: np.ndarray) -> list[OtaReport]:
        """Advance every offer under way to `t_s`, given how long each vehicle has been parked (0:
        running) and whether it has the power to install. Returns the reports sent in this step."""
        out: list[OtaReport] = []
        for vehicle in sorted(self.jobs):
            job, reports = self._advance(
                self.jobs[vehicle], t_s, float(parked_s[vehicle]), bool(power_ok[vehicle])
            )
            if job is None:
                del self.jobs[vehicle]
            else:
                self.jobs[vehicle] = job
            out.extend(reports)
        return out

    def _advance(
        self, job: OtaJob, t_s: float, parked_s: float, power_ok: bool
    ) -> tuple[OtaJob | None, list[OtaReport]]:
        """The job after `t_s` (None once it ended) and the reports sent on the way."""
        spec, d, offer = self.spec, job.draws, job.offer
        if job.phase == DOWNLOADING:
            if t_s < job.until_s:
                return job, []
            if d.download_fails:
                return None, [
                    self._finish(job, t_s, "failed", "download_failed", "download broke off", job.before)
                ]
            job, report = self._emit(job, t_s, "verified", None, "", job.before, image_sha256(offer))
            waiting, more = self._advance(
                dataclasses.replace(job, phase=WAITING, until_s=math.inf), t_s, parked_s, power_ok
            )
            return waiting, [report, *more]
        if job.phase == WAITING:
            if t_s >= job.received_s + spec.give_up_after_s:
                return None, [
                    self._finish(job, t_s, "failed", "expired", "preconditions never met", job.before)
                ]
            answered, asks = t_s >= d.consent_at_s, self._needs_consent(offer, t_s)
            consented = not asks or (d.consents and answered)
            sent: list[OtaReport] = []
            if asks and answered and not d.consents and not job.declined_sent:
                job, report = self._emit(
                    job, t_s, "verified", None, DECLINED_DETAIL, job.before, image_sha256(offer)
                )
                job, sent = dataclasses.replace(job, declined_sent=True), [report]
            ready = parked_s >= spec.min_parked_s and power_ok and consented
            if ready and in_window(offer.maintenance_window, self.start_unix_s + t_s):
                return dataclasses.replace(job, phase=INSTALLING, until_s=t_s + d.install_s), sent
            return job, sent
        if job.phase == INSTALLING:
            if parked_s <= 0.0:  # driven off: the install is abandoned and starts afresh at the next stop
                return dataclasses.replace(
                    job, phase=WAITING, until_s=math.inf, interrupted=job.interrupted + 1
                ), []
            if t_s < job.until_s:
                return job, []
            if d.install_fails:
                return None, [
                    self._finish(job, t_s, "failed", "install_failed", "writing the slot failed", job.before)
                ]
            job, report = self._emit(job, t_s, "installed", None, "", offer.version, image_sha256(offer))
            return dataclasses.replace(job, phase=CHECKING, until_s=t_s + spec.health_check_s), [report]
        if t_s < job.until_s:  # CHECKING
            return job, []
        if d.rolls_back:
            return None, [self._finish(job, t_s, "rolled_back", "health_check_failed", "", job.before)]
        return None, [self._finish(job, t_s, "committed", None, "", offer.version)]

    def _needs_consent(self, offer: UpdateOffer, t_s: float) -> bool:
        """Whether the offer still asks for consent at `t_s`: not once it is forced (urgency
        `forced`, or `forced_after` from its time on), as `edge_agent.ota.policy.terms_of` decides."""
        if not offer.consent_required or offer.urgency == "forced":
            return False
        now_us = (self.start_unix_s + t_s) * 1e6
        return offer.forced_after_us is None or now_us < offer.forced_after_us

    def _finish(
        self, job: OtaJob, t_s: float, state: str, reason: str | None, detail: str, after: str
    ) -> OtaReport:
        """The job's final report; what became of it goes to `finished`."""
        _, report = self._emit(job, t_s, state, reason, detail, after, image_sha256(job.offer))
        self.finished.append(
            {
                "vehicle_id": self.vehicle_ids[job.vehicle],
                "offer_id": job.offer.offer_id,
                "ecu": job.offer.ecu,
                "before": job.before,
                "version": job.offer.version,
                "state": state,
                "reason": reason,
                "received_s": job.received_s,
                "ended_s": t_s,
                "interrupted_installs": job.interrupted,
            }
        )
        return report

    def _emit(
        self,
        job: OtaJob,
        t_s: float,
        state: str,
        reason: str | None,
        detail: str,
        after: str,
        target_sha256: str | None = None,
    ) -> tuple[OtaJob, OtaReport]:
        """The job with its next seq, and that report, signed."""
        job = dataclasses.replace(job, seq=job.seq + 1)
        ts_us = int(round((self.start_unix_s + t_s) * 1e6)) + int(self.clock_skew_ns[job.vehicle]) // 1000
        new = after == job.offer.version
        unsigned = UpdateReport(
            vehicle_id=self.vehicle_ids[job.vehicle],
            offer_id=job.offer.offer_id,
            nonce=job.offer.nonce,
            seq=job.seq,
            ts_us=ts_us,
            state=state,
            ecu=job.offer.ecu,
            before=Software(job.before or NO_VERSION, None),
            after=Software(after or NO_VERSION, image_sha256(job.offer) if new else None),
            target=Software(job.offer.version, target_sha256),
            key_id="0" * 64,  # the signer's
            reason=reason,
            detail=detail,
        )
        signed, payload = self.keys.sign(unsigned)
        return job, OtaReport(job.vehicle, t_s, signed, payload)
