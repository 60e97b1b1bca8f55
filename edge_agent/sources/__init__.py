"""Vehicle signal sources behind one interface (`Source.read`), found by name and imported lazily.

| kind        | backend                                   | needs                         |
|-------------|-------------------------------------------|-------------------------------|
| `simulated` | `edge_agent.sources.simulated`            | nothing                       |
| `memory`    | `edge_agent.sources.base.MemorySource`    | nothing (tests, replay)       |
| `obd`       | `edge_agent.sources.obd_adapter` (ELM327) | python-obd, a serial/TCP port |
| `can`       | `edge_agent.sources.can_bus` (DBC)        | python-can, cantools          |
"""

from __future__ import annotations

import importlib
from typing import Any

from edge_agent.sources.base import MemorySource, RawReading, Reading, Source, SourceError

SOURCE_KINDS = {
    "simulated": "edge_agent.sources.simulated:SimulatedSource",
    "memory": "edge_agent.sources.base:MemorySource",
    "obd": "edge_agent.sources.obd_adapter:ObdSource",
    "can": "edge_agent.sources.can_bus:CanSource",
}


def make_source(kind: str, **options: Any) -> Source:
    """Build a source by kind name. Raises ValueError for an unknown kind."""
    target = SOURCE_KINDS.get(kind)
    if target is None:
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(SOURCE_KINDS)}")
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    source: Source = cls(**options)
    return source


__all__ = ["SOURCE_KINDS", "MemorySource", "RawReading", "Reading", "Source", "SourceError", "make_source"]
