"""Pre-RoPE key quantization: the rotation is the model's, exactly undone, and it pays."""

from __future__ import annotations

import json

import pytest
import torch

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.format import KVContainer, read_container
from kv_cartridges.quant import (
    KeyRope,
    PackedKV,
    QuantError,
    QuantSpec,
    decode,
    encode,
    expected_tensors,
    key_rope_of,
)
from kv_cartridges.quant.rope import rotate_keys


def llama_config(**extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
        intermediate_size=128, vocab_size=100, **extra,
    )  # fmt: skip


def model_rope(config, positions: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Keys as a transformers Llama caches them: its own rotary embedding at ``positions``."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    cos, sin = LlamaRotaryEmbedding(config)(k.transpose(1, 2), positions[None])
    return apply_rotary_pos_emb(k, k, cos, sin)[1]


@pytest.mark.parametrize(
    "extra",
    [
        {"rope_parameters": {"rope_type": "default", "rope_theta": 10_000.0}},
        {"rope_parameters": {"rope_type": "default", "rope_theta": 500_000.0}},
        {"rope_parameters": {"rope_type": "linear", "rope_theta": 10_000.0, "factor": 4.0}},
    ],
)
def test_fingerprint_frequencies_and_rotation_are_the_models(extra):
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    config = llama_config(**extra)
    inv_freq = ModelFingerprint.from_config(config).rope_inv_freq()
    assert torch.allclose(inv_freq, LlamaRotaryEmbedding(config).inv_freq, rtol=1e-6)
    k = torch.randn(1, 2, 50, 16)
    cached = model_rope(config, torch.arange(1000, 1050), k)
    back = cached.clone()
    rotate_keys(back, KeyRope(inv_freq, start=1000), 0, 50, inverse=True)
    assert torch.allclose(back, k, atol=1e-4)  # transformers' float32 angles differ by ~1e-5
    again = back.clone()
    rotate_keys(again, KeyRope(inv_freq, start=1000), 0, 50, inverse=False)
    assert torch.allclose(again, cached, atol=1e-4)


def test_no_rope_settings_no_frequencies_and_partial_rotary_halves_them():
    base = ModelFingerprint("X", 2, 2, 16, 100, rope={})
    assert base.rope_inv_freq() is None
    partial = ModelFingerprint("X", 2, 2, 16, 100, rope={"rope_theta": 1e4,
                                                         "partial_rotary_factor": 0.5})  # fmt: skip
    assert partial.rope_inv_freq().shape == (4,)  # 8 of 16 channels rotate: 4 pairs


def steady_channel_keys(T: int = 512, D: int = 64, start: int = 0) -> tuple[torch.Tensor, KeyRope]:
    """Keys as RoPE leaves them when the pre-RoPE channels sit at steady offsets (as real keys'
    outlier channels do): after RoPE, fast pairs swing through +-offset within a group."""
    g = torch.Generator().manual_seed(0)
    offsets = torch.randn(D, generator=g) * 4
    pre = offsets + 0.3 * torch.randn(1, 2, T, D, generator=g)
    rope = KeyRope(1e4 ** -(torch.arange(D // 2, dtype=torch.float32) / (D // 2)), start)
    k = pre.clone()
    rotate_keys(k, rope, 0, T, inverse=False)
    return k, rope


@pytest.mark.parametrize("spec", [QuantSpec(), QuantSpec(rotate_k=False, k_bits=3)])
def test_keys_quantized_before_rope_lose_less(spec):
    k, rope = steady_channel_keys(start=300)
    plain = decode(encode(k, k, spec))[0]
    pre = decode(encode(k, k, spec, key_rope=rope))[0]
    err_plain, err_pre = float((plain - k).norm()), float((pre - k).norm())
    assert err_pre < 0.6 * err_plain


def test_pre_rope_off_or_no_rope_given_is_the_plain_codec():
    k, rope = steady_channel_keys(T=100)
    plain = encode(k, k, QuantSpec())
    off = encode(k, k, QuantSpec(pre_rope_k=False), key_rope=rope)
    assert plain.header["version"] == off.header["version"] == 1
    assert "key_rope" not in off.header and "k.rope_freq" not in off.tensors
    assert torch.equal(plain.tensors["k.codes"], off.tensors["k.codes"])


def test_header_tensor_and_round_trip_through_bytes():
    k, rope = steady_channel_keys(T=100, start=7)
    before = k.clone()
    packed = encode(k, k, QuantSpec(sink_tokens=4, window_tokens=3), key_rope=rope)
    assert torch.equal(k, before)  # the caller's float32 keys are not turned in place
    assert packed.header["version"] == 2
    assert packed.header["key_rope"] == {"start": 7, "pairs": 32}
    assert expected_tensors(packed.header)["k.rope_freq"] == ((32,), torch.float32)
    again = PackedKV.from_bytes(packed.to_bytes())
    assert torch.equal(key_rope_of(again).inv_freq, rope.inv_freq)
    assert key_rope_of(again).start == 7
    k2 = decode(again)[0]
    assert torch.equal(k2[:, :, :4], k[:, :, :4].half().float())  # sinks: kept as cached
    assert float((k2 - k).norm() / k.norm()) < 0.02


def test_re_encoding_with_the_stored_rope_keeps_the_keys():
    k, rope = steady_channel_keys(T=200, start=50)
    first = encode(k, k, QuantSpec(k_bits=8, v_bits=8), key_rope=rope)
    k1 = decode(first)[0]
    second = encode(k1, k1, QuantSpec(k_bits=4, v_bits=4), key_rope=key_rope_of(first))
    assert second.header["key_rope"]["start"] == 50
    assert float((decode(second)[0] - k).norm() / k.norm()) < 0.02


def _tampered(mutate) -> PackedKV:
    k, rope = steady_channel_keys(T=64)
    packed = encode(k, k, QuantSpec(), key_rope=rope)
    header = json.loads(packed.header_json)
    tensors = dict(packed.tensors)
    mutate(header, tensors)
    return PackedKV(tensors, header)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, t: h.update(version=1), "key_rope in a version 1 header"),
        (lambda h, t: h["key_rope"].update(pairs=33), "pairs 33 \\(head_dim 64\\)"),
        (lambda h, t: h["key_rope"].update(start=-1), "start -1"),
        (lambda h, t: h["key_rope"].pop("start"), "needs integer start, pairs"),
        (lambda h, t: h["key_rope"].update(start=5.0), "needs integer start, pairs"),
        (lambda h, t: h["key_rope"].update(pairs=True), "needs integer start, pairs"),
        (lambda h, t: h["key_rope"].update(start=2**40), "start 1099511627776"),
        (lambda h, t: h.update(key_rope=[1, 2]), "needs integer start, pairs"),
        (lambda h, t: t.pop("k.rope_freq"), "do not match the header"),
        (lambda h, t: t.update({"k.rope_freq": t["k.rope_freq"][:-1]}), "k.rope_freq: \\[31\\]"),
        (lambda h, t: t["k.rope_freq"].__setitem__(0, float("nan")), "k.rope_freq contains NaN"),
    ],
)
def test_tampered_rope_is_refused(mutate, message):
    with pytest.raises(QuantError, match=message):
        decode(_tampered(mutate))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inv_freq": torch.ones(2, 2)}, "non-empty 1-d"),
        ({"inv_freq": torch.tensor([])}, "non-empty 1-d"),
        ({"inv_freq": torch.tensor([1.0, float("inf")])}, "NaN/Inf"),
        ({"inv_freq": torch.ones(4), "start": -3}, "start=-3"),
        ({"inv_freq": torch.ones(4), "start": 2**31}, "start=2147483648"),
        ({"inv_freq": torch.ones(4), "start": True}, "start=True"),
    ],
)
def test_bad_key_rope_is_refused(kwargs, message):
    with pytest.raises(QuantError, match=message):
        KeyRope(**kwargs)


