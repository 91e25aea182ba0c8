"""``memsvc bench embed``: its texts, its refusal of unknown backends, the JSON it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from memsvc.bench.embed import render, run_embed_bench, sentences


def test_synthetic_texts_mix_memories_and_queries() -> None:
    texts = sentences(10, None)
    assert len(texts) == 10 and len(set(texts)) == 10
    assert sum(t.endswith("?") for t in texts) == 5


def test_an_unknown_backend_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend 'onnx-int4'"):
        run_embed_bench(["onnx-int4"], n=4, queries=2, data_dir=tmp_path)


def test_render_writes_every_figure(tmp_path: Path) -> None:
    row = {
        "first_load_s": 30.0,
        "reload_s": 1.0,
        "query_p50_ms_1thread": 5.0,
        "query_p95_ms_1thread": 7.0,
        "query_p50_ms_default": 4.0,
        "query_p95_ms_default": 6.0,
        "batch_per_s_default": 300.0,
        "batch_per_s_1thread": 200.0,
    }
    result = {
        "sentences": 64,
        "queries": 10,
        "batch": 64,
        "backends": {"torch": row, "onnx": row | {"cosine_mean": 1.0, "cosine_min": 0.999}},
    }
    out = tmp_path / "embed.json"
    render(result, Console(file=None, width=200), out)
    assert json.loads(out.read_text()) == result
