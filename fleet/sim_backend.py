"""The backend's loop on a simulated fleet's clock, for `fleet simulate` and `fleet demo`.

Owns: the run's TUF repository (`run_repository`: keys and repository in the run's work directory,
the cures of the scenario's firmware bugs published as targets for the simulated ECUs' hardware
ids; the fleet layer serves it on loopback with `ota.server.serving_in_thread`), the run's remedy
catalogue (`run_catalogue`: the shipped one plus, per bug, the cure its maker released) and
`SimBackend`, which the drive calls after every simulation step: every `every_s` simulated seconds
it runs, with `now` = the simulation's clock, the analysis job, the remedy engine (campaigns auto-
approved), the OTA campaign step (offers published through the real broker with the ingest
account's OTA login), the report step, the owner notifications that are due (delivered on the
simulation's clock), hands each new booking to the simulator (`ClosedLoop.book_visit`), and records
what the simulated workshop saw at each visit in the bookings (`remedies.bookings.complete`, or
`no_show`, which books again on the simulation's clock). Its `summary` is the loop's half of the
run's summary. Leaves the decisions to `analytics`, `remedies` and `ota`, and the vehicles' side to
`simulators.closed_loop`.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from contract.endpoint import MqttEndpoint
from ota.loop import LoopConfig, campaign_step, report_step
from remedies.catalogue import Catalogue, CatalogueEntry, OtaPatch, load_catalogue
from remedies.notifications.channels import MemoryTransport, Transport
from remedies.notifications.policy import Channel
from simulators.closed_loop import ClosedLoop
from simulators.engine import FleetSimulation, StepOutput
from simulators.fleet_registry import model_id
from simulators.models import MODELS, powertrain_ecu

log = logging.getLogger(__name__)

DEFAULT_EVERY_S = 600.0  # simulated seconds between two backend steps
WORKSHOP_ACTOR = "simulated workshop"  # who completes a booking, or records its no-show


@dataclass(frozen=True)
class Cure:
    """A firmware bug's cure: the powertrain ECU, the buggy version and the version that cures it."""

    ecu: str
    buggy_version: str
    version: str


def cures(sim: FleetSimulation) -> list[Cure]:
    """The cures the scenario's firmware bugs need, one per (ECU, buggy version, cure)."""
    found = set()
    for r in sim.faults.records:
        if r["kind"] == "firmware_bug":
            v = r["vehicle_index"]
            ecu = powertrain_ecu(bool(sim.params.is_ev[v]))
            found.add(Cure(ecu, str(r["params"]["version"]), str(r["params"]["fixed_version"])))
    return sorted(found, key=lambda c: (c.ecu, c.buggy_version, c.version))


def run_repository(work_dir: Path, sim: FleetSimulation) -> Path:
    """Create the run's TUF repository in `work_dir/repo` (keys in `work_dir/keys`, outside it) with
    each cure published for every simulated model's hardware id of its ECU. The image's bytes are
    its target name, so the SHA-256 the simulated vehicles report matches the signed target's.
    Returns the repository directory. Raises RepositoryError, SigningKeyError, OSError."""
    from ota.keys import init_keys
    from ota.repository import OtaRepository

    keys_dir, repo_dir = work_dir / "keys", work_dir / "repo"
    init_keys(keys_dir)
    repo = OtaRepository(repo_dir, keys_dir)
    repo.create()
    artifacts = work_dir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    for cure in cures(sim):
        file_name = f"{cure.ecu.lower()}-{cure.version}.bin"
        artifact = artifacts / file_name
        artifact.write_bytes(f"{cure.ecu}/{cure.version}/{file_name}".encode())
        hardware_ids = tuple(f"{cure.ecu.lower()}-{model_id(i)}" for i in range(len(MODELS)))
        repo.publish(artifact, ecu=cure.ecu, version=cure.version, hardware_ids=hardware_ids)
    return repo_dir


def run_catalogue(sim: FleetSimulation, base: Catalogue | None = None) -> Catalogue:
    """The shipped catalogue plus, per firmware bug, a patch to its cure for the vehicles that run
    the buggy version (the cure its maker released: no vehicle of the fleet runs it yet, so the
    fleet firmware test cannot name it). Raises OSError, ValueError for an unreadable catalogue."""
    base = base or load_catalogue()
    extra = tuple(
        CatalogueEntry(
            name=f"simulated-cure-{c.ecu}-{c.buggy_version}",
            fault="firmware_bug",
            remedy=OtaPatch(ecu=c.ecu, to_version=c.version),
            ecu=c.ecu,
            software_version=c.buggy_version,
            why=f"The maker released {c.version} to cure the bug of {c.buggy_version}.",
        )
        for c in cures(sim)
    )
    return Catalogue(extra + base.entries)


