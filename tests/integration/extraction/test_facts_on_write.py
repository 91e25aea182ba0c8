"""Facts on write (``infer=True``) with the default rules extractor, on SQLite and PostgreSQL:
decisions, idempotency, no duplicates from the later consolidation, categories, SDK doors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from memsvc import Memory, MemoryClient
from memsvc.errors import InvalidRequestError
from memsvc.schemas import EventBatch, EventCreate, EventsAdded, MemoryFilter
from memsvc.service import MemoryService
from tests.conftest import TenantKey

FACT_KINDS = ["fact", "preference", "plan", "event"]
T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
CHAT = [
    ("Caroline", "I live in Oslo with my dog Bolt."),
    ("Melanie", "I love painting sunsets at the lake."),
    ("Melanie", "ok"),
]


def _body(chat, session_id: str = "s1", *, infer: bool = True, start: datetime = T0) -> dict:
    return {
        "user_id": "u",
        "session_id": session_id,
        "infer": infer,
        "events": [
            {
                "speaker": who,
                "content": text,
                "event_time": (start + timedelta(minutes=n)).isoformat(),
            }
            for n, (who, text) in enumerate(chat)
        ],
    }


def _facts(svc: MemoryService, tenant_id: str) -> list:
    page = svc.memories.list(
        tenant_id, MemoryFilter(user_id="u", kind=FACT_KINDS), limit=1000, order="asc"
    )
    return page.data


def test_infer_returns_facts_with_decisions_once(
    client: TestClient, service: MemoryService, tenant: TenantKey
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "infer-1"}
    first = client.post("/v1/events", json=_body(CHAT), headers=headers)
    assert first.status_code == 201, first.text
    reply = first.json()
    assert [e["decision"] for e in reply["data"]][:2] == ["kept", "kept"]
    facts = reply["facts"]
    texts = [f["text"] for f in facts]
    assert "Caroline lives in Oslo with Caroline's dog Bolt." in texts
    assert any(t.startswith("Melanie loves painting sunsets") for t in texts)
    assert {f["event"] for f in facts} == {"ADD"}
    event_ids = {e["id"] for e in reply["data"]}
    for fact in facts:
        assert set(fact["source_event_ids"]) <= event_ids
        assert fact["metadata"]["extractor"] == "rules" and fact["session_id"] == "s1"

    # The same key again: the stored reply, facts included; nothing written twice.
    again = client.post("/v1/events", json=_body(CHAT), headers=headers)
    assert again.status_code == 201 and again.json() == reply
    assert sorted(m.id for m in _facts(service, tenant.tenant_id)) == sorted(f["id"] for f in facts)
    listed = client.get("/v1/events", params={"session_id": "s1"}, headers=tenant.headers)
    assert listed.json()["count"] == len(CHAT)

    # The same things said again later (a new request): known facts, NOOP, same ids.
    later = _body(CHAT[:2], start=T0 + timedelta(hours=1))
    repeated = client.post("/v1/events", json=later, headers=tenant.headers).json()["facts"]
    assert [(f["id"], f["event"]) for f in repeated] == [(f["id"], "NOOP") for f in facts]
    assert len(_facts(service, tenant.tenant_id)) == len(facts)

    # Without infer: no facts now (null), exactly as before.
    plain = client.post("/v1/events", json=_body(CHAT, "s2", infer=False), headers=tenant.headers)
    assert plain.status_code == 201 and plain.json()["facts"] is None


def test_consolidation_leaves_inferred_facts_alone(service: MemoryService, tenant: TenantKey):
    t = tenant.tenant_id
    batch = EventBatch.model_validate(_body(CHAT))
    written = service.events.write(t, batch)
    inferred = {f.id for f in written.facts or []}
    assert inferred
    # A later turn of the same session written without infer: consolidation extracts it.
    service.events.add(
        t,
        EventBatch.model_validate(
            _body([("Caroline", "I work at Google now.")], infer=False, start=T0 + timedelta(1))
        ),
    )
    closed = service.sessions.close(t, "s1")
    assert closed.state == "consolidated"
    facts = _facts(service, t)
    assert {m.id for m in facts} >= inferred
    new = [m for m in facts if m.id not in inferred]
    assert [m.text for m in new] == ["Caroline works at Google now."]
    # Every inferred fact still has exactly its one provenance event: no merge re-added it.
    by_id = {f.id: f for f in written.facts or []}
    for memory in facts:
        if memory.id in by_id:
            assert memory.source_event_ids == by_id[memory.id].source_event_ids
    episodes = service.memories.list(t, MemoryFilter(user_id="u", kind="episode"), limit=10)
    assert episodes.count >= 0  # episodes come from consolidation, inferred turns included


def test_rules_extractor_tags_configured_categories(client: TestClient, tenant: TenantKey) -> None:
    config = {
        "instructions": "Remember pets and hobbies.",
        "categories": [
            {"name": "pets", "keywords": ["dog", "cat"]},
            {"name": "hobbies", "keywords": ["painting", "hiking"], "description": "free time"},
        ],
    }
    put = client.put("/v1/extraction/config", json=config, headers=tenant.headers)
    assert put.status_code == 200 and put.json()["version"] == 1
    facts = client.post("/v1/events", json=_body(CHAT), headers=tenant.headers).json()["facts"]
    tags = {f["text"]: f["metadata"].get("categories") for f in facts}
    assert tags["Caroline lives in Oslo with Caroline's dog Bolt."] == ["pets"]
    assert [v for k, v in tags.items() if k.startswith("Melanie loves")] == [["hobbies"]]


@pytest.fixture(params=["embedded", "rest"])
def sdk(request, service: MemoryService, tenant: TenantKey, client: TestClient) -> Iterator:
    if request.param == "embedded":
        memory = Memory(service=service, tenant_id=tenant.tenant_id)
    else:
        memory = MemoryClient(api_key=tenant.key, http_client=client)
    yield memory
    memory.close()


def test_sdk_add_messages_with_infer(sdk) -> None:
    messages = [{"role": "user", "content": "I live in Lisbon and I love surfing."}]
    facts = sdk.add(messages, user_id="u", infer=True, idempotency_key="sdk-infer-1")
    assert [f.event for f in facts] == ["ADD"]
    assert facts[0].text.startswith("The user lives in Lisbon")
    hits = sdk.search("where does the user live?", user_id="u", top_k=5)
    assert facts[0].id in [h.memory.id for h in hits]  # searchable at once
    again = sdk.add(messages, user_id="u", infer=True, idempotency_key="sdk-infer-1")
    assert [f.id for f in again] == [f.id for f in facts] and again[0].event == "ADD"

    reply = sdk.add_events(
        [EventCreate(content="My sister Ana lives in Porto.")],
        user_id="u",
        session_id="s9",
        infer=True,
    )
    assert isinstance(reply, EventsAdded) and reply.count == 1
    assert reply.facts and reply.facts[0].source_event_ids == [reply.data[0].id]
    assert sdk.add(messages, user_id="u")[0].content == messages[0]["content"]  # events
    with pytest.raises(InvalidRequestError) as refused:
        sdk.add("plain text", user_id="u", infer=True)
    assert refused.value.field == "infer"


def test_a_better_wording_is_an_update_and_a_new_value_closes_the_old(
    client: TestClient, tenant: TenantKey
) -> None:
    def infer(text: str, minutes: int) -> dict:
        body = _body([("Caroline", text)], start=T0 + timedelta(minutes=minutes))
        reply = client.post("/v1/events", json=body, headers=tenant.headers)
        assert reply.status_code == 201, reply.text
        (fact,) = reply.json()["facts"]
        return fact

    first = infer("I adopted a cat called Luna.", 0)
    better = infer("I adopted a black cat called Luna.", 1)
    assert (first["event"], better["event"]) == ("ADD", "UPDATE")
    assert (
        better["id"] == first["id"]
        and better["text"] == "Caroline adopted a black cat called Luna."
    )
    assert len(better["source_event_ids"]) == 2  # both provenances
    history = client.get(f"/v1/memories/{first['id']}/history", headers=tenant.headers).json()
    assert [h["op"] for h in history["data"]] == ["ADD", "UPDATE"]

    oslo = infer("I live in Oslo.", 2)
    bergen = infer("I live in Bergen now.", 3)
    assert (oslo["event"], bergen["event"]) == ("ADD", "ADD")
    closed = client.get(f"/v1/memories/{oslo['id']}", headers=tenant.headers).json()
    assert closed["valid_to"] == bergen["valid_from"]  # the slot's new value closed the old
