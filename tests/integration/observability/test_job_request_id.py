"""The request id of ``X-Request-ID`` is carried into the jobs it starts: the job's log lines
(written on the embedded job thread) carry it."""

from __future__ import annotations

import io
import json
import logging
import time

from fastapi.testclient import TestClient

from memsvc.observability.logs import JsonFormatter, RequestContextFilter


def test_job_log_lines_carry_the_request_id(client: TestClient, tenant) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    pipeline = logging.getLogger("consolidation.pipeline")
    old_level = pipeline.level
    pipeline.addHandler(handler)
    pipeline.setLevel(logging.INFO)
    try:
        event = {"session_id": "s1", "user_id": "u", "role": "user", "content": "I moved to Oslo"}
        events = [event]
        h = tenant.headers
        assert client.post("/v1/events", json={"events": events}, headers=h).status_code == 201
        started = client.post(
            "/v1/consolidate", json={"session_id": "s1"}, headers={**h, "X-Request-ID": "req-job-7"}
        )
        assert started.status_code == 202, started.text
        assert started.headers["x-request-id"] == "req-job-7"
        job_id = started.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{job_id}", headers=h).json()["state"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.1)
        time.sleep(0.2)  # the final log line follows the row's update
    finally:
        pipeline.removeHandler(handler)
        pipeline.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("job_id") == job_id]
    assert [line["message"].split()[-1] for line in mine][-1] == "succeeded"
    assert len(mine) >= 2
    assert all(line["request_id"] == "req-job-7" for line in mine), mine
    assert all(line["tenant"] == tenant.tenant_id for line in mine), mine
