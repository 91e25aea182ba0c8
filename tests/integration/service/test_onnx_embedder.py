"""The ONNX Runtime backends of the packaged MiniLM against the torch one, real models.

Each model is loaded (and each ONNX file exported) once for the session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memsvc import Memory
from memsvc.embeddings import build_embedder, onnx_cache_dir
from memsvc.embeddings.minilm import MiniLMEmbedder
from memsvc.embeddings.onnx import OnnxMiniLMEmbedder
from memsvc.embeddings.onnx_export import FP32_FILE, INT8_FILE
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

SENTENCES = [
    "I adopted a puppy from the shelter last week",
    "My sister is getting married in June",
    "The quarterly report is due on Friday",
    "We repainted the kitchen yellow",
    "What hobby did Alice pick up?",
    "tax law",
    # Longer than the model's 256 tokens: truncated the same way by both backends.
    "a very long message about many things " * 60,
]


@pytest.fixture(scope="session")
def torch_minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-data")


@pytest.fixture(scope="session")
def onnx_fp32(data_dir: Path) -> OnnxMiniLMEmbedder:
    settings = make_settings(data_dir, embedder="minilm", embedder_backend="onnx")
    embedder = build_embedder(settings)
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    return embedder


@pytest.fixture(scope="session")
def onnx_int8(data_dir: Path, onnx_fp32: OnnxMiniLMEmbedder) -> OnnxMiniLMEmbedder:
    settings = make_settings(data_dir, embedder="minilm", embedder_backend="onnx-int8")
    embedder = build_embedder(settings)
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    return embedder


def test_first_start_exports_into_the_data_dir(
    data_dir: Path, onnx_fp32: OnnxMiniLMEmbedder, onnx_int8: OnnxMiniLMEmbedder
) -> None:
    cache = onnx_cache_dir(make_settings(data_dir))
    assert cache == data_dir / "models" / "minilm-onnx"
    assert onnx_fp32.exported and onnx_fp32.onnx_path.parent.parent == cache
    assert onnx_fp32.onnx_path.name == FP32_FILE
    # int8 reused the fp32 export beside it and only quantized.
    assert onnx_int8.exported and onnx_int8.onnx_path == onnx_fp32.onnx_path.parent / INT8_FILE
    # Dynamic int8 stores the matrices in a quarter of the space (the fp32 word embeddings,
    # 47 MB of the 90, stay as they are).
    assert onnx_int8.onnx_path.stat().st_size < 0.7 * onnx_fp32.onnx_path.stat().st_size


def test_a_second_start_reuses_the_export(
    data_dir: Path, onnx_fp32: OnnxMiniLMEmbedder, onnx_int8: OnnxMiniLMEmbedder
) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in (onnx_fp32.onnx_path, onnx_int8.onnx_path)}
    again = OnnxMiniLMEmbedder(onnx_cache_dir(make_settings(data_dir)), int8=True)
    assert not again.exported and again.onnx_path == onnx_int8.onnx_path
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert np.allclose(again.embed(SENTENCES[:2]), onnx_int8.embed(SENTENCES[:2]), atol=1e-6)


@pytest.mark.parametrize(("backend", "floor"), [("fp32", 0.99), ("int8", 0.95)])
def test_vectors_agree_with_torch(
    backend: str,
    floor: float,
    torch_minilm: MiniLMEmbedder,
    onnx_fp32: OnnxMiniLMEmbedder,
    onnx_int8: OnnxMiniLMEmbedder,
) -> None:
    embedder = onnx_fp32 if backend == "fp32" else onnx_int8
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    assert embedder.dim == 384 and embedder.name == torch_minilm.name
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * torch_minilm.embed(SENTENCES), axis=1)
    assert cosines.min() > floor, cosines
    # One text through the query path (its own one-thread session) gives the same vector; on
    # int8 nearly: dynamic quantization scales each call's activations by that call's range.
    alone = embedder.embed_query(SENTENCES[2])
    if backend == "fp32":
        assert np.allclose(alone, vectors[2], atol=1e-5)
    else:
        assert alone @ vectors[2] > 0.98
    assert embedder.count_tokens("hello world") == torch_minilm.count_tokens("hello world") == 2
    assert embedder.embed([]).shape == (0, 384)


def test_the_service_recalls_by_meaning_on_int8(
    tmp_path: Path, onnx_int8: OnnxMiniLMEmbedder
) -> None:
    settings = make_settings(tmp_path, embedder="minilm", embedder_backend="onnx-int8")
    with Memory(settings=settings, embedder=onnx_int8) as memory:
        memory.add(SENTENCES[:4], user_id="u")
        top = memory.search("new dog", user_id="u", top_k=1)[0]
    assert top.memory.text.startswith("I adopted a puppy")
    assert top.lexical_score is None  # found by meaning alone
