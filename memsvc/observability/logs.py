"""Structured logs: one JSON object per line, with the request's id, tenant and route.

Every record gets ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``pid`` and,
inside a request or a job it started, ``request_id`` and ``tenant``; fields passed as
``extra=`` (the API's access line: ``route``, ``status``, ``duration``) are kept, and an
exception comes as ``exc_info`` text. :func:`configure_logging` is called by the process
entry points (``memsvc serve``, ``memsvc worker``, ``memsvc beat``), never on import.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from memsvc.observability.context import current

__all__ = ["JsonFormatter", "RequestContextFilter", "configure_logging"]

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RequestContextFilter(logging.Filter):
    """Stamps ``request_id`` and ``tenant`` of the current request (if any) on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = current()
        if info is not None:
            if not hasattr(record, "request_id"):
                record.request_id = info.request_id
            if info.tenant is not None and not hasattr(record, "tenant"):
                record.tenant = info.tenant
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """The root logger writes to stderr as JSON lines (or plain text); uvicorn's and
    Celery's loggers propagate to it (their own handlers are removed)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
        handler.addFilter(_default_request_id)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The API's middleware writes one access line per request with route, status and duration.
    logging.getLogger("uvicorn.access").disabled = True


def _default_request_id(record: logging.LogRecord) -> bool:
    if not hasattr(record, "request_id"):
        record.request_id = "-"
    return True
