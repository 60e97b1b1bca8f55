"""The actions of the install states: what each state does to the slots, and the event it posts.

Owns the RAUC order on disk: WRITE marks the target slot bad before emptying and writing it,
VERIFY reads it back, SWITCH marks it active (tentative), REBOOT is the bootloader's step, COMMIT
marks it good from the booted side, ROLLBACK falls back. Each action is safe to run again after a
power cut (the machine in edge_agent.ota.install only re-runs the ways out: rollback and the
results). Failures become events; an action that cannot even roll back raises Stalled, which
leaves the saved state for the next resume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from contract.software import EcuSoftware
from edge_agent.ota import bootstate
from edge_agent.ota.artifact import Manifest, ManifestError
from edge_agent.ota.bootstate import BootError, Mark
from edge_agent.ota.health import HealthCheck, HealthContext, run_checks
from edge_agent.ota.preconditions import (
    OfferTerms,
    Refusal,
    Thresholds,
    VehicleConditions,
    check_preconditions,
)
from edge_agent.ota.slots import EcuSlots, Slots
from edge_agent.ota.state import Event, Job, State

# The installer's own preconditions, beside edge_agent.ota.preconditions' four.
UNKNOWN_ECU = "ecu"
HARDWARE_ID = "hardware_id"
ALREADY_RUNNING = "already_running"
SLOTS_UNUSABLE = "slots"
CONDITIONS_UNKNOWN = "conditions"


class Stalled(RuntimeError):
    """The step could not be done and has no failure edge (e.g. a rollback that cannot write)."""


class Actions:
    def __init__(
        self,
        slots: Slots,
        state_dir: Path,
        configured: Mapping[str, EcuSoftware],
        thresholds: Thresholds,
        boot_tries: int,
        health_check: HealthCheck,
        ecu_checks: Mapping[str, HealthCheck],
        probe: Callable[[str], None],
    ) -> None:
        self.slots = slots
        self.state_dir = state_dir
        self.configured = dict(configured)
        self.thresholds = thresholds
        self.boot_tries = boot_tries
        self.health_check = health_check
        self.ecu_checks = dict(ecu_checks)
        self.probe = probe

    def act(
        self, job: Job, conditions: VehicleConditions | None, terms: OfferTerms | None
    ) -> tuple[Event, Job]:
        """Run `job.state`'s action; returns the event it posts and the job as updated. Raises
        Stalled."""
        slots = self.slots.ecu(job.ecu)
        match job.state:
            case State.PRECONDITIONS:
                return self._preconditions(slots, job, conditions, terms or OfferTerms())
            case State.WRITE:
                return self._write(slots, job)
            case State.VERIFY:
                return self._verify(slots, job)
            case State.SWITCH:
                return self._mark(
                    slots,
                    job,
                    lambda b: bootstate.mark_active(b, job.target, self.boot_tries),
                    Event.SWITCHED,
                    Event.SWITCH_FAILED,
                )
            case State.REBOOT:
                return self._reboot(slots, job)
            case State.HEALTH_CHECK:
                return self._health(slots, job)
            case State.COMMIT:
                return self._mark(
                    slots,
                    job,
                    lambda b: bootstate.mark_good(b, job.target),
                    Event.COMMITTED,
                    Event.COMMIT_FAILED,
                )
            case State.ROLLBACK:
                try:
                    slots.write_boot(bootstate.fall_back(slots.read_boot(), job.target))
                except (OSError, BootError) as exc:
                    raise Stalled(f"cannot roll back {job.ecu} from slot {job.target}: {exc}") from None
                return Event.ROLLED_BACK, job
        raise Stalled(f"no action for {job.state}")

    def _preconditions(
        self, slots: EcuSlots, job: Job, conditions: VehicleConditions | None, terms: OfferTerms
    ) -> tuple[Event, Job]:
        refusals = (
            list(check_preconditions(conditions, terms, self.thresholds))
            if conditions is not None
            else [Refusal(CONDITIONS_UNKNOWN, "no snapshot of the vehicle was given")]
        )
        configured = self.configured.get(job.ecu)
        if configured is None and not slots.exists():
            refusals.append(Refusal(UNKNOWN_ECU, f"{job.ecu} is not in this vehicle's software inventory"))
        elif configured and configured.hardware_id and job.hardware_id != configured.hardware_id:
            built_for = job.hardware_id or "no hardware id"
            refusals.append(
                Refusal(HARDWARE_ID, f"built for {built_for}, the ECU is {configured.hardware_id}")
            )
        if refusals:
            return self._refuse(job, refusals)
        try:
            boot = slots.read_boot() if slots.exists() else slots.seed(self._factory(job.ecu))
            if boot.mark(boot.booted).mark is not Mark.GOOD:  # left tentative with no install
                boot = bootstate.settle(boot)
                slots.write_boot(boot)
        except (OSError, BootError, ManifestError) as exc:
            return self._refuse(job, [Refusal(SLOTS_UNUSABLE, f"the slots cannot be used: {exc}")])
        running = slots.manifest(boot.booted)
        if running is not None and running.version == job.version:
            return self._refuse(job, [Refusal(ALREADY_RUNNING, f"{job.ecu} already runs {job.version}")])
        return Event.ACCEPTED, replace(
            job,
            target=boot.inactive,
            from_version="" if running is None else running.version,
            from_sha256="" if running is None else running.sha256,
        )

    def _factory(self, ecu: str) -> Manifest:
        entry = self.configured[ecu]
        return Manifest(ecu, entry.version, "", 0, entry.hardware_id)

    @staticmethod
    def _refuse(job: Job, refusals: list[Refusal]) -> tuple[Event, Job]:
        reason = "; ".join(f"{r.precondition}: {r.detail}" for r in refusals)
        return Event.REFUSED, replace(
            job, reason=reason, refusals=tuple((r.precondition, r.detail) for r in refusals)
        )

    def _write(self, slots: EcuSlots, job: Job) -> tuple[Event, Job]:
        try:
            slots.write_boot(bootstate.mark_bad(slots.read_boot(), job.target))
            slots.clear(job.target)
            slots.write_image(
                job.target, Path(job.artifact_path), job.length_bytes, lambda _n: self.probe("write:chunk")
            )
            slots.write_manifest(job.target, _expected(job))
        except (OSError, BootError) as exc:
            return Event.WRITE_FAILED, replace(job, reason=f"writing slot {job.target} failed: {exc}")
        return Event.WRITTEN, job

    def _verify(self, slots: EcuSlots, job: Job) -> tuple[Event, Job]:
        expected = _expected(job)
        manifest = slots.manifest(job.target)
        if manifest != expected:
            return Event.VERIFY_FAILED, replace(
                job, reason=f"slot {job.target} manifest {manifest} is not {expected}"
            )
        try:
            sha256, length = slots.digest(job.target, job.length_bytes)
        except OSError as exc:
            return Event.VERIFY_FAILED, replace(job, reason=f"slot {job.target} image unreadable: {exc}")
        if (sha256, length) != (job.sha256, job.length_bytes):
            return Event.VERIFY_FAILED, replace(
                job,
                reason=f"slot {job.target} image has sha256 {sha256} and {length} bytes, "
                f"not {job.sha256} and {job.length_bytes}",
            )
        return Event.VERIFIED, job

    def _mark(
        self,
        slots: EcuSlots,
        job: Job,
        change: Callable[[bootstate.BootState], bootstate.BootState],
        ok: Event,
        failed: Event,
    ) -> tuple[Event, Job]:
        try:
            slots.write_boot(change(slots.read_boot()))
        except (OSError, BootError) as exc:
            return failed, replace(job, reason=f"{job.state} of slot {job.target} failed: {exc}")
        return ok, job

    def _reboot(self, slots: EcuSlots, job: Job) -> tuple[Event, Job]:
        try:
            booted = bootstate.boot(slots.read_boot())
            slots.write_boot(booted)
        except (OSError, BootError) as exc:
            return Event.FELL_BACK, replace(job, reason=f"boot step failed: {exc}")
        if booted.booted != job.target:
            reason = f"slot {job.target} was not confirmed within {self.boot_tries} starts; fell back"
            return Event.FELL_BACK, replace(job, reason=reason)
        return Event.BOOTED_NEW, job

    def _health(self, slots: EcuSlots, job: Job) -> tuple[Event, Job]:
        ctx = HealthContext(
            ecu=job.ecu,
            slot=job.target,
            slot_dir=slots.slot_dir(job.target),
            image=slots.image_path(job.target),
            manifest=slots.manifest(job.target),
            expected=_expected(job),
            state_dir=self.state_dir,
        )
        checks = (self.health_check,) + ((self.ecu_checks[job.ecu],) if job.ecu in self.ecu_checks else ())
        reason = run_checks(checks, ctx)
        if reason is not None:
            return Event.UNHEALTHY, replace(job, reason=f"health check failed: {reason}")
        return Event.HEALTHY, job

    def clean_target(self, job: Job) -> None:
        """After a result other than INSTALLED: the target slot is bad and not booted, and its
        files are gone (a failed image should not hold the disk). A target that is still good
        (refused before anything was written) is left alone. Raises OSError."""
        if job.state is State.INSTALLED or not job.target:
            return
        slots = self.slots.ecu(job.ecu)
        if not slots.exists():
            return
        boot = slots.read_boot()
        if boot.mark(job.target).mark is Mark.GOOD and boot.booted != job.target:
            return
        try:
            settled = bootstate.fall_back(boot, job.target)
        except BootError as exc:
            raise OSError(f"cannot fall back from slot {job.target}: {exc}") from None
        if settled != boot:
            slots.write_boot(settled)
        slots.clear(job.target)


def _expected(job: Job) -> Manifest:
    return Manifest(job.ecu, job.version, job.sha256, job.length_bytes, job.hardware_id)
