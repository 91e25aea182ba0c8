"""The LLM extractor against a real OpenAI-compatible server process (openai_stub.py), which
checks each request the way the API does: facts on write with their decisions, the project's
instructions in the prompt, and loud failures (a 4xx fails the request or the job, with the
endpoint's message, and writes nothing), on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from consolidation.dispatch import build_service
from consolidation.pipeline import run_job
from memsvc.extraction import llm
from memsvc.schemas import EventBatch, MemoryFilter
from memsvc.service import MemoryService
from memsvc.service.jobs import create_job
from tests.conftest import TenantKey, make_settings, new_tenant
from tests.integration.extraction.conftest import API_KEY, MODEL, Stub

CHAT = [
    {"speaker": "Caroline", "content": "I adopted a cat called Luna last week."},
    {"speaker": "Melanie", "content": "We hiked up the Preikestolen cliff on Sunday."},
    {"speaker": "Melanie", "content": "ok"},
]
CONFIG = {
    "instructions": "Keep pets and outdoor trips; ignore greetings.",
    "categories": [
        {"name": "pets", "keywords": ["cat", "dog"], "description": "animals people keep"},
        {"name": "outdoors", "keywords": ["hiked", "cliff"]},
    ],
}


def _service(tmp_path: Path, db_url: str, stub: Stub, **overrides) -> MemoryService:
    values = {
        "llm_base_url": stub.base_url,
        "llm_model": MODEL,
        "llm_api_key": API_KEY,
        "llm_timeout_seconds": 10,
    }
    settings = make_settings(tmp_path / "data", db_url, **{**values, **overrides})
    return build_service(settings)


@pytest.fixture
def llm_service(tmp_path: Path, db_url: str, stub: Stub) -> Iterator[MemoryService]:
    svc = _service(tmp_path, db_url, stub)
    yield svc
    svc.close()


@pytest.fixture
def llm_client(llm_service: MemoryService) -> Iterator[TestClient]:
    with TestClient(create_app(llm_service.settings, service=llm_service)) as client:
        yield client


def _post(client: TestClient, tenant: TenantKey, key: str | None = None, session="s1"):
    headers = {**tenant.headers, **({"Idempotency-Key": key} if key else {})}
    body = {"user_id": "u", "session_id": session, "infer": True, "events": CHAT}
    return client.post("/v1/events", json=body, headers=headers)


def _nothing_written(client: TestClient, tenant: TenantKey) -> None:
    events = client.get("/v1/events", headers=tenant.headers).json()
    memories = client.get("/v1/memories", headers=tenant.headers).json()
    assert (events["count"], memories["count"]) == (0, 0)


def test_infer_returns_the_servers_facts_with_decisions(
    llm_client: TestClient, llm_service: MemoryService, stub: Stub
) -> None:
    tenant = new_tenant(llm_service)
    put = llm_client.put("/v1/extraction/config", json=CONFIG, headers=tenant.headers)
    assert put.status_code == 200, put.text

    first = _post(llm_client, tenant, key="llm-1")
    assert first.status_code == 201, first.text
    reply = first.json()
    ids = [e["id"] for e in reply["data"]]
    facts = reply["facts"]
    assert [(f["text"], f["event"], f["source_event_ids"]) for f in facts] == [
        ("Caroline said: I adopted a cat called Luna last week.", "ADD", [ids[0]]),
        ("Melanie said: We hiked up the Preikestolen cliff on Sunday.", "ADD", [ids[1]]),
    ]
    assert [f["metadata"]["categories"] for f in facts] == [["pets"], ["outdoors"]]
    assert {f["metadata"]["extractor"] for f in facts} == {"llm"}

    (request,) = stub.requests()
    assert request["model"] == MODEL
    assert request["response_format"]["json_schema"]["strict"] is True
    system, user = request["messages"][0]["content"], request["messages"][1]["content"]
    assert "Project instructions:\nKeep pets and outdoor trips; ignore greetings." in system
    assert "- pets: animals people keep; keywords: cat, dog" in system
    assert "- outdoors: keywords: hiked, cliff" in system
    assert ids[0] in user and "Preikestolen" in user

    # Retried with its key: the same reply, and the server is not asked again.
    again = _post(llm_client, tenant, key="llm-1")
    assert again.status_code == 201 and again.json() == reply and len(stub.requests()) == 1
    # Said again in another session: the server extracts the same facts, memsvc knows them.
    repeat = _post(llm_client, tenant, session="s2").json()["facts"]
    assert [(f["id"], f["event"]) for f in repeat] == [(f["id"], "NOOP") for f in facts]

    # Consolidating the sessions later asks the server nothing and adds no fact twice.
    stub.clear()
    for session_id in ("s1", "s2"):
        assert llm_service.sessions.close(tenant.tenant_id, session_id).state == "consolidated"
    assert stub.requests() == []
    kinds = ["fact", "preference", "plan", "event"]
    listed = llm_client.get("/v1/memories", params={"kind": kinds}, headers=tenant.headers).json()
    assert sorted(m["id"] for m in listed["data"]) == sorted(f["id"] for f in facts)


def test_a_schema_the_server_refuses_fails_the_request_and_writes_nothing(
    llm_client: TestClient, llm_service: MemoryService, stub: Stub, monkeypatch
) -> None:
    tenant = new_tenant(llm_service)
    loose = copy.deepcopy(llm.RESPONSE_SCHEMA)
    del loose["properties"]["facts"]["items"]["additionalProperties"]
    monkeypatch.setattr(llm, "RESPONSE_SCHEMA", loose)
    refused = _post(llm_client, tenant, key="llm-bad")
    assert refused.status_code == 502, refused.text
    error = refused.json()["error"]
    assert error["code"] == "extraction_rejected" and error["field"] == "infer"
    assert error["message"] == (
        "the LLM endpoint refused the extraction request (400): Invalid schema for "
        "response_format 'memories': In context=('properties', 'facts', 'items'), "
        "'additionalProperties' is required to be supplied and to be false."
    )
    assert len(stub.requests()) == 1  # a 4xx is not retried
    _nothing_written(llm_client, tenant)
    # The key was not used up: fixed, the same request goes through.
    monkeypatch.undo()
    assert _post(llm_client, tenant, key="llm-bad").status_code == 201


def test_an_unknown_model_fails_the_consolidation_job_loudly(
    tmp_path: Path, db_url: str, stub: Stub
) -> None:
    svc = _service(tmp_path, db_url, stub, llm_model="no-such-model")
    try:
        tenant = new_tenant(svc)
        body = {"user_id": "u", "session_id": "s1", "events": CHAT}
        svc.events.add(tenant.tenant_id, EventBatch.model_validate(body))
        job = create_job(svc.deps, tenant.tenant_id, "request", {"session_id": "s1"})
        assert run_job(svc.deps, job.id) == "failed"
        failed = svc.jobs.get(tenant.tenant_id, job.id)
        assert failed.state == "failed" and failed.errors[-1]["step"] == "extract"
        assert failed.errors[-1]["error"] == (
            "ExtractionRejected: the LLM endpoint refused the extraction request (404): The "
            "model `no-such-model` does not exist or you do not have access to it."
        )
        # No fact was quietly extracted by the rules instead (the turns were promoted as
        # messages, which comes before extraction).
        facts = MemoryFilter(kind=["fact", "preference", "plan", "event"])
        assert svc.memories.list(tenant.tenant_id, facts, limit=10).count == 0
    finally:
        svc.close()


def test_a_failing_server_gives_503_after_retries_and_writes_nothing(
    llm_client: TestClient, llm_service: MemoryService, stub: Stub
) -> None:
    tenant = new_tenant(llm_service)
    body = {
        "user_id": "u",
        "session_id": "s1",
        "infer": True,
        "events": [{"content": "Tell the server to fail [stub:500] please."}],
    }
    failed = llm_client.post("/v1/events", json=body, headers=tenant.headers)
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"]["code"] == "extraction_unavailable"
    assert "Retry-After" in failed.headers
    assert len(stub.requests()) == 3
    _nothing_written(llm_client, tenant)
