"""The install state machine as data: its states, its events, ONE transition table, and the record
saved before each step (pure, no I/O).

Owns what follows what. As in Mender, each state's action posts an event and every edge sits in
one table built by `add_transition(from, event, to)`; the install record (`Job`, Mender's
StateData) is saved before each action and read back after a restart, when the saved state gets
the event RESTARTED. A save counter caps the steps (Mender's 28): past it a state gets
LOOP_DETECTED instead of running, which leads to FAILED before the switch and to ROLLBACK after.

The path: PRECONDITIONS -> WRITE (mark the target slot bad, write it) -> VERIFY (sha256 and length
read back) -> SWITCH (mark it active, tentative) -> REBOOT (the boot step: a tentative slot spends
a try) -> HEALTH_CHECK -> COMMIT (mark it good) -> INSTALLED. A restart before the switch is
committed (that is, in PRECONDITIONS, WRITE, VERIFY or SWITCH) abandons the install: FAILED, the
vehicle stays on its old version and the server may offer it again. A restart after it boots the
new slot again (spending a try) and repeats the health check; when the tries are spent the
bootloader falls back and the install ends ROLLED_BACK. The actions are edge_agent.ota.install's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edge_agent.ota.artifact import ManifestError, check_ecu, check_length, check_sha256, check_text

MAX_STATE_SAVES = 28  # Mender's cap on saves of one update's state (StateLoopDetected past it)
SCHEMA = 1


class State(StrEnum):
    PRECONDITIONS = "preconditions"
    WRITE = "write"
    VERIFY = "verify"
    SWITCH = "switch"
    REBOOT = "reboot"
    HEALTH_CHECK = "health_check"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    INSTALLED = "installed"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    REFUSED = "refused"


class Event(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    WRITTEN = "written"
    WRITE_FAILED = "write_failed"
    VERIFIED = "verified"
    VERIFY_FAILED = "verify_failed"
    SWITCHED = "switched"
    SWITCH_FAILED = "switch_failed"
    BOOTED_NEW = "booted_new"
    FELL_BACK = "fell_back"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    COMMITTED = "committed"
    COMMIT_FAILED = "commit_failed"
    ROLLED_BACK = "rolled_back"
    RESTARTED = "restarted"
    LOOP_DETECTED = "loop_detected"


TERMINAL = frozenset({State.INSTALLED, State.ROLLED_BACK, State.FAILED, State.REFUSED})
BEFORE_SWITCH = frozenset({State.PRECONDITIONS, State.WRITE, State.VERIFY, State.SWITCH})
AFTER_SWITCH = frozenset({State.REBOOT, State.HEALTH_CHECK, State.COMMIT})
UNCAPPED = TERMINAL | {State.ROLLBACK}  # the ways out always run, whatever the save counter says

TRANSITIONS: dict[tuple[State, Event], State] = {}


class TransitionError(LookupError):
    """An event that the state has no edge for (a bug in an action)."""


def add_transition(source: State, event: Event, target: State) -> None:
    if (source, event) in TRANSITIONS:
        raise ValueError(f"duplicate edge {source} --{event}-->")
    TRANSITIONS[(source, event)] = target


S, E = State, Event
add_transition(S.PRECONDITIONS, E.ACCEPTED, S.WRITE)
add_transition(S.PRECONDITIONS, E.REFUSED, S.REFUSED)
add_transition(S.WRITE, E.WRITTEN, S.VERIFY)
add_transition(S.WRITE, E.WRITE_FAILED, S.FAILED)
add_transition(S.VERIFY, E.VERIFIED, S.SWITCH)
add_transition(S.VERIFY, E.VERIFY_FAILED, S.FAILED)
add_transition(S.SWITCH, E.SWITCHED, S.REBOOT)
add_transition(S.SWITCH, E.SWITCH_FAILED, S.FAILED)
add_transition(S.REBOOT, E.BOOTED_NEW, S.HEALTH_CHECK)
add_transition(S.REBOOT, E.FELL_BACK, S.ROLLBACK)
add_transition(S.HEALTH_CHECK, E.HEALTHY, S.COMMIT)
add_transition(S.HEALTH_CHECK, E.UNHEALTHY, S.ROLLBACK)
add_transition(S.COMMIT, E.COMMITTED, S.INSTALLED)
add_transition(S.COMMIT, E.COMMIT_FAILED, S.ROLLBACK)
add_transition(S.ROLLBACK, E.ROLLED_BACK, S.ROLLED_BACK)
# A restart: before the switch is committed the install is abandoned; after it the new slot is
# booted again (one more try) and checked again; a rollback or a result is finished.
for _state in BEFORE_SWITCH:
    add_transition(_state, E.RESTARTED, S.FAILED)
    add_transition(_state, E.LOOP_DETECTED, S.FAILED)
for _state in AFTER_SWITCH:
    add_transition(_state, E.RESTARTED, S.REBOOT)
    add_transition(_state, E.LOOP_DETECTED, S.ROLLBACK)
for _state in UNCAPPED:
    add_transition(_state, E.RESTARTED, _state)
del S, E, _state


def next_state(state: State, event: Event) -> State:
    """The table's edge. Raises TransitionError when there is none."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise TransitionError(f"no transition from {state} on {event}") from None


class JobError(ValueError):
    """A saved install record that does not parse."""


@dataclass(frozen=True, slots=True)
class Job:
    """One install, as saved before each step (Mender's StateData): the artifact (its file and
    metadata), the offer's id, the target slot, what ran before, where it is, how often its
    state was saved, and why it failed or was refused."""

    install_id: str
    state: State
    artifact_path: str
    ecu: str
    version: str
    sha256: str
    length_bytes: int
    hardware_id: str
    target: str = ""  # "a" or "b", chosen in PRECONDITIONS
    from_version: str = ""
    from_sha256: str = ""
    saves: int = 0
    reason: str = ""
    refusals: tuple[tuple[str, str], ...] = field(default=())  # (precondition, detail)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            **{name: getattr(self, name) for name in _FIELDS},
            "state": str(self.state),
            "refusals": [list(r) for r in self.refusals],
        }
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Job:
        """Raises JobError."""
        try:
            doc: Any = json.loads(data)
            if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
                raise JobError(f"install record is not schema {SCHEMA}")
            job = cls(
                state=State(doc["state"]),
                refusals=tuple((str(p), str(d)) for p, d in doc.get("refusals", [])),
                **{name: doc[name] for name in _FIELDS},
            )
            check_ecu(job.ecu)
            check_text(job.version, "version")
            check_sha256(job.sha256)
            check_length(job.length_bytes)
            check_sha256(job.from_sha256, allow_empty=True)
            if job.target not in ("", "a", "b") or not isinstance(job.saves, int):
                raise JobError("install record has a bad target or save counter")
            for name in ("install_id", "artifact_path", "hardware_id", "from_version", "reason"):
                if not isinstance(getattr(job, name), str):
                    raise JobError(f"install record field {name} must be text")
        except JobError:
            raise
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, ManifestError) as exc:
            raise JobError(f"unreadable install record: {exc!r}"[:200]) from None
        return job


_FIELDS = (
    "install_id",
    "artifact_path",
    "ecu",
    "version",
    "sha256",
    "length_bytes",
    "hardware_id",
    "target",
    "from_version",
    "from_sha256",
    "saves",
    "reason",
)