@dataclass
class BackendStats:
    steps: int = 0
    errors: int = 0  # steps that failed (logged; the next step tries again)
    offers: int = 0
    republished: int = 0
    waves_opened: int = 0
    reports_judged: Counter[str] = field(default_factory=Counter)
    bookings: int = 0
    visits_completed: int = 0  # bookings the workshop's visit completed in the database
    visits_missed: int = 0  # bookings recorded as no-shows
    visits_unmatched: int = 0  # visits whose booking was no longer open when they were held
    visits_withdrawn: int = 0  # handed bookings cancelled before their visit: withdrawn from the simulator
    notifications_delivered: int = 0
    remedy_seen_s: dict[int, tuple[str, str, float]] = field(
        default_factory=dict
    )  # id -> (vehicle, kind, t_s)


class SimBackend:
    """The backend's steps on the simulation's clock. `on_step` runs in the feeding thread (the
    simulation waits while the backend works, as it would for a slow server)."""

    def __init__(
        self,
        database_url: str,
        sim: FleetSimulation,
        loop: ClosedLoop,
        *,
        repo_dir: Path,
        repository_url: str,
        ota_endpoint: MqttEndpoint | None,
        notify_endpoint: MqttEndpoint | None,
        catalogue: Catalogue,
        every_s: float = DEFAULT_EVERY_S,
    ) -> None:
        self.sim, self.loop, self.catalogue, self.every_s = sim, loop, catalogue, every_s
        self.config = LoopConfig(repo_dir, repository_url, ota_endpoint)
        self.transports: dict[Channel, Transport] = {
            Channel.EMAIL: MemoryTransport(Channel.EMAIL),  # the simulated owners' mailboxes
            Channel.WEBHOOK: MemoryTransport(Channel.WEBHOOK),  # their phones
        }
        if notify_endpoint is not None:
            from remedies.notifications.channels.mqtt import MqttTransport

            self.transports[Channel.IN_CAR] = MqttTransport(notify_endpoint)
        self.stats = BackendStats()
        self.listener_stats: Any = (
            None  # the offer listener's (simulators.ota_link.LinkStats), set by the drive
        )
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._next_s = every_s
        self._last_booking = 0
        self._vehicles = list(sim.vehicle_ids)
        self._handed: dict[tuple[str, int], int] = {}  # (vehicle, start, Unix s) -> booking handed over
        self._visits_recorded = 0  # how many of `sim.visits` are recorded in the bookings

    def register_keys(self) -> int:
        """Register every simulated vehicle's report key (before any offer). Returns how many."""
        from ota.vehicle_keys import register_key

        keys = self.loop.keys.public_keys()
        with self._conn.transaction():
            for vehicle_id, public_key in keys.items():
                register_key(self._conn, vehicle_id, public_key)
        return len(keys)

    def on_step(self, sim: FleetSimulation, out: StepOutput) -> None:
        if out.t_s + 1e-9 >= self._next_s:
            self._next_s += self.every_s
            self.step(out.t_s)

    def step(self, t_s: float) -> None:
        """One backend round at sim time `t_s`. A database failure is logged and counted."""
        try:
            self._step(t_s)
        except (psycopg.Error, OSError) as exc:
            self.stats.errors += 1
            log.warning("backend step at %.0f s failed: %s", t_s, exc)

    def _step(self, t_s: float) -> None:
        from analytics.job import run_analysis
        from analytics.suite import default_detectors
        from remedies.notifications.delivery import deliver, due_notifications
        from remedies.run import run_remedies

        now = dt.datetime.fromtimestamp(self.sim.unix_s_at(t_s), dt.UTC)
        conn, s = self._conn, self.stats
        s.steps += 1
        self._record_visits()  # first: what the workshop did since the last step is past, like a report
        with conn.transaction():
            run_analysis(conn, default_detectors(), settle_s=0.0, hazards=False)
        run_remedies(conn, self.catalogue, now=now, auto_approve_campaigns=True)
        for remedy_id, vehicle_id, kind in conn.execute(
            "SELECT remedy_id, vehicle_id, kind FROM remedies WHERE vehicle_id = ANY(%s)", (self._vehicles,)
        ).fetchall():
            s.remedy_seen_s.setdefault(remedy_id, (vehicle_id, kind, t_s))
        campaigns = campaign_step(conn, self.config, now=now)
        s.offers += int(campaigns.get("offers", 0))
        s.republished += int(campaigns["publish"].get("republished", 0))
        s.waves_opened += len(campaigns.get("waves_opened", []))
        for verdict, n in report_step(conn, self.config)["verdicts"].items():
            s.reports_judged[verdict] += n
        for booking_id, vehicle_id, starts_at in conn.execute(
            "SELECT booking_id, vehicle_id, starts_at FROM bookings WHERE vehicle_id = ANY(%s)"
            " AND booking_id > %s AND status = 'booked' ORDER BY booking_id",
            (self._vehicles, self._last_booking),
        ).fetchall():
            self._last_booking = booking_id
            self.loop.book_visit(vehicle_id, starts_at.timestamp())
            self._handed[(vehicle_id, round(starts_at.timestamp()))] = booking_id
            s.bookings += 1
        self._withdraw_cancelled()
        for notification_id in due_notifications(conn, now=now):
            deliver(conn, notification_id, self.transports, now=now)
            s.notifications_delivered += 1

    def _record_visits(self) -> None:
        """Each visit the workshop held since the last step completes its booking, or records a
        no-show (the next booking follows when this step hands bookings over)."""
        from remedies.bookings import complete, no_show

        for visit in self.sim.visits[self._visits_recorded :]:
            self._visits_recorded += 1
            vehicle_id = self._vehicles[visit["vehicle_index"]]
            booking_id = self._handed.pop((vehicle_id, round(self.sim.unix_s_at(visit["booked_at_s"]))), None)
            if booking_id is None:
                continue  # a visit booked around the database (a test's): nothing to record
            at = dt.datetime.fromtimestamp(self.sim.unix_s_at(visit["t_s"]), dt.UTC)
            try:
                if visit["showed_up"]:
                    complete(self._conn, booking_id, WORKSHOP_ACTOR)
                    self.stats.visits_completed += 1
                else:
                    no_show(self._conn, booking_id, WORKSHOP_ACTOR, now=at)
                    self.stats.visits_missed += 1
            except LookupError:
                self.stats.visits_unmatched += 1

    def _withdraw_cancelled(self) -> None:
        """A handed booking that was cancelled (rescheduled, or the fault cleared before the visit)
        is withdrawn from the simulator."""
        if not self._handed:
            return
        closed = self._conn.execute(
            "SELECT booking_id FROM bookings WHERE booking_id = ANY(%s) AND status <> 'booked'",
            (list(self._handed.values()),),
        ).fetchall()
        gone = {row[0] for row in closed}
        for key, booking_id in list(self._handed.items()):
            if booking_id in gone:
                del self._handed[key]
                self.loop.cancel_visit(*key)
                self.stats.visits_withdrawn += 1

    def close(self) -> None:
        self._conn.close()

    def summary(self, truth: dict[str, Any]) -> dict[str, Any]:
        """The loop's half of the run's summary, from the ground truth (`ground_truth(sim,
        loop.truth())`) and the database."""
        from remedies.notifications import counts

        s = self.stats
        first_remedy: dict[tuple[str, str], float] = {}  # (vehicle, remedy kind) -> sim time first seen
        for vehicle_id, kind, t_s in s.remedy_seen_s.values():
            key = (vehicle_id, kind)
            first_remedy[key] = min(t_s, first_remedy.get(key, t_s))
        delays: dict[str, list[float]] = {}
        for f in truth["faults"]:
            # A firmware bug's remedy is a patch; a hardware fault's is a shop visit.
            wanted = "ota_patch" if f["kind"] == "firmware_bug" else "shop_visit"
            seen = first_remedy.get((f["vehicle_id"], wanted))
            if seen is not None and seen >= f["onset_s"]:
                delays.setdefault(f["kind"], []).append(seen - f["onset_s"])
        faults = Counter(f["kind"] for f in truth["faults"])
        visits = truth.get("visits", [])
        with self._conn.cursor() as cur:
            campaigns = cur.execute(
                "SELECT campaign_id, status, reason, current_wave FROM campaigns WHERE campaign_id IN"
                " (SELECT campaign_id FROM campaign_vehicles WHERE vehicle_id = ANY(%s))"
                " ORDER BY campaign_id",
                (self._vehicles,),
            ).fetchall()
            notices = counts(self._conn, vehicle_ids=self._vehicles).as_dict()
        ota_vehicles = {
            c["vehicle_id"] for c in truth.get("software_changes", []) if c["source"].startswith("ota:")
        }
        return {
            "backend_steps": s.steps,
            "backend_every_s": self.every_s,
            "backend_errors": s.errors,
            "remedy_delay_s": {
                kind: {
                    "faults": faults[kind],
                    "remedied": len(delays.get(kind, [])),
                    "median_onset_to_remedy_s": round(statistics.median(delays[kind]), 1)
                    if delays.get(kind)
                    else None,
                }
                for kind in sorted(faults)
            },
            "vehicles_patched": len(ota_vehicles),
            "offers_sent": s.offers,
            "offers_republished": s.republished,
            "loop": vars(self.loop.stats),
            "listener": vars(self.listener_stats) if self.listener_stats is not None else None,
            "reports_judged": dict(s.reports_judged),
            "visits_booked": s.bookings,
            "visits_made": sum(1 for v in visits if v["showed_up"]),
            "visits_no_show": sum(1 for v in visits if not v["showed_up"]),
            "visits_pending": s.bookings - len(visits),
            "bookings_recorded": {
                "completed": s.visits_completed,
                "no_show": s.visits_missed,
                "unmatched": s.visits_unmatched,
                "withdrawn": s.visits_withdrawn,
            },
            "notifications": notices,
            "campaigns": {
                "waves_opened": s.waves_opened,
                "running": sum(1 for c in campaigns if c[1] == "running"),
                "finished": sum(1 for c in campaigns if c[1] == "finished"),
                "paused": [
                    {"campaign_id": c[0], "reason": c[2], "wave": c[3] + 1}
                    for c in campaigns
                    if c[1] == "paused"
                ],
                "other": sum(1 for c in campaigns if c[1] not in ("running", "finished", "paused")),
            },
        }
