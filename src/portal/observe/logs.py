"""Structured logs: one JSON object per line on standard error (systemd's journal keeps them).

What goes in: time, level, logger, message, and the fields a caller passes in `extra=` that are
listed in FIELDS (request id, user id, route template, method, status, duration). Never personal
data, submitted values, cookies, tokens or query strings: request lines carry the route's
template, not the address; errors carry where they failed, not their messages.
PORTAL_LOG_FORMAT=text gives plain lines for a terminal.
"""
from __future__ import annotations

import json
import logging
import sys
import time

FIELDS = ("request_id", "user_id", "method", "route", "status", "duration_ms", "job", "event")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for k in FIELDS:
            v = record.__dict__.get(k)
            if v is not None:
                out[k] = v
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__  # the type only: messages carry values
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


_configured = False


def configure(fmt: str = "json", level: str = "INFO", stream=None) -> None:
    """Route the portal's (and uvicorn's) log records to one handler on standard error.
    Called by `portal serve` and the app factory; safe to call again."""
    global _configured
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_portal", False):
            root.removeHandler(h)
    handler._portal = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # addresses with ids; we log routes
    # pycasbin logs every decision (role, object, verb) at INFO and WARNING: not the portal's log.
    logging.getLogger("casbin").setLevel(logging.ERROR)
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
