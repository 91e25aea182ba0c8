"""Sentence vectors, snippets and neighbouring turns: units and through the service."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from consolidation.dispatch import build_service
from memsvc.config.retrieval import RetrievalConfig
from memsvc.embeddings import HashingEmbedder
from memsvc.retrieval.render import result_line
from memsvc.retrieval.sentences import encode_sentences, snippet, split_sentences
from memsvc.retrieval.turns import NeighbourWeights, TurnCatalog, spread_to_neighbours
from memsvc.schemas import EventBatch, EventCreate, MemoryCreate, MemoryFilter, SearchRequest
from memsvc.service import MemoryService, collaborators
from tests.conftest import TenantKey, make_settings, new_tenant

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
KEY = ("t", "u", "s1")


def test_split_keeps_the_speaker_on_every_sentence_and_skips_short_ones() -> None:
    text = "Mel: Wow! I painted a sunrise last week. Then we went camping by the lake."
    assert split_sentences(text) == [
        "Mel: I painted a sunrise last week.",
        "Mel: Then we went camping by the lake.",
    ]
    assert split_sentences("Mel: Just one sentence here.") == []


def test_encode_sentences_batches_and_marks_single_sentences_none() -> None:
    embedder = HashingEmbedder(dim=32)
    blobs = encode_sentences(
        embedder, ["One short line.", "A first idea here. A second idea here."]
    )
    assert blobs[0] is None
    vectors = np.frombuffer(blobs[1], dtype=np.float32).reshape(-1, 32)
    expected = embedder.embed(["A first idea here.", "A second idea here."])
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)


def test_snippet_picks_the_sentences_nearest_the_query_in_text_order() -> None:
    embedder = HashingEmbedder(dim=256)
    text = (
        "Mel: The weather was grey all week long. I adopted a puppy named Luna yesterday. "
        "My sister visited us from Boston. We cooked pasta and watched films together."
    )
    (blob,) = encode_sentences(embedder, [text])
    query = embedder.embed_query("puppy named Luna adopted")
    cut = snippet(text, blob, query, max_words=12)
    assert cut is not None and cut.startswith("Mel: … I adopted a puppy named Luna yesterday.")
    assert len(cut.replace("…", "").split()) <= 12
    assert snippet(text, blob, query, max_words=100) is None  # fits whole
    assert snippet(text, None, query, max_words=12) is None  # no sentence vectors


def test_catalog_orders_turns_by_time_and_follows_removal() -> None:
    catalog = TurnCatalog()
    catalog.upsert(3, KEY, T0 + timedelta(seconds=2), "third")
    catalog.upsert(1, KEY, T0, "Why did you leave?")
    catalog.upsert(2, KEY, T0 + timedelta(seconds=1), "second")
    catalog.upsert(9, ("t", "u", "s2"), T0, "another session")
    assert catalog.neighbours(2) == (1, 3)
    assert catalog.neighbours(1) == (None, 2)
    assert catalog.neighbours(9) == (None, None)
    assert catalog.asks(1) and not catalog.asks(2)
    catalog.remove([2])
    assert catalog.neighbours(1) == (None, 3)
    assert catalog.neighbours(2) == (None, None)


def test_exchange_links_a_statement_the_question_about_it_and_the_answer() -> None:
    catalog = _catalog(
        "I finished my screenplay!",  # 1: a statement someone asks about
        "What is it about?",  # 2
        "Drama and romance. Do you write?",  # 3: answers 2, asks
        "Never.",  # 4: answers 3
        "Nice weather today.",  # 5: neither asks nor answers
    )
    assert catalog.exchange(1) == ([], [2, 3])  # the question about it and its answer
    assert catalog.exchange(2) == ([], [3])  # a question: its answer
    assert catalog.exchange(3) == ([1, 2], [4])
    assert catalog.exchange(4) == ([3], [])  # 3's question is about 2, itself a question
    assert catalog.exchange(5) == ([], [])
    assert catalog.exchange(99) == ([], [])


def _catalog(*lines: str) -> TurnCatalog:
    """One session's turns, pks 1, 2, ... in that order."""
    catalog = TurnCatalog()
    for pk, text in enumerate(lines, start=1):
        catalog.upsert(pk, KEY, T0 + timedelta(seconds=pk), text)
    return catalog


