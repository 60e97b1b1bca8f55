"""The A/B boot marker of one ECU as a value, and the only ways to change it (pure, no I/O).

Owns RAUC's marks and a bootloader's choice. Each of the two slots, "a" and "b", is good, bad, or
tentative with a number of boot tries left; the boot order says which is tried first, and
`booted` which one runs now. An install goes as in RAUC: `mark_bad` the target slot, write it,
`mark_active` (tentative, first in the order), then `boot` (the bootloader's step: a tentative
slot spends one try, and one with no tries left is marked bad and skipped), and the booted side
`mark_good`s it after its health check; `fall_back` is the rollback. Every function keeps one
invariant, which the property tests check: at least one slot is good, and the booted slot is good
or tentative. Writing the marker durably is `edge_agent.ota.slots`'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

SLOTS = ("a", "b")


class BootError(ValueError):
    """A change that would break the invariant (e.g. mark the only good slot bad), or a marker
    that does not parse."""


class Mark(StrEnum):
    GOOD = "good"
    BAD = "bad"
    TENTATIVE = "tentative"


@dataclass(frozen=True, slots=True)
class SlotMark:
    mark: Mark
    tries_left: int = 0  # boot tries a tentative slot has left; 0 otherwise


GOOD = SlotMark(Mark.GOOD)
BAD = SlotMark(Mark.BAD)


def other(slot: str) -> str:
    """The other slot of the pair. Raises BootError for a name that is not a slot."""
    if slot not in SLOTS:
        raise BootError(f"unknown slot {slot!r}")
    return "b" if slot == "a" else "a"


@dataclass(frozen=True, slots=True)
class BootState:
    order: tuple[str, str]
    a: SlotMark
    b: SlotMark
    booted: str

    def mark(self, slot: str) -> SlotMark:
        return self.a if slot == "a" else self.b

    def with_mark(self, slot: str, mark: SlotMark) -> BootState:
        return replace(self, a=mark) if slot == "a" else replace(self, b=mark)

    @property
    def inactive(self) -> str:
        return other(self.booted)

    def is_valid(self) -> bool:
        """The invariant: a good slot exists, and the booted one can boot."""
        return (
            sorted(self.order) == list(SLOTS)
            and Mark.GOOD in (self.a.mark, self.b.mark)
            and self.mark(self.booted).mark is not Mark.BAD
            and all(m.tries_left >= 0 for m in (self.a, self.b))
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "order": list(self.order),
                "booted": self.booted,
                "slots": {
                    s: {"mark": str(m.mark), "tries_left": m.tries_left}
                    for s, m in zip(SLOTS, (self.a, self.b), strict=True)
                },
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> BootState:
        """Raises BootError for anything but a valid marker."""
        try:
            doc: Any = json.loads(data)
            marks = {s: _slot_mark(doc["slots"][s]) for s in SLOTS}
            order = tuple(doc["order"])
            state = cls((order[0], order[1]), marks["a"], marks["b"], doc["booted"])
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError) as exc:
            raise BootError(f"unreadable boot marker: {exc!r}"[:200]) from None
        if len(order) != 2 or state.booted not in SLOTS or not state.is_valid():
            raise BootError("boot marker breaks the invariant (no good slot, or a bad slot booted)")
        return state


def _slot_mark(doc: Any) -> SlotMark:
    tries = doc.get("tries_left", 0)
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 0:
        raise ValueError("tries_left must be a non-negative integer")
    mark = Mark(doc["mark"])
    return SlotMark(mark, tries if mark is Mark.TENTATIVE else 0)


def initial() -> BootState:
    """A fresh ECU: slot a good and booted (the factory software), slot b empty (bad)."""
    return BootState(("a", "b"), GOOD, BAD, "a")


def mark_bad(state: BootState, slot: str) -> BootState:
    """Before writing `slot`: it can no longer be booted. Raises BootError unless the other slot
    is good and booted (a running or the only good slot is never marked bad)."""
    keep = other(slot)
    if state.booted != keep or state.mark(keep).mark is not Mark.GOOD:
        raise BootError(f"slot {slot} can be marked bad only while slot {keep} is good and booted")
    return replace(state.with_mark(slot, BAD), order=(keep, slot))


def mark_active(state: BootState, slot: str, tries: int) -> BootState:
    """After `slot` is written and verified: boot it next, tentatively, at most `tries` times.
    Raises BootError unless the other slot is good and booted, or for tries < 1."""
    keep = other(slot)
    if tries < 1:
        raise BootError("a tentative slot needs at least one boot try")
    if state.booted != keep or state.mark(keep).mark is not Mark.GOOD:
        raise BootError(f"slot {slot} can be made active only while slot {keep} is good and booted")
    return replace(state.with_mark(slot, SlotMark(Mark.TENTATIVE, tries)), order=(slot, keep))


def boot(state: BootState) -> BootState:
    """The bootloader's step at a (re)start: the first slot in the order that can boot runs; a
    tentative one spends a try, and one with no tries left is marked bad and skipped. Raises
    BootError only for a state that breaks the invariant."""
    for slot in state.order:
        mark = state.mark(slot)
        if mark.mark is Mark.GOOD:
            return replace(state, booted=slot)
        if mark.mark is Mark.TENTATIVE:
            if mark.tries_left > 0:
                spent = SlotMark(Mark.TENTATIVE, mark.tries_left - 1)
                return replace(state.with_mark(slot, spent), booted=slot)
            state = replace(state.with_mark(slot, BAD), order=(other(slot), slot))
            return boot(state)
    raise BootError("no slot can boot")


def mark_good(state: BootState, slot: str) -> BootState:
    """The booted side confirms its slot after the health check (the commit). Raises BootError
    unless `slot` is booted."""
    if state.booted != slot:
        raise BootError(f"only the booted slot can be marked good (booted: {state.booted})")
    return state.with_mark(slot, GOOD)


def fall_back(state: BootState, slot: str) -> BootState:
    """Roll back from `slot`: mark it bad, put the other slot first and boot it. A no-op when
    `slot` is already bad and not booted. Raises BootError unless the other slot is good."""
    keep = other(slot)
    if state.mark(slot).mark is Mark.BAD and state.booted == keep:
        return state
    if state.mark(keep).mark is not Mark.GOOD:
        raise BootError(f"cannot fall back from slot {slot}: slot {keep} is not good")
    return BootState((keep, slot), *(_marks_with(state, slot, BAD)), booted=keep)


def _marks_with(state: BootState, slot: str, mark: SlotMark) -> tuple[SlotMark, SlotMark]:
    changed = state.with_mark(slot, mark)
    return changed.a, changed.b


def settle(state: BootState) -> BootState:
    """With no install under way, a tentative slot is an unconfirmed boot: fall back from it."""
    for slot in SLOTS:
        if state.mark(slot).mark is Mark.TENTATIVE:
            return fall_back(state, slot)
    return state
