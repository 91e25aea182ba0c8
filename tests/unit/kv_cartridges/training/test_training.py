"""Self-study, distillation loss, determinism, resume, frozen first token, generation."""

from __future__ import annotations

import torch

from kv_cartridges.training import (
    Cartridge,
    ChatFormat,
    SelfStudyConfig,
    TrainConfig,
    generate,
    load_cartridge,
    load_samples,
    make_samples,
    quantize_kv,
    save_cartridge,
    save_samples,
    train_cartridge,
)
from tests.unit.kv_cartridges.training.conftest import tiny_model

SMALL = SelfStudyConfig(samples=4, chunk_tokens=96, reply_tokens=12, top_k=8, seed=3)


def _setup(model, tok, corpus_ids, tokens=16):
    samples = make_samples(model, tok, corpus_ids, SMALL)
    context = ChatFormat().context(tok, corpus_ids)
    return Cartridge.from_prefix(model, context, tokens), samples


def test_samples_have_teacher_targets_for_every_position(model, tok, corpus_ids, tmp_path):
    samples = make_samples(model, tok, corpus_ids, SMALL)
    assert len(samples) == 4
    for s in samples:
        n = s.ids.numel()
        assert s.topk_ids.shape == s.topk_logp.shape == (n - 1, 8)
        assert torch.allclose(s.topk_logp.exp().sum(-1), torch.ones(n - 1), atol=1e-5)
    save_samples(tmp_path / "d.safetensors", samples, SMALL)
    again = load_samples(tmp_path / "d.safetensors")
    assert all(torch.equal(a.ids, b.ids) for a, b in zip(samples, again, strict=True))


def test_targets_are_the_teachers_next_token_distributions(model, tok, corpus_ids):
    greedy = SelfStudyConfig(samples=3, chunk_tokens=96, reply_tokens=10, top_k=4, temperature=0)
    fmt = ChatFormat()
    for s in make_samples(model, tok, corpus_ids, greedy, fmt=fmt):
        Q = fmt.question(tok, "x").numel()  # every seed prompt here starts the answer after Q'
        start = s.ids.numel() - 10  # greedy answers run to reply_tokens (no stop in 10 bytes)
        assert start >= Q
        # each answer token is the teacher's argmax at the position before it
        assert s.topk_ids[start - 1 :, 0].tolist() == s.ids[start:].tolist()


def test_cartridge_starts_as_the_prefix_kv(model, tok, corpus_ids):
    context = ChatFormat().context(tok, corpus_ids)
    cart = Cartridge.from_prefix(model, context, 16)
    with torch.no_grad():
        layers = model(context[:16].unsqueeze(0), use_cache=True).cache.layers
    assert cart.tokens == 16 and cart.full_keys().shape == (2, 2, 16, 8)
    assert torch.allclose(cart.full_keys()[1], layers[1].keys[0], rtol=1e-5, atol=1e-6)
    assert torch.allclose(cart.full_values()[0], layers[0].values[0], rtol=1e-5, atol=1e-6)


def test_loss_decreases_and_only_the_cartridge_learns(model, tok, corpus_ids):
    cart, samples = _setup(model, tok, corpus_ids)
    before = {n: p.clone() for n, p in model.named_parameters()}
    first_k, first_v = cart.first_keys.clone(), cart.first_values.clone()
    result = train_cartridge(model, cart, samples, TrainConfig(steps=24, lr=5e-2, batch=2))
    assert len(result.losses) == 24
    head, tail = sum(result.losses[:8]) / 8, sum(result.losses[-8:]) / 8
    assert tail < head * 0.95, (head, tail)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())
    assert [n for n, _ in cart.named_parameters()] == ["keys", "values"]
    assert torch.equal(cart.first_keys, first_k) and torch.equal(cart.first_values, first_v)
    assert torch.equal(cart.full_keys()[:, :, :1], first_k)


def test_same_seed_same_cartridge(tok, corpus_ids):
    runs = []
    for _ in range(2):
        model = tiny_model()
        cart, samples = _setup(model, tok, corpus_ids)
        result = train_cartridge(model, cart, samples, TrainConfig(steps=6, seed=1))
        runs.append((cart.full_keys().detach(), result.losses))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


