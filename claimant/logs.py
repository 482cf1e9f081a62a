"""Log lines of every claimant process: a timestamp, the level, the logger,
the request id and the message, as text or as one JSON object per line
(``--log-format json|text``). Imports nothing else of claimant.

The request id comes from ``REQUEST_ID`` (a ContextVar the HTTP middlewares
set for the request they serve, and the conductor for the build it runs), or
from ``extra={"request_id": ...}`` on the call. uvicorn's own loggers (its
access lines included) get the same format and the id: uvicorn writes the
access line from inside the app's ``send``, where the ContextVar is set.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import logging.config
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Final

JSON, TEXT = "json", "text"
FORMATS: Final = (TEXT, JSON)

REQUEST_ID: ContextVar[str | None] = ContextVar("claimant_request_id", default=None)

# Attributes every LogRecord has: anything else came through ``extra``.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "color_message", "taskName"}
)


@contextlib.contextmanager
def request_id(rid: str | None) -> Iterator[None]:
    token = REQUEST_ID.set(rid)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = REQUEST_ID.get() or "-"
        return True


def _stamp(created: float) -> str:
    return (
        datetime.datetime.fromtimestamp(created, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class TextFormatter(logging.Formatter):
    """``2026-12-01T15:41:24.123Z WARNING claimant.api [req-...] message k=v``"""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in sorted(vars(record).items()) if k not in _STANDARD)
        line = (
            f"{_stamp(record.created)} {record.levelname} {record.name}"
            f" [{getattr(record, 'request_id', '-')}] {record.getMessage()}"
        )
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, request_id, message, and
    every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _stamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD:
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def log_config(fmt: str = TEXT, level: str = "info", others: str | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict (also uvicorn's ``log_config``):
    claimant's and uvicorn's loggers to stderr, in ``fmt``; ``claimant``'s
    at ``level``, every other library's (a database driver's) at ``others``
    (default: ``level`` too)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    formatter = JsonFormatter if fmt == JSON else TextFormatter
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"claimant": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "claimant",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": (others or level).upper()},
        "loggers": {
            "claimant": {"level": lvl},
            **{
                name: {"handlers": ["stderr"], "level": lvl, "propagate": False}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
        },
    }


def configure(fmt: str = TEXT, level: str = "info", others: str | None = None) -> dict[str, Any]:
    """Configure this process's logging; returns the dict (for uvicorn)."""
    config = log_config(fmt, level, others)
    logging.config.dictConfig(config)
    return config
