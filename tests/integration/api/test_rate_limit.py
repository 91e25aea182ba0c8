"""Per-key rate limits: 429 with Retry-After, in-process and shared through the real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.config.limits import RateLimitConfig
from memsvc.errors import RateLimitError
from memsvc.schemas import MemoryFilter
from memsvc.service import MemoryService
from memsvc.service.rate_limit import RateLimiter
from tests.conftest import make_settings, new_tenant
from tests.e2e.conftest import free_port


def _limited_service(
    tmp_path: Path, name: str, redis_url: str = "", **limits: float
) -> MemoryService:
    settings = make_settings(tmp_path / name, f"sqlite:///{tmp_path / 'shared.db'}")
    config = RateLimitConfig(**limits)
    return build_service(settings.model_copy(update={"rate_limit": config, "redis_url": redis_url}))


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[MemoryService, TestClient]]:
    # One request per 10 s after a burst of 3: nothing refills while the test runs.
    service = _limited_service(tmp_path, "one", requests_per_second=0.1, burst=3)
    with TestClient(create_app(service.settings, service=service)) as client:
        yield service, client
    service.close()


def test_a_key_over_its_limit_gets_429_with_retry_after(limited) -> None:
    service, client = limited
    tenant, other = new_tenant(service), new_tenant(service)
    statuses = [client.get("/v1/memories", headers=tenant.headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/v1/memories", headers=tenant.headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    # Per key: another tenant's key still has its whole burst; a refused write writes nothing.
    assert client.get("/v1/memories", headers=other.headers).status_code == 200
    writes = [
        client.post(
            "/v1/memories", json={"text": f"fact {n}", "user_id": "u"}, headers=other.headers
        ).status_code
        for n in range(3)
    ]
    assert writes == [201, 201, 429]
    listed = service.memories.list(other.tenant_id, MemoryFilter(user_id="u")).data
    assert sorted(m.text for m in listed) == ["fact 0", "fact 1"]


def test_gcra_allows_the_burst_then_the_rate() -> None:
    limiter = RateLimiter(RateLimitConfig(requests_per_second=10, burst=2))
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(RateLimitError) as info:
        limiter.check("k")
    assert 0 < info.value.retry_after <= 0.1
    time.sleep(info.value.retry_after + 0.01)
    limiter.check("k")
    assert not RateLimiter(RateLimitConfig()).enabled  # off by default


def test_replicas_share_one_limit_through_redis(tmp_path: Path, redis_url: str) -> None:
    one = _limited_service(tmp_path, "one", redis_url, requests_per_second=0.1, burst=4)
    two = _limited_service(tmp_path, "two", redis_url, requests_per_second=0.1, burst=4)
    try:
        tenant = new_tenant(one)
        with (
            TestClient(create_app(one.settings, service=one)) as a,
            TestClient(create_app(two.settings, service=two)) as b,
        ):
            statuses = [
                client.get("/v1/memories", headers=tenant.headers).status_code
                for client in (a, b, a, b, a, b)
            ]
        assert statuses == [200, 200, 200, 200, 429, 429]  # one burst of 4 across both
    finally:
        one.close()
        two.close()


def test_the_redis_script_is_atomic_under_concurrency(redis_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    limiter = RateLimiter(RateLimitConfig(requests_per_second=0.01, burst=10), redis_url)
    key = f"atomic-{uuid.uuid4().hex}"

    def attempt(_: int) -> bool:
        try:
            limiter.check(key)
        except RateLimitError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = sum(pool.map(attempt, range(40)))
    limiter.close()
    assert allowed == 10


def test_without_redis_each_process_still_limits(caplog: pytest.LogCaptureFixture) -> None:
    away = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    limiter = RateLimiter(RateLimitConfig(requests_per_second=0.1, burst=2), away, timeout=0.5)
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(RateLimitError):
        limiter.check("k")
    assert "counted per process" in caplog.text
    limiter.close()
