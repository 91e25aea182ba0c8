"""Events, sessions, working memory and context: the same scenarios embedded and over REST."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from memsvc import Memory, MemoryClient
from memsvc.errors import ConflictError, InvalidRequestError, NotFoundError
from memsvc.service import MemoryService
from tests.conftest import TenantKey

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)

CHAT = [
    ("Caroline", "Hey Mel! Good to see you!"),
    ("Melanie", "Hi Caroline! How have you been?"),
    ("Caroline", "I went to an LGBTQ support group yesterday and it was so powerful."),
    ("Melanie", "ok"),
    ("Melanie", "That sounds amazing. I've been painting a lake sunrise this week."),
    ("Caroline", "thanks!"),
    ("Caroline", "I'm thinking of studying counseling to help people like me."),
]


def _events(offset_min: int = 0) -> list[dict]:
    return [
        {
            "speaker": who,
            "role": "user",
            "content": text,
            "event_time": (T0 + timedelta(minutes=offset_min + n)).isoformat(),
        }
        for n, (who, text) in enumerate(CHAT)
    ]


@pytest.fixture(params=["embedded", "rest"])
def sdk(request, service: MemoryService, tenant: TenantKey, client: TestClient) -> Iterator:
    if request.param == "embedded":
        memory = Memory(service=service, tenant_id=tenant.tenant_id)
    else:
        memory = MemoryClient(api_key=tenant.key, http_client=client)
    yield memory
    memory.close()


def test_events_are_gated_listed_and_searchable_at_once(sdk) -> None:
    written = sdk.add_events(_events(), user_id="caroline", session_id="s1")
    assert [e.decision for e in written] == [
        "kept",
        "kept",
        "kept",
        "dropped:filler",
        "kept",
        "dropped:filler",
        "kept",
    ]
    assert written[2].pieces == [CHAT[2][1]] and written[2].event_time == T0 + timedelta(minutes=2)
    listed = sdk.get_events(session_id="s1", limit=4)
    assert [e.id for e in listed.data] == [e.id for e in written[:4]] and listed.next_cursor
    rest = sdk.get_events(session_id="s1", cursor=listed.next_cursor)
    assert [e.id for e in rest.data] == [e.id for e in written[4:]]

    hits = sdk.search("support group", user_id="caroline", top_k=3)
    assert hits[0].tier == "short_term"
    assert hits[0].memory.text == "Caroline: " + CHAT[2][1]
    assert hits[0].memory.source_event_ids == [written[2].id]

    session = sdk.get_session("s1")
    assert (session.state, session.event_count, session.kept_count) == ("active", 7, 5)
    assert session.working_pieces == 5 and session.working_tokens > 0


def test_close_session_promotes_to_long_term(sdk) -> None:
    written = sdk.add_events(_events(), user_id="caroline", session_id="s1")
    closed = sdk.close_session("s1")
    assert closed.state == "consolidated" and closed.promoted_count == 5
    assert closed.working_pieces == 0
    hits = sdk.search("support group", user_id="caroline", top_k=1)
    assert hits[0].tier == "long_term" and hits[0].memory.kind == "message"
    assert hits[0].memory.source_event_ids == [written[2].id]
    assert hits[0].memory.occurred_at == T0 + timedelta(minutes=2)
    # The turn comes with its exchange: the question it answers and what that question
    # followed, each with its own provenance.
    assert [(t.side, t.text) for t in hits[0].context] == [
        ("before", "Caroline: " + CHAT[0][1]),
        ("before", "Melanie: " + CHAT[1][1]),
    ]
    assert [t.source_event_ids for t in hits[0].context] == [[written[0].id], [written[1].id]]
    assert hits[0].context[1].occurred_at == T0 + timedelta(minutes=1)
    # One message memory per kept turn; consolidation adds facts and episodes beside them.
    messages = {"kind": "message"}
    assert sdk.get_all(user_id="caroline", filters=messages).count == 5
    total = sdk.get_all(user_id="caroline").count
    again = sdk.close_session("s1")  # idempotent
    assert again.promoted_count == 5
    assert sdk.get_all(user_id="caroline", filters=messages).count == 5
    assert sdk.get_all(user_id="caroline").count == total
    assert all(
        e.promoted_at is not None
        for e in sdk.get_events(session_id="s1").data
        if e.decision == "kept"
    )


def test_context_block_has_dates_working_memory_and_stays_in_budget(sdk) -> None:
    sdk.add_events(_events(), user_id="caroline", session_id="old")
    sdk.close_session("old")
    sdk.add_events(
        [
            {
                "speaker": "Caroline",
                "content": "What should I paint for Melanie's birthday?",
                "event_time": (T0 + timedelta(days=30)).isoformat(),
            }
        ],
        user_id="caroline",
        session_id="new",
    )
    ctx = sdk.get_context(
        messages=[{"role": "user", "content": "any ideas about painting?"}],
        user_id="caroline",
        session_id="new",
        token_budget=200,
    )
    assert 0 < ctx.tokens <= 200 and ctx.token_budget == 200
    assert "## This conversation so far" in ctx.context
    assert "[2023-06-07 13:56] Caroline: What should I paint" in ctx.context
    assert "- [8 May 2023] Melanie: That sounds amazing" in ctx.context
    sections = {i.section for i in ctx.items}
    # Closing "old" consolidated it: its episode summary may make the cut too.
    assert {"facts", "working_memory"} <= sections <= {"facts", "episodes", "working_memory"}
    assert all(i.source_event_ids for i in ctx.items)
    # A line quoting an exchange names every turn it quotes among its sources.
    quoting = [i for i in ctx.items if " / " in i.text]
    assert quoting and all(len(i.source_event_ids) == i.text.count(" / ") + 1 for i in quoting)
    tiny = sdk.get_context("painting", user_id="caroline", session_id="new", token_budget=32)
    assert tiny.tokens <= 32


def test_add_messages_convenience_goes_through_events(sdk) -> None:
    out = sdk.add(
        [
            {"role": "user", "content": "I just adopted a greyhound named Bolt"},
            {"role": "assistant", "content": "Congratulations!"},
        ],
        user_id="u9",
    )
    assert [e.session_id for e in out] == ["default", "default"]
    assert [e.role for e in out] == ["user", "assistant"]
    assert sdk.search("dog name", user_id="u9")[0].memory.text.endswith("Bolt")


def test_bad_events_are_rejected_and_change_nothing(sdk) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    cases = [
        (lambda: sdk.add_events([], session_id="s"), "events"),
        (lambda: sdk.add_events([{"content": "x"}]), "events[0].session_id"),
        (lambda: sdk.add_events([{"content": "  "}], session_id="s"), "events[0].content"),
        (lambda: sdk.add_events([{"content": "x" * 40_000}], session_id="s"), "events[0].content"),
        (
            lambda: sdk.add_events([{"content": "hi", "event_time": future}], session_id="s"),
            "events[0].event_time",
        ),
        (
            lambda: sdk.add_events([{"content": "hi", "role": "robot"}], session_id="s"),
            "events.0.role",
        ),
    ]
    for call, field in cases:
        with pytest.raises(InvalidRequestError) as info:
            call()
        assert (
            (info.value.field or "")
            .replace("[", ".")
            .replace("]", "")
            .startswith(field.replace("[", ".").replace("]", ""))
        ), (field, info.value.field)
    with pytest.raises(NotFoundError):
        sdk.get_session("never")
    with pytest.raises(NotFoundError):
        sdk.close_session("never")
    sdk.add_events([{"content": "I live in Oslo"}], user_id="a", session_id="mine")
    with pytest.raises(ConflictError) as info:
        sdk.add_events([{"content": "me too"}], user_id="b", session_id="mine")
    assert info.value.field == "events[0].session_id"
    assert sdk.get_events().count == 1  # only the one good event
    with pytest.raises(InvalidRequestError) as info:
        sdk.get_context(user_id="a")
    assert info.value.field == "query"
