"""PackedKV: flat named tensors + JSON header, safetensors without pickle, honest nbytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, save

from kv_cartridges.quant import (
    LayerwiseSpec,
    PackedKV,
    QuantSpec,
    decode,
    encode,
    expected_tensors,
    spec_for_layer,
)


def layer(seed, T=70, D=64, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, T, D, generator=g).to(dtype), torch.randn(1, 3, T, D, generator=g)


def test_header_is_json_and_names_are_the_documented_ones():
    spec = QuantSpec(rotate_k=True, rotate_v=False, sink_tokens=4, window_tokens=2)
    packed = encode(*layer(0), spec)
    header = json.loads(json.dumps(packed.header))
    assert header == packed.header
    assert header["format"] == "memsvc.kvquant" and header["version"] == 1
    assert header["shape"] == [1, 3, 70, 64] and header["dtype"] == "float32"
    assert QuantSpec.from_dict(header["spec"]) == spec
    want = {
        *(f"{s}.{n}" for s in "kv" for n in ("codes", "scale", "zero", "sink", "window")),
        "k.signs",
    }
    assert set(packed.tensors) == want == set(expected_tensors(packed.header))


def test_nbytes_counts_every_byte():
    packed = encode(*layer(1, T=2048), QuantSpec(rotate_k=False, sink_tokens=0))
    data = sum(t.numel() * t.element_size() for t in packed.tensors.values())
    assert packed.nbytes == data + len(packed.header_json.encode())
    # 4-bit codes + fp16 scale and zero per 64 elements = 4.5 bits, plus the header
    assert 4.5 < packed.bits_per_element < 4.51
    three = encode(*layer(1, T=2048), QuantSpec(k_bits=3, v_bits=3, rotate_k=False, sink_tokens=0))
    assert three.tensors["k.codes"].numel() == 3 * 2048 * 64 * 3 // 8  # no byte wasted per code


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_safetensors_round_trip(dtype):
    k, v = layer(2, dtype=dtype)
    packed = encode(k, v.to(dtype))
    again = PackedKV.from_bytes(packed.to_bytes())
    assert again.header == packed.header
    for (k1, v1), (k2, v2) in [(decode(packed), decode(again))]:
        assert torch.equal(k1, k2) and torch.equal(v1, v2) and k2.dtype == dtype


def test_many_layers_in_one_file_with_per_layer_specs():
    spec = LayerwiseSpec(QuantSpec(k_bits=3, v_bits=3), {0: {"k_bits": 8}, 2: {"v_bits": 2}})
    assert LayerwiseSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    layers = [layer(i) for i in range(3)]
    tensors, headers = {}, {}
    for i, (k, v) in enumerate(layers):
        flat, header = encode(k, v, spec_for_layer(spec, i)).to_flat(f"layers.{i}.")
        tensors.update(flat)
        headers[str(i)] = header
    blob = save(tensors, metadata={"layers": json.dumps(headers)})
    loaded, meta = load(blob), json.loads(_metadata(blob)["layers"])
    for i, (k, v) in enumerate(layers):
        packed = PackedKV.from_flat(loaded, meta[str(i)], prefix=f"layers.{i}.")
        assert packed.header["spec"]["k_bits"] == (8 if i == 0 else 3)
        assert packed.header["spec"]["v_bits"] == (2 if i == 2 else 3)
        for x, y in zip((k, v), decode(packed), strict=True):
            assert y.shape == x.shape and (y - x).abs().max() < 0.5 * (x.max() - x.min())


def _metadata(blob: bytes) -> dict[str, str]:
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n])["__metadata__"]


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["default_fp32", "compact_bf16"])
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_packs_written_before_keys_went_before_rope_decode_as_they_did(name, impl):
    """Golden packs written by the codec as it was before pre-RoPE keys and value rotation by
    default (version 1, specs without ``pre_rope_k``) decode bit for bit as they did then."""
    from safetensors.torch import load_file

    packed = PackedKV.from_bytes((FIXTURES / f"kvquant_v1_{name}.safetensors").read_bytes())
    assert packed.header["version"] == 1 and "pre_rope_k" not in packed.header["spec"]
    want = load_file(FIXTURES / "kvquant_v1_decoded.safetensors")
    k, v = decode(packed, impl=impl)
    assert torch.equal(k, want[f"{name}.k"]) and torch.equal(v, want[f"{name}.v"])
