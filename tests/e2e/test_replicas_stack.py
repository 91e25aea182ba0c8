"""Past one machine, on loopback: two API replicas (``memsvc serve``), two Celery workers and
one beat over one PostgreSQL, a private Redis and a SeaweedFS S3 server holding the KV blobs.

A memory written through replica A is found by a search on B; a KV cache saved through A is
served by B and re-encoded by a worker (the decay pass), then served re-encoded by both; a
consolidation job survives the worker running it being killed (the other worker finishes it);
a key revoked through A is refused by B within MEMSVC_AUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import torch

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.format import KVContainer
from memsvc import MemoryClient
from tests.e2e.conftest import ADMIN_HEADERS, ServerProcess, create_tenant, start_server
from tests.e2e.stack import Proc, Stack, fresh_pg_url, private_redis, stack_env, wait_for
from tests.seaweed import ACCESS_KEY, SECRET_KEY, S3Server, running_seaweedfs

__all__ = ["fresh_pg_url", "private_redis"]  # fixtures used below

AUTH_CACHE_SECONDS = 2.0
SLACK_SECONDS = 1.5  # scheduling noise on a loaded machine, on top of the bound
FP = ModelFingerprint("LlamaForCausalLM", 2, 2, 16, 128, {"rope_theta": 10000.0}, "0" * 64)
OCTET = {"Content-Type": "application/octet-stream"}
T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from running_seaweedfs(tmp_path_factory.mktemp("objects"))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    started = Stack(tmp_path, {})
    yield started
    started.stop()


def _session_cache(session_id: str, T: int = 64) -> bytes:
    """A raw episodic cache of a session: random layers with the token ids' hash chain."""
    g = torch.Generator().manual_seed(7)
    layers = [(torch.randn(1, 2, T, 16, generator=g), torch.randn(1, 2, T, 16, generator=g))
              for _ in range(FP.num_layers)]  # fmt: skip
    ids = torch.randint(0, 128, (T,), generator=g).tolist()
    origin = {"kind": "session", "session_id": session_id}
    return KVContainer.build(layers, FP, token_ids=ids, origin=origin).to_bytes()


class _ApiProc:
    """A ``memsvc serve`` replica as the stack lists its processes (name, log, stop)."""

    def __init__(self, name: str, server: ServerProcess) -> None:
        self.name, self.server = name, server

    def log(self) -> str:
        return self.server.log()

    def stop(self) -> None:
        self.server.stop()


def _worker(stack: Stack, name: str) -> Proc:
    return stack.memsvc(name, "worker", "--pool", "solo", "--concurrency", "1")


def _status(url: str, headers: dict[str, str]) -> int:
    return httpx.get(f"{url}/v1/memories", headers=headers, timeout=30).status_code