def test_too_many_pairs_for_the_head_dim_is_refused():
    k = torch.randn(1, 1, 10, 8)
    with pytest.raises(QuantError, match="5 channel pairs; head_dim 8 holds at most 4"):
        encode(k, k, QuantSpec(), key_rope=KeyRope(torch.ones(5)))


def test_container_keys_go_through_the_models_rope():
    config = llama_config(rope_parameters={"rope_type": "default", "rope_theta": 10_000.0})
    model = ModelFingerprint.from_config(config)
    k = model_rope(config, torch.arange(20, 120), torch.randn(1, 2, 100, 16) + 3)
    layers = [(k, k.flip(2))] * 2
    built = KVContainer.build(layers, model, spec=QuantSpec(), start_position=20,
                              origin={"kind": "cartridge", "corpus_id": "c"})  # fmt: skip
    assert all(h["key_rope"] == {"start": 20, "pairs": 8} for h in built.manifest.layers)
    decoded = read_container(built.to_bytes()).layers()
    direct = decode(encode(k, k.flip(2), QuantSpec(), key_rope=KeyRope(model.rope_inv_freq(), 20)))
    assert torch.equal(decoded[0][0], direct[0]) and torch.equal(decoded[1][1], direct[1])
    assert float((decoded[0][0] - k).norm() / k.norm()) < 0.05
    no_rope = ModelFingerprint("X", 2, 2, 16, 100, rope={})
    plain = KVContainer.build(layers, no_rope, spec=QuantSpec(), origin={"kind": "cartridge"})
    assert all("key_rope" not in h for h in plain.manifest.layers)


def test_non_json_numbers_in_a_header_are_refused_not_crashed_on():
    k, rope = steady_channel_keys(T=64)
    blob = encode(k, k, QuantSpec(), key_rope=rope).to_bytes()
    bad = blob.replace(b'\\"start\\":0', b'\\"start\\":Infinity')
    assert bad != blob
    n = int.from_bytes(bad[:8], "little") + (len(bad) - len(blob))  # the header grew
    bad = n.to_bytes(8, "little") + bad[8:]
    with pytest.raises(QuantError, match="Infinity is not JSON"):
        PackedKV.from_bytes(bad)


def test_a_container_manifest_with_infinity_is_a_format_error():
    from kv_cartridges.format import FormatError

    config = llama_config(rope_parameters={"rope_type": "default", "rope_theta": 10_000.0})
    model = ModelFingerprint.from_config(config)
    k = torch.randn(1, 2, 70, 16)
    blob = KVContainer.build([(k, k)] * 2, model, spec=QuantSpec(),
                             origin={"kind": "cartridge"}).to_bytes()  # fmt: skip
    bad = blob.replace(b'\\"start\\":0', b'\\"start\\":Infinity')
    assert bad != blob
    n = int.from_bytes(bad[:8], "little") + (len(bad) - len(blob))
    with pytest.raises(FormatError, match="Infinity is not JSON"):
        read_container(n.to_bytes(8, "little") + bad[8:], verify=False)
