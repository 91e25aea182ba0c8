"""Seed data for the inspector's tests: two small conversations consolidated into facts (a
move from Oslo to Bergen invalidates the first address), an entity graph and jobs, plus
memories, metadata and an entity name that try to inject markup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from consolidation.steps.decay import decay_memories
from memsvc.schemas import EventBatch, EventCreate, MemoryCreate, MemoryFilter
from memsvc.service import MemoryService
from stores.models import EntityRow, MemoryRow

#: Text that would run script, or break out of an attribute, if it were not escaped.
SCRIPT_TEXT = '<script>alert("xss-text")</script> prefers <b>tea</b>'
ATTR_TEXT = '" onmouseover="alert(1)" x="'
IMG_TEXT = "'><img src=x onerror=alert(2)>"
META_VALUE = "<script>alert('xss-meta')</script>\"><svg onload=alert(3)>"
ENTITY_NAME = '<script>alert("xss-entity")</script>"><i>Zed'


@dataclass
class Seeded:
    tenant_id: str
    user_id: str
    hostile_id: str  # the memory whose text and metadata hold markup
    plain_id: str  # a plain memory (deleted by the tests)
    archived_id: str  # an archived memory (restored by the tests)
    fact_id: str  # "Ann's dog is named Rex." (extracted, with provenance)
    entity_id: str  # the entity renamed to ENTITY_NAME


def seed(service: MemoryService, tenant_id: str, user_id: str = "ann") -> Seeded:
    """The conversation, consolidated at once (closing the session), and the extra memories."""
    conversations = {
        "s0": (datetime(2024, 3, 1, tzinfo=UTC), ["I live in Oslo."]),
        "s1": (
            datetime(2025, 6, 1, tzinfo=UTC),
            ["I live in Bergen now.", "My dog is named Rex.", "I work at Acme.", "I like jazz."],
        ),
    }
    for session_id, (when, lines) in conversations.items():
        events = [
            EventCreate(role="user", speaker="Ann", content=line, event_time=when) for line in lines
        ]
        batch = EventBatch(events=events, user_id=user_id, session_id=session_id)
        service.events.add(tenant_id, batch)
        service.sessions.close(tenant_id, session_id)  # consolidated now: Oslo is invalidated
    add = service.memories.add
    (hostile,) = add(
        tenant_id,
        [
            MemoryCreate(
                text=f"{SCRIPT_TEXT} {ATTR_TEXT} {IMG_TEXT}",
                user_id=user_id,
                kind="preference",
                metadata={"note": META_VALUE, "attr": ATTR_TEXT, "stars": 5},
            )
        ],
        actor="test",
    )
    (plain,) = add(
        tenant_id,
        [MemoryCreate(text="The spare key is under the blue flowerpot.", user_id=user_id)],
        actor="test",
    )
    (old,) = add(
        tenant_id,
        [MemoryCreate(text="The old locker code was 4711.", user_id=user_id)],
        actor="test",
    )
    with service.deps.sessions.begin() as session:  # old enough to decay away
        session.execute(
            update(MemoryRow)
            .where(MemoryRow.id == old.id)
            .values(created_at=datetime.now(UTC) - timedelta(days=400))
        )
    assert decay_memories(service.deps, tenant_id=tenant_id)["archived"] == 1
    facts = service.memories.list(tenant_id, MemoryFilter(user_id=user_id, kind="fact")).data
    fact = next(m for m in facts if "Rex" in m.text)
    jazz = next(
        e for e in service.graph.list_entities(tenant_id, user_id=user_id).data if e.name == "jazz"
    )
    with service.deps.sessions.begin() as session:
        session.execute(update(EntityRow).where(EntityRow.id == jazz.id).values(name=ENTITY_NAME))
    return Seeded(tenant_id, user_id, hostile.id, plain.id, old.id, fact.id, jazz.id)
