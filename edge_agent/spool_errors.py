"""Which SQLite failures mean a full disk, which mean a corrupt file: the two need opposite answers.

Owns: `classify`. A full disk (SQLITE_FULL, ENOSPC) is waited out with the data in memory; only
corruption (SQLITE_CORRUPT, SQLITE_NOTADB, a failed `quick_check`) moves the file aside. Treating a
full disk as corruption moved good data aside and then could not create a new file on the same full
disk (the crash loop this module exists to prevent). Codes come from `sqlite3.Error.sqlite_errorcode`
(Python 3.11+); extended codes are reduced to their primary code.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Literal

ErrorKind = Literal["full", "corrupt", "io"]


class QueueCorrupt(sqlite3.DatabaseError):
    """`PRAGMA quick_check` found damage."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"quick_check: {detail}")
        self.sqlite_errorcode = sqlite3.SQLITE_CORRUPT
        self.sqlite_errorname = "SQLITE_CORRUPT"


class DiskFull(sqlite3.OperationalError):
    """The WAL cannot be emptied before a transaction that needs the room (treated as SQLITE_FULL)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.sqlite_errorcode = sqlite3.SQLITE_FULL
        self.sqlite_errorname = "SQLITE_FULL"


def classify(exc: BaseException) -> ErrorKind:
    """The kind of a failure: "full" (SQLITE_FULL, ENOSPC, EDQUOT), "corrupt" (SQLITE_CORRUPT,
    SQLITE_NOTADB, quick_check) or "io" (the rest: SQLITE_IOERR, CANTOPEN, READONLY, closed...)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF
        if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return "corrupt"
        return "full" if primary == sqlite3.SQLITE_FULL else "io"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "full"
    return "io"
