"""The one interface every vehicle source implements, and the in-memory source tests reuse.

Owns: `Source`, shaped like python-can's `BusABC`: the public `read()` does the filtering (only
requested catalogue paths, only finite values), the timestamping and the timeout bookkeeping, and
each backend implements one hook, `_read_values()`. Backends are found by name in
`edge_agent.sources.SOURCE_KINDS` and imported lazily, so a car without CAN never imports cantools.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from contract.signals import BY_PATH


class SourceError(RuntimeError):
    """The source cannot deliver (adapter unplugged, bus down). The agent retries later."""


@dataclass(frozen=True, slots=True)
class Reading:
    """Values read at one instant; `dtcs` is None when stored DTCs were not read this time."""

    ts_ns: int
    values: Mapping[str, float]
    dtcs: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class RawReading:
    values: Mapping[str, float]
    dtcs: frozenset[str] | None = None


class Source(ABC):
    """A vehicle signal source. Not thread-safe: one agent loop reads it."""

    kind = "abstract"

    def __init__(self, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the device. Raises SourceError."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""

    @property
    @abstractmethod
    def available_paths(self) -> frozenset[str]:
        """Catalogue paths this source can deliver."""

    def read(self, paths: Collection[str], timeout_s: float) -> Reading:
        """Current values of the wanted `paths` (others and non-finite values are dropped), stamped
        with the time the read started. Raises SourceError when the device fails."""
        if timeout_s < 0:
            raise ValueError("timeout_s must be >= 0")
        ts_ns = self._clock_ns()
        wanted = [p for p in paths if p in BY_PATH]
        raw = self._read_values(wanted, timeout_s)
        values = {p: float(v) for p, v in raw.values.items() if p in wanted and math.isfinite(v)}
        return Reading(ts_ns, values, raw.dtcs)

    @abstractmethod
    def _read_values(self, paths: list[str], timeout_s: float) -> RawReading:
        """The backend hook: read what it can of `paths` within `timeout_s`."""


@dataclass
class MemorySource(Source):
    """Values set by the caller (`set`): for tests and for feeding replayed data."""

    kind = "memory"
    current: dict[str, float] = field(default_factory=dict)
    dtcs: frozenset[str] | None = None
    clock_ns: Callable[[], int] = time.time_ns

    def __post_init__(self) -> None:
        super().__init__(clock_ns=self.clock_ns)
        self._lock = threading.Lock()

    @property
    def available_paths(self) -> frozenset[str]:
        return frozenset(BY_PATH)

    def set(self, values: Mapping[str, float], dtcs: frozenset[str] | None = None) -> None:
        with self._lock:
            self.current.update(values)
            if dtcs is not None:
                self.dtcs = dtcs

    def _read_values(self, paths: list[str], timeout_s: float) -> RawReading:
        with self._lock:
            return RawReading(dict(self.current), self.dtcs)
