"""Ingest's JSON log lines (`fleet ingest --log-json`)."""

from __future__ import annotations

import json
import logging

from ingest.logs import JsonLinesFormatter


def test_json_lines_carry_the_message_and_the_extra_fields() -> None:
    record = logging.LogRecord("ingest.service", logging.INFO, __file__, 1, "flush %s", ("stored",), None)
    record.rows = 1200
    line = json.loads(JsonLinesFormatter().format(record))
    assert line["msg"] == "flush stored" and line["rows"] == 1200
    assert line["level"] == "info" and line["logger"] == "ingest.service" and line["ts"].endswith("+00:00")
