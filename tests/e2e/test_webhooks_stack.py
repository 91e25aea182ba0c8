"""Webhooks and observability in the stack: the API over PostgreSQL, a real Celery worker and
beat over a private Redis, a receiver process on loopback that fails and then recovers.

The beat's ``memsvc.deliver_webhooks`` sends from the worker; the request id of the API call
that started a job is in the worker's log lines of that job; the worker serves its own
metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from memsvc.webhook_signature import verify
from tests.e2e.conftest import create_tenant, free_port, start_server
from tests.e2e.stack import Stack, fresh_pg_url, private_redis, stack_env, wait_for
from tests.webhook_receiver import start_receiver

__all__ = ["fresh_pg_url", "private_redis"]  # fixtures used below


@pytest.fixture
def stack(tmp_path: Path):
    started = Stack(tmp_path, {})
    yield started
    started.stop()


def _worker_samples(port: int) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_webhooks_from_the_celery_worker(
    stack: Stack, private_redis, fresh_pg_url: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    stack.env = stack_env(
        fresh_pg_url,
        private_redis.url,
        MEMSVC_WEBHOOKS__POLL_SECONDS="0.5",
        MEMSVC_WEBHOOKS__BACKOFF_BASE_SECONDS="0.5",
        MEMSVC_WEBHOOKS__BACKOFF_MAX_SECONDS="1",
        MEMSVC_METRICS__WORKER_PORT=str(metrics_port),
        MEMSVC_SESSION_IDLE_SECONDS="3600",  # only the requested job runs
    )
    receiver = start_receiver(tmp_path / "receiver", fail_first=2)
    try:
        worker, _ = stack.worker(), stack.beat()
        api = start_server(tmp_path / "api", stack.env)
        stack.procs.append(api)  # type: ignore[arg-type] - stopped like the others
        tenant = create_tenant(api.url, "hooks")
        h = tenant.headers
        hook = httpx.post(
            f"{api.url}/v1/webhooks",
            json={"url": receiver.url, "event_types": ["memory.added", "job.finished"]},
            headers=h,
        ).json()
        added = httpx.post(
            f"{api.url}/v1/memories", json={"text": "I like tea", "user_id": "u"}, headers=h
        )
        assert added.status_code == 201, added.text

        def delivered() -> bool:
            return [r["status"] for r in receiver.requests()][-1:] == [200]

        wait_for(delivered, timeout=90, what="the memory.added delivery", logs=stack.logs)
        sent = receiver.requests()
        assert [r["status"] for r in sent] == [500, 500, 200]
        body = json.loads(sent[-1]["body"])
        assert body["type"] == "memory.added"
        assert body["data"]["memory_id"] == added.json()["data"][0]["id"]
        verify(hook["secret"], sent[-1]["body"].encode(), sent[-1]["headers"]["Memsvc-Signature"])
        listed = httpx.get(f"{api.url}/v1/webhooks/{hook['id']}/deliveries", headers=h).json()
        (delivery,) = listed["data"]
        assert delivery["state"] == "delivered"
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]

        # A job started by a request: its log lines in the worker carry the request's id.
        events = [{"session_id": "s1", "user_id": "u", "role": "user", "content": "I live in Oslo"}]
        assert httpx.post(f"{api.url}/v1/events", json={"events": events}, headers=h).is_success
        job = httpx.post(
            f"{api.url}/v1/consolidate",
            json={"session_id": "s1"},
            headers={**h, "X-Request-ID": "req-stack-1"},
        )
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]

        def job_announced() -> bool:
            return any(
                json.loads(r["body"])["type"] == "job.finished" and r["status"] == 200
                for r in receiver.requests()
            )

        wait_for(job_announced, timeout=90, what="the job.finished delivery", logs=stack.logs)
        finished = [json.loads(r["body"]) for r in receiver.requests()]
        (announced,) = [b["data"]["job"] for b in finished if b["type"] == "job.finished"]
        assert (announced["id"], announced["state"]) == (job_id, "succeeded")
        lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
        of_job = [line for line in lines if line.get("job_id") == job_id]
        assert len(of_job) >= 2, worker.log()[-3000:]
        assert {line.get("request_id") for line in of_job} == {"req-stack-1"}

        samples = _worker_samples(metrics_port)
        jobs = ("memsvc_consolidation_jobs_total", (("kind", "consolidate"),
                                                    ("outcome", "succeeded")))  # fmt: skip
        assert samples[jobs] >= 1
        retry = ("memsvc_webhook_delivery_attempts_total", (("outcome", "retry"),))
        assert samples[retry] >= 2
    finally:
        receiver.stop()
