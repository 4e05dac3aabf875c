"""Structured logs: one JSON object per line, with the process, the stage and the event id when
there is one, and nothing from inside an event.

Personal data stays out by construction: our log calls pass identifiers and classes (event id,
stage, error class), never field values or exception messages (a database error's message can
quote the row it failed on), and SQL parameters are hidden by the engine (`hide_parameters`).
A test runs the pipeline over the samples and searches every log line for their names and numbers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FIELDS = ("stage", "event_id", "alert_id", "topic", "partition", "agency")


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "process": self.process, "logger": record.name,
                "message": record.getMessage()}
        line.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # the class only: never the message or traceback values
        return json.dumps(line, default=str)


def configure(process: str, fmt: str = "json", level: str = "INFO") -> None:
    """Route every logger (ours, Faust's, uvicorn's, kafka's) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s " + process + " %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kafka", "aiokafka", "faust", "mode", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.ERROR if noisy == "kafka" else logging.WARNING, root.level))
