"""Entities that are things (issue 23 item 1), through consolidation and the graph API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memsvc.schemas import EventBatch, EventCreate
from tests.conftest import TenantKey

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
CHAT = [
    ("Melanie", "I love painting sunsets at the lake."),
    ("Caroline", "No worries! Those were the days."),
    ("Caroline", "I went hiking with Mel yesterday and it was lovely."),
    ("Caroline", "My goal is to help people. My voice matters."),
    ("Deborah", "My mom taught me to garden when I was small."),
    ("Deborah", "My mother loved roses."),
]


def test_close_builds_a_graph_of_things_with_aliases(service, tenant: TenantKey) -> None:
    t = tenant.tenant_id
    batch = EventBatch(
        user_id="u",
        session_id="s1",
        events=[
            EventCreate(speaker=who, content=text, event_time=T0 + timedelta(minutes=n))
            for n, (who, text) in enumerate(CHAT)
        ],
    )
    service.events.add(t, batch)
    service.sessions.close(t, "s1")

    entities = {e.name: e for e in service.graph.list_entities(t, user_id="u").data}
    for junk in ("No", "Those", "Mel", "Caroline's goal", "Caroline's voice", "Deborah's mom"):
        assert junk not in entities, junk
    assert {n: entities[n].type for n in ("Melanie", "Caroline", "Deborah")} == dict.fromkeys(
        ("Melanie", "Caroline", "Deborah"), "person"
    )
    # "Mel" is Melanie, and the fact that said so is kept as evidence.
    (mel,) = entities["Melanie"].aliases
    assert (mel.name, mel.rule) == ("Mel", "short form of a known person")
    hiking = service.memories.get(t, mel.memory_id)
    assert "Mel" in hiking.text
    # "Deborah's mom" and "Deborah's mother" are one person, related to Deborah.
    mother = entities["Deborah's mother"]
    assert mother.type == "person"
    assert [a.name for a in mother.aliases] == ["Deborah's mom"]
    family = service.graph.list_relations(t, user_id="u", type_="family:mother").data
    assert {(r.source.name, r.target.name) for r in family} == {("Deborah", "Deborah's mother")}


def test_a_contradicted_relation_closes_at_the_newer_statement(service, tenant: TenantKey) -> None:
    t = tenant.tenant_id
    later = T0 + timedelta(days=30)
    for session_id, text, when in (
        ("s1", "I love hiking, it clears my head.", T0),
        ("s2", "I don't like hiking anymore, my knees hurt.", later),
    ):
        batch = EventBatch(
            user_id="u",
            session_id=session_id,
            events=[EventCreate(speaker="Ann", content=text, event_time=when)],
        )
        service.events.add(t, batch)
        service.sessions.close(t, session_id)

    relations = service.graph.list_relations(t, user_id="u").data
    found = {(r.type, r.target.name, r.valid_from, r.valid_to) for r in relations}
    assert ("likes", "hiking", T0, later) in found  # valid from when it was said, until not
    assert ("dislikes", "hiking", later, None) in found
    now = service.graph.list_relations(t, user_id="u", as_of=later).data
    assert {(r.type, r.target.name) for r in now} == {("dislikes", "hiking")}
