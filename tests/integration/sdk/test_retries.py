"""SDK retries: one Idempotency-Key per write call, bounded retries, lost replies written once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from memsvc import AsyncMemoryClient, MemoryClient
from memsvc.errors import ConflictError, InvalidRequestError, ServerError, TransportError
from memsvc.service import MemoryService
from tests.conftest import TenantKey

EVENTS = [{"role": "user", "content": "my flight to Lisbon leaves on Friday"}]


def _lost(method: str, url: str) -> httpx.ReadError:
    return httpx.ReadError("connection lost", request=httpx.Request(method, url))


class LossyHttp:
    """Sends each request to the app, then loses the reply of the first ``lose`` writes
    (the server has acted: exactly the case a retry must not double)."""

    def __init__(self, inner: Any, lose: int = 1) -> None:
        self.inner = inner
        self.lose = lose
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def _note(self, method: str, url: str, headers: dict[str, str]) -> bool:
        self.sent.append((method, url, dict(headers)))
        if method != "GET" and self.lose > 0:
            self.lose -= 1
            return True
        return False

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.inner.request(method, url, **kwargs)
        if self._note(method, url, kwargs.get("headers") or {}):
            raise _lost(method, url)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncLossyHttp(LossyHttp):
    async def request(self, method: str, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
        response = await self.inner.request(method, url, **kwargs)
        if self._note(method, url, kwargs.get("headers") or {}):
            raise _lost(method, url)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Scripted:
    """Answers from a script: each item an ``httpx.Response`` or an exception to raise."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.calls = 0

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.calls += 1
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        item.request = httpx.Request(method, "http://memsvc" + url)
        return item

    def close(self) -> None:
        pass


def _keys(http: LossyHttp) -> list[str | None]:
    return [headers.get("Idempotency-Key") for _, _, headers in http.sent]


@pytest.mark.parametrize("call", ["add", "add_events", "add_messages"])
def test_a_lost_reply_is_retried_with_its_key_and_written_once(
    client: TestClient, tenant: TenantKey, call: str
) -> None:
    http = LossyHttp(client)
    with MemoryClient(api_key=tenant.key, http_client=http, retry_backoff=0.01) as sdk:
        if call == "add":
            written = sdk.add(["packs light", "hates queues"], user_id="u")
            assert sdk.get_all(user_id="u").count == 2
        else:
            send = sdk.add_events if call == "add_events" else sdk.add
            written = send(EVENTS, user_id="u", session_id="s")
            assert sdk.get_events(session_id="s").count == 1
    keys = _keys(http)
    assert keys[0] and keys[0] == keys[1]  # the retry carried the first attempt's key
    assert len(written) == (2 if call == "add" else 1)


def test_async_client_retries_a_lost_reply_the_same_way(
    service: MemoryService, tenant: TenantKey
) -> None:
    app = create_app(service.settings, service=service)

    async def scenario() -> None:
        inner = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m")
        http = AsyncLossyHttp(inner)
        async with AsyncMemoryClient(
            api_key=tenant.key, http_client=http, retry_backoff=0.01
        ) as sdk:
            written = await sdk.add_events(EVENTS, user_id="u", session_id="s")
            assert (await sdk.get_events(session_id="s")).count == 1
            assert [e.id for e in written] == [e.id for e in (await sdk.get_events()).data]
        keys = _keys(http)
        assert keys[0] and keys[0] == keys[1]

    asyncio.run(scenario())


def test_each_write_call_gets_its_own_key_and_reads_none(
    client: TestClient, tenant: TenantKey
) -> None:
    http = LossyHttp(client, lose=0)
    with MemoryClient(api_key=tenant.key, http_client=http) as sdk:
        (memory,) = sdk.add("a", user_id="u")
        sdk.add("b", user_id="u")
        sdk.search("a", user_id="u")
        sdk.get_context("a", user_id="u")
        sdk.get_all(user_id="u")
        sdk.update(memory.id, text="c")
        sdk.delete(memory.id)
    keys = dict(zip([f"{m} {u}" for m, u, _ in http.sent], _keys(http), strict=False))
    write_keys = [k for (m, u, _), k in zip(http.sent, _keys(http), strict=True) if k]
    assert len(write_keys) == len(set(write_keys)) == 4  # add, add, update, delete
    assert keys["POST /v1/search"] is None and keys["POST /v1/context"] is None
    assert keys["GET /v1/memories"] is None


def test_transport_errors_are_retried_a_bounded_number_of_times() -> None:
    request = httpx.Request("POST", "http://memsvc/v1/memories")
    http = Scripted([httpx.ConnectError("refused", request=request) for _ in range(5)])
    sdk = MemoryClient(api_key="k", http_client=http, max_retries=3, retry_backoff=0.01)
    with sdk, pytest.raises(TransportError):
        sdk.add("x")
    assert http.calls == 4  # the call and three retries


def _response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


OK_PAGE = {"data": [], "count": 0, "next_cursor": None}


@pytest.mark.parametrize(
    ("first", "retried"),
    [
        (
            _response(
                503, {"error": {"code": "unavailable", "message": "db"}}, **{"Retry-After": "0"}
            ),
            True,
        ),
        (
            _response(
                429, {"error": {"code": "rate_limited", "message": "slow"}}, **{"Retry-After": "0"}
            ),
            True,
        ),
        (_response(409, {"error": {"code": "idempotency_in_progress", "message": "busy"}}), True),
        (_response(409, {"error": {"code": "conflict", "message": "scope clash"}}), False),
        (_response(422, {"error": {"code": "invalid_request", "message": "bad"}}), False),
    ],
)
def test_which_answers_are_retried(first: httpx.Response, retried: bool) -> None:
    http = Scripted([first, _response(200, OK_PAGE)])
    with MemoryClient(api_key="k", http_client=http, retry_backoff=0.01) as sdk:
        if retried:
            assert sdk.get_all().count == 0
        else:
            with pytest.raises((ConflictError, InvalidRequestError)):
                sdk.get_all()
    assert http.calls == (2 if retried else 1)


def test_retry_after_is_read_into_the_error() -> None:
    busy = _response(
        503, {"error": {"code": "unavailable", "message": "db"}}, **{"Retry-After": "7"}
    )
    http = Scripted([busy])
    sdk = MemoryClient(api_key="k", http_client=http, max_retries=0)
    with sdk, pytest.raises(ServerError) as info:
        sdk.get_all()
    assert info.value.status_code == 503 and info.value.retry_after == 7.0
