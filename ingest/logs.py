"""Structured logs: one JSON object per line, for log shippers (Loki, Elasticsearch, CloudWatch).

Owns: the formatter. A record's `extra={...}` fields become top-level keys, so
`log.info("flush stored", extra={"rows": 1200})` is `{"msg": "flush stored", "rows": 1200, ...}`.
Entry points choose it (`fleet ingest --log-json`); library code only logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def use_json_lines(root: logging.Logger | None = None) -> None:
    """Switch every handler of the root logger to JSON lines."""
    for handler in (root or logging.getLogger()).handlers:
        handler.setFormatter(JsonLinesFormatter())
