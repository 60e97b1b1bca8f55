"""CPU seconds of the processes a benchmark phase runs on: ingest, PostgreSQL and Mosquitto.

Owns: reading user + system CPU time from `/proc/<pid>/stat` for a process and its descendants,
so that `fleet bench ingest` can say which component a drain kept busy (issue 14). Linux only:
elsewhere, or for a database on another host, the figures are None. A process that exits between
two readings (a short-lived PostgreSQL backend) takes its CPU time with it, so the sums are a lower
bound; the long-lived ones (ingest's workers, their backends, the broker) are all counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import psycopg

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of `pid`, or None when it is gone or unreadable."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(roots: Iterable[int]) -> float | None:
    """CPU seconds of the `roots` processes and all their descendants now alive; None if no root
    could be read (not Linux, or all gone)."""
    stats = {}
    if _PROC.is_dir():
        for entry in _PROC.iterdir():
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                stats[int(entry.name)] = stat
    roots = set(roots)
    if not roots & stats.keys():
        return None
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0.0, list(roots & stats.keys()), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += children.get(pid, [])
    return total


def postgres_server_pid(db_url: str) -> int | None:
    """The postmaster's pid of a PostgreSQL on this machine (the parent of our backend), or None."""
    try:
        with psycopg.connect(db_url) as conn:  # read while the backend lives: its parent is the server
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            stat = _stat(int(row[0])) if row else None
    except psycopg.Error:
        return None
    return stat[0] if stat else None


def snapshot(processes: Mapping[str, int | None]) -> dict[str, float | None]:
    """CPU seconds of each named process tree (None: unknown)."""
    return {name: tree_cpu_s([pid]) if pid else None for name, pid in processes.items()}


def spent(before: Mapping[str, float | None], after: Mapping[str, float | None]) -> dict[str, float | None]:
    """CPU seconds spent between two snapshots, per process tree."""
    out: dict[str, float | None] = {}
    for name, start in before.items():
        end = after.get(name)
        out[name] = round(end - start, 2) if start is not None and end is not None else None
    return out
