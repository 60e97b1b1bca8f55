"""The telemetry table and the signal catalogue agree: one column per signal, of the wire type."""

from __future__ import annotations

import psycopg
import pytest

from contract import SIGNALS
from ingest.copy_binary import TELEMETRY_COLUMNS

pytestmark = pytest.mark.postgres


def test_telemetry_columns_match_the_catalogue(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'telemetry'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
    columns = dict(rows)
    assert tuple(columns)[: len(TELEMETRY_COLUMNS)] == TELEMETRY_COLUMNS
    assert columns["ts"] == "timestamp with time zone"
    for signal in SIGNALS:
        assert columns[signal.column] == signal.wire_type.pg_type, signal.vss_path
