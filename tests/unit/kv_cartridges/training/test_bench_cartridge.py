"""``memsvc bench cartridge`` helpers on a LoCoMo-shaped fixture and the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from kv_cartridges.training import ChatFormat
from memsvc.bench.cartridge import answer_nll, load_corpus, prefill
from memsvc.bench.kv import render_conversation
from tests.unit.kv_cartridges.training.conftest import ByteTokenizer, tiny_model


def _sample() -> dict:
    def turn(n: int, i: int, speaker: str, text: str) -> dict:
        return {"speaker": speaker, "dia_id": f"D{n}:{i + 1}", "text": text}

    turns = [
        [turn(1, i, "Ana", f"I planted {i + 2} roses.") for i in range(4)],
        [turn(2, i, "Ben", f"My dog ran {i + 3} miles.") for i in range(4)],
    ]
    conversation = {"speaker_a": "Ana", "speaker_b": "Ben"}
    for n, session in enumerate(turns, start=1):
        conversation |= {f"session_{n}": session, f"session_{n}_date_time": f"{n} May 2023"}
    qa = [
        {"question": "How many roses?", "answer": 2, "evidence": ["D1:1"], "category": 1},
        {"question": "How far?", "answer": "3 miles", "evidence": ["D2:1"], "category": 1},
        {"question": "Trick?", "adversarial_answer": "x", "evidence": ["D1:2"], "category": 5},
    ]
    return {"sample_id": "conv-x", "conversation": conversation, "qa": qa}


def test_corpus_keeps_whole_lines_and_only_answerable_questions(tmp_path: Path) -> None:
    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([_sample()]))
    tok, fmt = ByteTokenizer(), ChatFormat()
    full = render_conversation(_sample())
    ids, qa = load_corpus(data, "conv-x", tok, 10_000, fmt)
    assert bytes(ids.tolist()).decode() == full and [a for _, a in qa] == ["2", "3 miles"]
    budget = len(full.split("\n")[0]) + 60  # the first session fits, the second does not
    ids, qa = load_corpus(data, "conv-x", tok, budget, fmt)
    text = bytes(ids.tolist()).decode()
    assert text.startswith("[1 May 2023] Ana:") and "Ben" not in text
    assert fmt.context(tok, ids).numel() <= budget and [a for _, a in qa] == ["2"]


def test_batched_answer_nll_equals_one_at_a_time() -> None:
    model, tok, fmt = tiny_model(), ByteTokenizer(), ChatFormat()
    kv = prefill(model, fmt.context(tok, torch.tensor(tok.encode("[1 May] Ana: hi there"))))
    pairs = [("Who?", "Ana"), ("When was it exactly?", "1 May"), ("What?", "hi there, Ben")]
    qa = [(fmt.question(tok, q), torch.tensor(tok.encode(a))) for q, a in pairs]
    one, n1 = answer_nll(model, kv, qa, batch=1)
    many, n3 = answer_nll(model, kv, qa, batch=3)
    assert n1 == n3 == 3 + 5 + 13 and abs(one - many) < 1e-4