def test_spread_lends_more_after_a_question() -> None:
    catalog = _catalog("What made you leave?", "I wanted more time.", "Nice.")
    weights = NeighbourWeights(after=0.1, after_question=0.5, before=0.2)
    spread = spread_to_neighbours({1: 1.0, 3: 0.5}, catalog, weights)
    assert spread == {1: 1.0, 2: 0.5 + 0.2 * 0.5, 3: 0.5}
    assert spread_to_neighbours({2: 1.0}, catalog, weights) == {1: 0.2, 2: 1.0, 3: 0.1}
    off = NeighbourWeights(after=0, after_question=0, before=0)
    assert spread_to_neighbours({1: 1.0}, catalog, off) == {1: 1.0, 2: 0.0}


def test_spread_reaches_the_answer_to_a_follow_up_question() -> None:
    catalog = _catalog(
        "I finished my screenplay!", "What is it about?", "Drama and romance.", "Cool."
    )
    weights = NeighbourWeights(after=0.1, after_question=0.5, before=0.2, answer=0.4)
    # The matching statement lends to the reply two turns on, through the question between.
    assert spread_to_neighbours({1: 1.0}, catalog, weights) == {1: 1.0, 2: 0.1, 3: 0.4}
    # No question between: nothing reaches two turns on.
    assert spread_to_neighbours({2: 1.0}, catalog, weights) == {1: 0.2, 2: 1.0, 3: 0.5}
    assert spread_to_neighbours({3: 1.0}, catalog, weights) == {2: 0.2, 3: 1.0, 4: 0.1}


def test_spread_reaches_the_statement_a_matching_answer_is_about() -> None:
    catalog = _catalog(
        "Hi.", "I finished my screenplay!", "What is it about?", "Drama and romance."
    )
    weights = NeighbourWeights(after=0.1, after_question=0.5, before=0.2, statement=0.3)
    # The matching answer lends to the statement two turns back, through the question.
    assert spread_to_neighbours({4: 1.0}, catalog, weights) == {2: 0.3, 3: 0.2, 4: 1.0}
    # No question before: nothing reaches two turns back.
    assert spread_to_neighbours({3: 1.0}, catalog, weights) == {2: 0.2, 3: 1.0, 4: 0.5}


def _conversation(service: MemoryService, tenant: TenantKey) -> None:
    lines = [
        ("Ann", "Hey Bob, long time no see! How was the trip to the mountains?"),
        ("Bob", "Great, thanks for asking. We hiked every single day."),
        ("Ann", "I quit my job at the bank last month, which was a tough call."),
        ("Bob", "Oh wow, that is a big step. What made you do it?"),
        ("Ann", "I wanted to focus on things that align with my values and passions."),
        (
            "Bob",
            "Totally fair. By the way my cat knocked over a lamp yesterday. "
            "Then she slept for hours on the couch. I also bought new running shoes.",
        ),
    ]
    events = [
        EventCreate(speaker=who, content=text, event_time=T0 + timedelta(seconds=n))
        for n, (who, text) in enumerate(lines)
    ]
    batch = EventBatch(events=events, user_id="ann", session_id="s1")
    service.events.add(tenant.tenant_id, batch)
    service.sessions.close(tenant.tenant_id, "s1")


def _search(service: MemoryService, tenant: TenantKey, query: str, **filters: object) -> list:
    request = SearchRequest(query=query, top_k=4, filters=MemoryFilter(user_id="ann", **filters))
    return service.recall.search(tenant.tenant_id, request).data


def test_the_answer_after_a_matching_question_is_found(
    service: MemoryService, tenant: TenantKey
) -> None:
    _conversation(service, tenant)
    answer = "Ann: I wanted to focus on things that align with my values and passions."

    config = service.deps.settings.retrieval
    config.exchange_context = False  # the answer on its own: ranked by spreading alone

    def rank() -> int:
        request = SearchRequest(query="What made Ann quit her bank job?", top_k=10)
        found = [r.memory.text for r in service.recall.search(tenant.tenant_id, request).data]
        return found.index(answer)

    with_spreading = rank()
    config.neighbour_after = config.neighbour_after_question = config.neighbour_before = 0
    config.neighbour_answer = config.neighbour_statement = 0
    assert with_spreading < 5 <= rank()