def test_two_replicas_two_workers_share_database_redis_and_objects(
    stack: Stack, private_redis, fresh_pg_url: str, objects: S3Server, tmp_path: Path
) -> None:
    bucket = objects.new_bucket()
    stack.env = stack_env(
        fresh_pg_url,
        private_redis.url,
        MEMSVC_AUTH_CACHE_SECONDS=str(AUTH_CACHE_SECONDS),
        MEMSVC_SESSION_IDLE_SECONDS="3600",  # only the explicit job consolidates
        MEMSVC_CONSOLIDATION__BATCH_EVENTS="2",
        MEMSVC_CONSOLIDATION__DECAY_SECONDS="2",
        MEMSVC_WORKING__TOKEN_BUDGET="1000000",
        MEMSVC_KV__REENCODE_AFTER_SECONDS="8",
        MEMSVC_BLOBS__BACKEND="s3",
        MEMSVC_BLOBS__S3_ENDPOINT_URL=objects.endpoint,
        MEMSVC_BLOBS__S3_BUCKET=bucket,
        MEMSVC_BLOBS__S3_ACCESS_KEY_ID=ACCESS_KEY,
        MEMSVC_BLOBS__S3_SECRET_ACCESS_KEY=SECRET_KEY,
    )
    workers = [_worker(stack, "worker-1"), _worker(stack, "worker-2")]
    stack.beat()
    a = start_server(tmp_path / "api-a", stack.env)
    stack.procs.append(_ApiProc("api-a", a))  # type: ignore[arg-type] - logs and stop
    b = start_server(tmp_path / "api-b", stack.env)
    stack.procs.append(_ApiProc("api-b", b))  # type: ignore[arg-type]
    tenant = create_tenant(a.url, "replicas")

    with (
        MemoryClient(a.url, tenant.key, timeout=60) as on_a,
        MemoryClient(b.url, tenant.key, timeout=60) as on_b,
        httpx.Client(timeout=60) as http,  # a loaded machine: no 5 s default
    ):
        # 1. written on A, found by a search on B (B syncs from SQL before it searches)
        on_a.add([{"text": "the staging database password is tulip-42"}], user_id="ops")
        hits = on_b.search("staging database password", user_id="ops")
        assert hits and hits[0].memory.text == "the staging database password is tulip-42"

        # 2. a KV cache saved through A is served by B, then re-encoded by a worker
        body = _session_cache("chat-1")
        put = http.put(
            f"{a.url}/v1/sessions/chat-1/kv", content=body, headers=tenant.headers | OCTET
        )
        assert put.status_code in (200, 201), put.text
        kv_id = put.json()["id"]
        got = http.get(f"{b.url}/v1/kv/{kv_id}/content", headers=tenant.headers)
        assert got.status_code == 200 and got.content == body
        assert objects.keys(bucket) == [f"kv/{put.json()['sha256'][:2]}/{put.json()['sha256']}"]

        def reencoded() -> bool:
            row = http.get(f"{b.url}/v1/kv/{kv_id}", headers=tenant.headers).json()
            return row["codec"]["name"] == "kvquant"

        wait_for(reencoded, timeout=90, what="a worker to re-encode the cache", logs=stack.logs)
        row = http.get(f"{a.url}/v1/kv/{kv_id}", headers=tenant.headers).json()
        for url in (a.url, b.url):
            smaller = http.get(f"{url}/v1/kv/{kv_id}/content", headers=tenant.headers)
            assert smaller.status_code == 200 and len(smaller.content) == row["size_bytes"]
        assert objects.keys(bucket) == [f"kv/{row['sha256'][:2]}/{row['sha256']}"]

        # 3. a job survives the worker that runs it being killed
        n = 200
        events = [
            {"speaker": "Ann", "content": f"I visited museum number {k} in Madrid yesterday.",
             "event_time": (T0 + timedelta(minutes=k)).isoformat()}
            for k in range(n)
        ]  # fmt: skip
        on_a.add_events(events, user_id="ann", session_id="big")
        job = on_b.consolidate(session_id="big")

        def midway() -> bool:
            current = on_a.get_job(job.id)
            assert current.state != "succeeded", "finished before it could be killed"
            return current.counts.get("events", 0) >= 10

        wait_for(midway, timeout=90, what="the job to get going", logs=stack.logs)
        running = [w for w in workers if "Task memsvc.consolidate_job[" in w.log()]
        assert len(running) == 1, stack.logs()
        running[0].kill()  # SIGKILL: neither acked nor finished
        survivor = next(w for w in workers if w is not running[0])

        def finished() -> bool:
            return on_b.get_job(job.id).state == "succeeded"

        wait_for(finished, timeout=180, what="the other worker to finish the job", logs=stack.logs)
        done = on_a.get_job(job.id)
        assert done.attempts >= 2 and "Task memsvc.consolidate_job[" in survivor.log()
        assert on_b.get_session("big").promoted_count == n

    # 4. a key revoked through A is refused by B within the auth cache's bound
    assert _status(b.url, tenant.headers) == 200  # B has it cached
    revoke = f"{a.url}/v1/admin/tenants/{tenant.tenant_id}/keys/{tenant.key_id}/revoke"
    assert httpx.post(revoke, headers=ADMIN_HEADERS).status_code == 200
    revoked_at = time.monotonic()
    assert _status(a.url, tenant.headers) == 401
    while _status(b.url, tenant.headers) != 401:
        elapsed = time.monotonic() - revoked_at
        assert elapsed < AUTH_CACHE_SECONDS + SLACK_SECONDS, f"B accepts it after {elapsed:.1f}s"
        time.sleep(0.1)
