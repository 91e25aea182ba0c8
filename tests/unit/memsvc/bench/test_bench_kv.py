"""memsvc bench kv helpers that need no model: rendering the conversation, counting peer bytes."""

from __future__ import annotations

import pytest
import torch

from memsvc.bench.kv import CONFIGS, _tensor_bytes, render_conversation


def test_conversation_renders_in_session_order():
    sample = {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "A",
            "speaker_b": "B",
            "session_10": [{"speaker": "B", "dia_id": "D10:1", "text": "late"}],
            "session_10_date_time": "1 June 2023",
            "session_2": [
                {"speaker": "A", "dia_id": "D2:1", "text": "hi", "blip_caption": "a dog"},
                {"speaker": "B", "dia_id": "D2:2", "text": "hello"},
            ],
            "session_2_date_time": "8 May 2023",
        },
    }
    assert render_conversation(sample) == (
        "[8 May 2023] A: hi\n[8 May 2023] B: hello\n[1 June 2023] B: late"
    )


def test_peer_bytes_count_every_tensor_once():
    stored = (torch.zeros(4, dtype=torch.uint8), {"scale": torch.zeros(2), "axis": 0})
    assert _tensor_bytes(stored) == 4 + 8


def test_configs_cover_the_measured_options():
    names = " ".join(CONFIGS)
    for option in ("kivi-4 eager reference", "rotK", "rotV", "sink4", "window", "layers0-3"):
        assert option in names
    assert "= QuantSpec()" in names and "hqq-4" in names and "quanto-4" in names


def test_rows_named_after_a_preset_run_exactly_that_preset():
    from kv_cartridges.quant import PRESETS, KeyRope

    rope = KeyRope(torch.ones(4))
    named = {"QuantSpec()": PRESETS["default"], "fast": PRESETS["fast"],
             "compact": PRESETS["compact"], "tiny": PRESETS["tiny"]}  # fmt: skip
    for preset, spec in named.items():
        (name,) = [n for n in CONFIGS if n.endswith(f"= {preset}")]
        codec = CONFIGS[name](rope)
        assert codec.spec == spec, name
        assert codec.key_rope is (rope if spec.pre_rope_k else None), name


def test_missing_peer_packages_are_named_before_any_work(monkeypatch, tmp_path):
    import importlib.util

    import memsvc.bench.kv as bench

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "hqq" else real(name, *a)
    )
    assert bench._missing_peers(["kivi-4", "hqq-4", "hqq-2"]) == ["hqq"]
    assert bench._missing_peers(["kivi-4", "4 +sink4 = fast"]) == []

    def no_model():
        raise AssertionError("the model was loaded before the peers were checked")

    monkeypatch.setattr(bench, "load_model", no_model)
    with pytest.raises(
        bench.BenchUnavailable, match=r"peer rows need hqq: pip install -e '\.\[peers\]'"
    ):
        bench.run_kv_bench(tmp_path / "unused.json", only=["hqq-4"])