def _shown(results: list) -> list[str]:
    """Texts in the order a prompt shows them: each result's exchange around it."""
    texts = []
    for result in results:
        before = [t.text for t in result.context if t.side == "before"]
        after = [t.text for t in result.context if t.side == "after"]
        texts += [*before, result.text, *after]
    return texts


def test_a_turn_comes_with_the_question_it_answers_and_the_answer_it_gets(
    service: MemoryService, tenant: TenantKey
) -> None:
    _conversation(service, tenant)
    question = "Bob: Oh wow, that is a big step. What made you do it?"
    answer = "Ann: I wanted to focus on things that align with my values and passions."
    found = _search(service, tenant, "Bob says a big step and asks what made her do it")
    top = found[0]
    assert top.memory.text == question
    assert [(t.side, t.text) for t in top.context] == [("after", answer)]
    assert result_line(top) == f"[8 May 2023] {question} / {answer}"
    found = _search(service, tenant, "focus on things that align with values and passions")
    top = found[0]
    assert top.memory.text == answer
    statement = "Ann: I quit my job at the bank last month, which was a tough call."
    assert [(t.side, t.text) for t in top.context] == [
        ("before", statement),
        ("before", question),
    ]
    assert result_line(top) == f"[8 May 2023] {statement} / {question} / {answer}"
    # Provenance stays per memory: each context turn names its own event.
    assert set(top.context[0].source_event_ids).isdisjoint(top.memory.source_event_ids)
    service.deps.settings.retrieval.exchange_context = False
    assert all(not r.context for r in _search(service, tenant, "what made you do it"))


def test_a_turn_no_longer_a_message_leaves_its_neighbours_exchange(
    service: MemoryService, tenant: TenantKey
) -> None:
    _conversation(service, tenant)
    answer = "Ann: I wanted to focus on things that align with my values and passions."
    found = _search(service, tenant, "Bob says a big step and asks what made her do it")
    assert [t.text for t in found[0].context] == [answer]
    (answer_id,) = [t.id for t in found[0].context]
    service.memories.update(tenant.tenant_id, answer_id, {"kind": "fact"}, actor="test")
    found = _search(service, tenant, "Bob says a big step and asks what made her do it")
    assert found[0].memory.text.endswith("What made you do it?")
    # The conversation closes over the gap: the next turn is now the one after it.
    assert [t.text[:18] for t in found[0].context] == ["Bob: Totally fair."]


def test_a_memory_without_provenance_is_never_a_repeat(
    service: MemoryService, tenant: TenantKey
) -> None:
    _conversation(service, tenant)
    # Written directly, no source events: its text is new whatever the results above show.
    note = MemoryCreate(text="Ann left the bank to focus on her values", user_id="ann")
    service.memories.add(tenant.tenant_id, [note], actor="test")
    found = _search(service, tenant, "why did Ann leave the bank to focus on her values")
    texts = [r.memory.text for r in found]
    assert "Ann left the bank to focus on her values" in texts[:2]


def test_exchange_respects_the_request_filters(service: MemoryService, tenant: TenantKey) -> None:
    _conversation(service, tenant)
    question = "Bob: Oh wow, that is a big step. What made you do it?"
    cutoff = T0 + timedelta(seconds=4)  # the answer (turn 5) is after it
    found = _search(service, tenant, "what made you do it", kind="message", occurred_before=cutoff)
    assert found and question in [r.memory.text for r in found]
    assert all(t.occurred_at < cutoff for r in found for t in r.context)


def test_neighbours_respect_the_request_filters(service: MemoryService, tenant: TenantKey) -> None:
    _conversation(service, tenant)
    found = _search(service, tenant, "What made Ann quit her bank job?", kind="fact")
    assert all(r.memory.kind == "fact" for r in found)
    found = _search(
        service, tenant, "What made Ann quit?", occurred_before=T0 + timedelta(seconds=3)
    )
    assert all(r.memory.occurred_at < T0 + timedelta(seconds=3) for r in found)


