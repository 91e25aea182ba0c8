"""Structured logs: one JSON object per line, with the request's id and tenant."""

from __future__ import annotations

import io
import json
import logging

from memsvc.observability.context import request_scope
from memsvc.observability.logs import JsonFormatter, RequestContextFilter


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def test_a_line_is_one_json_object_with_the_request() -> None:
    stream = io.StringIO()
    log = _logger(stream)
    log.info("outside")
    with request_scope("req-1") as info:
        info.tenant = "acme"
        log.info("served %s", "x", extra={"route": "/v1/search", "status": 200, "duration": 0.01})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    outside, served, failed = lines
    assert {"time", "level", "logger", "message"} <= set(outside)
    assert "request_id" not in outside
    assert served["message"] == "served x"
    assert served["level"] == "INFO"
    assert (served["request_id"], served["tenant"]) == ("req-1", "acme")
    assert (served["route"], served["status"], served["duration"]) == ("/v1/search", 200, 0.01)
    assert "ValueError: boom" in failed["exc_info"]
    assert failed["level"] == "ERROR"


def test_an_unsafe_request_id_is_replaced() -> None:
    with request_scope("bad id\nwith newline") as info:
        assert "\n" not in info.request_id and " " not in info.request_id