def test_resume_from_checkpoint_equals_one_run(model, tok, corpus_ids, tmp_path):
    config = TrainConfig(steps=8, seed=2, checkpoint_every=4)
    cart, samples = _setup(model, tok, corpus_ids)
    straight = train_cartridge(model, cart, samples, config)

    ckpt = tmp_path / "ckpt.safetensors"
    cart2, _ = _setup(model, tok, corpus_ids)
    train_cartridge(model, cart2, samples, TrainConfig(steps=4, seed=2), checkpoint=ckpt)
    cart3, _ = _setup(model, tok, corpus_ids)  # a fresh process: only the file survives
    resumed = train_cartridge(model, cart3, samples, config, checkpoint=ckpt)
    assert resumed.resumed_from == 4
    assert resumed.losses == straight.losses
    assert torch.equal(cart3.full_keys(), cart.full_keys())
    assert torch.equal(cart3.full_values(), cart.full_values())
    assert b"pickle" not in ckpt.read_bytes()[:8]


def test_trained_cartridge_generates_and_round_trips(model, tok, corpus_ids, tmp_path):
    cart, samples = _setup(model, tok, corpus_ids)
    train_cartridge(model, cart, samples, TrainConfig(steps=2))
    prompt = ChatFormat().question(tok, "Who fed the owl?")
    out = generate(model, prompt, cache=cart.to_cache(), max_new_tokens=5)
    assert len(out.tokens[0]) == 5
    # transformers' own generate: placeholder ids stand for the cartridge's positions
    ids = torch.cat([torch.zeros(cart.tokens, dtype=torch.long), prompt]).unsqueeze(0)
    gen = model.generate(ids, cache=cart.to_cache(), max_new_tokens=5, do_sample=False)
    assert gen[0, ids.shape[1] :].tolist() == out.tokens[0]
    save_cartridge(tmp_path / "c.safetensors", cart, {"tokens": cart.tokens})
    again, meta = load_cartridge(tmp_path / "c.safetensors")
    assert meta == {"tokens": 16} and torch.equal(again.full_keys(), cart.full_keys())
    q = quantize_kv(cart.detached_kv())
    k, k2 = cart.detached_kv()[0][0], q.decode()[0][0]
    assert k2.shape == k.shape and q.nbytes > 0
    assert (k2 - k).abs().max() < 0.2 * k.abs().max()


def test_quantized_cartridge_is_the_one_the_kv_store_keeps(model, tok, corpus_ids):
    """With the model's RoPE (what the benchmark passes), quantize_kv encodes exactly as
    KVContainer.build stores a cartridge: keys before RoPE from position 0."""
    from kv_cartridges.fingerprint import ModelFingerprint
    from kv_cartridges.format import KVContainer
    from kv_cartridges.quant import KeyRope, QuantSpec

    cart, _ = _setup(model, tok, corpus_ids)
    fp = ModelFingerprint.from_model(model)
    q = quantize_kv(cart.detached_kv(), key_rope=KeyRope(fp.rope_inv_freq(), 0))
    assert all(p.header["key_rope"] == {"start": 0, "pairs": fp.head_dim // 2} for p in q.layers)
    stored = KVContainer.build(
        cart.detached_kv(), fp, spec=QuantSpec(), origin={"kind": "cartridge"}
    )
    for (k, v), (k2, v2) in zip(stored.layers(), q.decode(), strict=True):
        assert torch.equal(k, k2) and torch.equal(v, v2)


def test_a_generated_question_is_its_first_line_ending_in_a_question_mark(tok):
    from kv_cartridges.training.selfstudy import _question_text

    stop = tok.encode("<|im_end|>")
    ask = tok.encode("Q: When did Ana feed the owl?\nMaybe on Monday.<|im_end|>")
    assert _question_text(tok, ask, stop) == "When did Ana feed the owl?"
    assert _question_text(tok, tok.encode("Ana fed the owl."), stop) is None
    assert _question_text(tok, tok.encode("Why?"), stop) is None  # too short to be about anything
