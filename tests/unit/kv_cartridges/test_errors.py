"""Bad input is refused with a QuantError that names the problem; nothing is returned."""

from __future__ import annotations

import pytest
import torch

from kv_cartridges.quant import PackedKV, QuantError, QuantSpec, decode, encode

IMPLS = ["fused", "reference"]


def kv(T=100, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 2, T, 64, generator=g).to(dtype), torch.randn(1, 2, T, 64, generator=g)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("side", ["k", "v"])
@pytest.mark.parametrize("token", [0, 50, 99])  # sink, quantized, window
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_inf_are_rejected_and_counted(impl, side, token, value):
    k, v = kv()
    x = k if side == "k" else v
    x[0, 1, token, 5] = value
    x[0, 0, token, 7] = value
    with pytest.raises(QuantError, match=rf"^{side}\b.*NaN/Inf at 2 elements"):
        encode(k, v, QuantSpec(sink_tokens=4, window_tokens=8), impl=impl)


@pytest.mark.parametrize("impl", IMPLS)
def test_values_beyond_fp16_are_rejected(impl):
    k, v = kv()
    v[0, 0, 40, 3] = 1e6
    with pytest.raises(QuantError, match="fp16 range"):
        encode(k, v, impl=impl)


@pytest.mark.parametrize(
    ("k", "v", "message"),
    [
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "batch, kv_heads, tokens, head_dim"),
        (torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 5, 8), "k and v differ"),
        (torch.zeros(1, 1, 4, 8, dtype=torch.int32),) * 2 + ("dtype",),
        ([[1.0]], torch.zeros(1, 1, 1, 1), "torch.Tensor"),
    ],
)
def test_malformed_tensors_are_rejected(k, v, message):
    with pytest.raises(QuantError, match=message):
        encode(k, v)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"k_bits": 5}, "k_bits=5"),
        ({"v_bits": 1}, "v_bits=1"),
        ({"group_size": 0}, "group_size"),
        ({"sink_tokens": -1}, "sink_tokens"),
        ({"window_tokens": 2.5}, "window_tokens"),
        ({"k_bits": 4.0}, "k_bits=4.0"),
        ({"v_bits": True}, "v_bits=True"),
        ({"group_size": True}, "group_size=True"),
        ({"rotate_k": 1}, "rotate_k=1"),
        ({"pre_rope_k": "yes"}, "pre_rope_k='yes'"),
        ({"seed": -1}, "seed=-1"),
        ({"seed": 2**63}, "seed=9223372036854775808"),
        ({"seed": "0"}, "seed='0'"),
    ],
)
def test_bad_specs_are_rejected(fields, message):
    with pytest.raises(QuantError, match=message):
        QuantSpec(**fields)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([4], "JSON object"),
        ({"base": {}, "layers": [1]}, "LayerwiseSpec"),
        ({"base": {}, "layers": {"-1": {}}}, "layer key '-1'"),
        ({"base": {}, "layers": {"²": {}}}, "layer key"),
        ({"base": {}, "layers": {"0": {"nope": 1}}}, "bad override"),
        ({"base": {}, "layers": {"0": 7}}, "an override is an object"),
        ({"base": [], "layers": {}}, "JSON object"),
        ({"base": {}, "extra": 1}, "unknown LayerwiseSpec fields"),
    ],
)
def test_bad_layerwise_specs_are_rejected(data, message):
    from kv_cartridges.quant import LayerwiseSpec

    with pytest.raises(QuantError, match=message):
        (LayerwiseSpec if isinstance(data, dict) else QuantSpec).from_dict(data)


def test_quant_error_is_a_value_error_and_bad_impl_is_named():
    assert issubclass(QuantError, ValueError)
    with pytest.raises(QuantError, match="impl='gpu'"):
        encode(*kv(8), impl="gpu")


def test_decode_refuses_a_tampered_layer():
    packed = encode(*kv(40))
    missing = PackedKV({n: t for n, t in packed.tensors.items() if n != "v.zero"}, packed.header)
    with pytest.raises(QuantError, match="do not match the header"):
        decode(missing)
    short = dict(packed.tensors, **{"k.codes": packed.tensors["k.codes"][..., :-1]})
    with pytest.raises(QuantError, match=r"k\.codes"):
        decode(PackedKV(short, packed.header))
    with pytest.raises(QuantError, match="version"):
        PackedKV.from_flat(packed.tensors, dict(packed.header, version=99))
    with pytest.raises(QuantError, match="header"):
        decode(PackedKV(packed.tensors, dict(packed.header, shape=[1, 2])))
    with pytest.raises(QuantError, match="safetensors"):
        PackedKV.from_bytes(b"not a safetensors blob")