def test_long_messages_are_found_by_one_sentence_and_quoted_by_it(
    service: MemoryService, tenant: TenantKey
) -> None:
    _conversation(service, tenant)
    found = _search(service, tenant, "cat knocked over a lamp", kind="message")
    assert found[0].memory.text.startswith("Bob: Totally fair.")
    assert found[0].snippet is None or "cat knocked over a lamp" in found[0].snippet
    service.deps.settings.retrieval.snippet_words = 12
    found = _search(service, tenant, "cat knocked over a lamp", kind="message")
    assert found[0].snippet is not None and "cat knocked over a lamp" in found[0].snippet
    assert "running shoes" not in found[0].snippet
    assert result_line(found[0]).startswith("[8 May 2023] Bob: ")


def test_results_restating_shown_events_come_after_new_ones(
    service: MemoryService, tenant: TenantKey
) -> None:
    _conversation(service, tenant)
    request = SearchRequest(query="Ann quit her job at the bank", top_k=10)
    found = service.recall.search(tenant.tenant_id, request).data
    covered: set[str] = set()
    repeating = [False] * len(found)
    for n, result in enumerate(found):
        sources = set(result.shown_event_ids())
        repeating[n] = bool(sources) and sources <= covered
        covered |= sources
    assert any(repeating), "consolidation restated a message as a fact: expected a repeat"
    first_repeat = repeating.index(True)
    assert all(repeating[first_repeat:])  # nothing new after the first repeat


def test_loaded_indexes_leave_the_collectors_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``gc_freeze`` the objects alive once the indexes load are frozen (a full
    collection no longer walks them); without it nothing is."""
    gc.unfreeze()
    off = build_service(make_settings(tmp_path / "off", gc_freeze=False))
    try:
        off.warm_up()
        assert gc.get_freeze_count() == 0
    finally:
        off.close()
    on = build_service(make_settings(tmp_path / "on", gc_freeze=True))
    try:
        on.warm_up()
        assert gc.get_freeze_count() > 0
        # Indexes that grow past the re-freeze mark are frozen again at the next sync.
        monkeypatch.setattr(collaborators, "REFREEZE_CHANGES", 3)
        tenant_id = new_tenant(on).tenant_id
        gc.unfreeze()
        on.memories.add(
            tenant_id, [MemoryCreate(text=f"note {n}", user_id="u") for n in range(2)], actor="t"
        )
        on.deps.sync_indexes()
        assert gc.get_freeze_count() == 0  # 2 changes: under the mark
        on.memories.add(tenant_id, [MemoryCreate(text="note 3", user_id="u")], actor="t")
        on.deps.sync_indexes()
        assert gc.get_freeze_count() > 0
    finally:
        on.close()
        gc.unfreeze()


def _search_with(service: MemoryService, tenant_id: str, **config: object) -> list[str]:
    service.deps.settings.retrieval = RetrievalConfig(**config)
    request = SearchRequest(query="green tea", filters=MemoryFilter(user_id="u"), top_k=3)
    return [r.memory.text for r in service.recall.search(tenant_id, request).data]


def test_a_retriever_with_weight_zero_takes_no_part(
    service: MemoryService, tenant: TenantKey
) -> None:
    texts = ["I drink green tea", "green is my colour", "tea time at five", "nothing here"]
    service.memories.add(
        tenant.tenant_id, [MemoryCreate(text=t, user_id="u") for t in texts], actor="t"
    )
    assert _search_with(service, tenant.tenant_id)[0] == "I drink green tea"
    # Lexical alone finds only texts sharing a stemmed word; dense (hash embedder) ranks all.
    lexical = _search_with(service, tenant.tenant_id, dense_weight=0.0, graph_weight=0.0)
    assert "nothing here" not in lexical and lexical[0] == "I drink green tea"
    everything = _search_with(service, tenant.tenant_id, lexical_weight=0.0, graph_weight=0.0)
    assert len(everything) == 3
