"""The container format: manifest as built, round trips, token chains, the strict reader."""

from __future__ import annotations

import json

import pytest
import torch

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.format import FormatError, KVContainer, read_container, read_manifest
from kv_cartridges.quant import LayerwiseSpec, QuantSpec
from kv_cartridges.tokens import chain

FP = ModelFingerprint("LlamaForCausalLM", 3, 2, 16, 100, {"rope_theta": 10000.0}, "0" * 64)


def _layers(T: int = 70, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(1, 2, T, 16, generator=g).to(dtype),
             torch.randn(1, 2, T, 16, generator=g).to(dtype)) for _ in range(3)]  # fmt: skip


def test_manifest_as_built(tiny_model) -> None:
    fp = ModelFingerprint.from_model(tiny_model)
    assert (fp.architecture, fp.num_layers, fp.num_kv_heads, fp.head_dim, fp.vocab_size) == (
        "LlamaForCausalLM", 2, 2, 16, 128)  # fmt: skip
    assert fp.rope and len(fp.config_hash) == 64 and len(fp.id) == 32
    origin = {"kind": "session", "session_id": "s"}
    c = KVContainer.build(_layers()[:2], fp, spec=QuantSpec(), token_ids=list(range(70)),
                          start_position=0, origin=origin)  # fmt: skip
    m = json.loads(json.dumps(read_manifest(c.to_bytes()).to_dict()))
    assert set(m) == {"format", "version", "codec", "dtype", "model", "model_id", "batch",
                      "n_tokens", "start_position", "token_chain", "origin", "created_at",
                      "layers", "payload_sha256"}  # fmt: skip
    assert m["format"] == "memsvc.kv" and m["version"] == 1 and m["model_id"] == fp.id
    assert m["codec"] == {"name": "kvquant", "spec": QuantSpec().to_dict()}
    assert m["token_chain"]["chunk_tokens"] == 64 and len(m["token_chain"]["hashes"]) == 2
    assert m["n_tokens"] == 70 and len(m["layers"]) == 2 and len(m["payload_sha256"]) == 64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_raw_round_trip_is_exact_and_file_equals_bytes(dtype, tmp_path) -> None:
    layers = _layers(dtype=dtype)
    c = KVContainer.build(layers, FP, origin={"kind": "cartridge", "corpus_id": "x"})
    digest = c.write(tmp_path / "c")
    assert (tmp_path / "c").read_bytes() == c.to_bytes()
    import hashlib

    assert digest == hashlib.sha256(c.to_bytes()).hexdigest()
    back = read_container(tmp_path / "c")
    for (k, v), (k2, v2) in zip(layers, back.layers(), strict=True):
        assert torch.equal(k, k2) and torch.equal(v, v2) and k2.dtype == dtype


def test_layerwise_spec_and_bits() -> None:
    spec = LayerwiseSpec(QuantSpec(), {0: {"k_bits": 8}})
    c = KVContainer.build(_layers(T=256), FP, spec=spec, origin={"kind": "cartridge"})
    back = read_container(c.to_bytes())
    assert back.manifest.spec == spec
    assert (
        back.manifest.layers[0]["spec"]["k_bits"] == 8
        and back.manifest.layers[1]["spec"]["k_bits"] == 4
    )
    assert 5 < c.bits_per_element < 6.5  # layer 0's keys at 8 bits, 4 fp16 sinks of 256
    k, _ = back.layers()[1]
    assert (k - _layers(T=256)[1][0]).norm() / k.norm() < 0.15


def test_token_chain() -> None:
    ids = list(range(200))
    links = chain(ids, 64)
    assert [n for n, _ in links] == [64, 128, 192, 200]
    assert chain(ids[:128], 64) == links[:2]  # a shared prefix shares its hashes
    assert chain([*ids[:127], 999], 64)[1] != links[1]
    assert chain([], 64) == []
    for bad in ([-1], [[1, 2]], ["a"]):
        with pytest.raises(ValueError):
            chain(bad, 64)


def test_build_refuses_bad_input() -> None:
    origin = {"kind": "cartridge"}
    with pytest.raises(FormatError, match="2 layers given; the model has 3"):
        KVContainer.build(_layers()[:2], FP, origin=origin)
    bad = _layers()
    bad[1] = (bad[1][0][:, :, :5], bad[1][1])
    with pytest.raises(FormatError, match="layer 1"):
        KVContainer.build(bad, FP, origin=origin)
    with pytest.raises(FormatError, match="token ids"):
        KVContainer.build(_layers(), FP, token_ids=[1, 2], origin=origin)
    with pytest.raises(FormatError, match=r"origin\.kind"):
        KVContainer.build(_layers(), FP, origin={"kind": "other"})
    nan = _layers()
    nan[0][0][0, 0, 0, 0] = float("nan")
    with pytest.raises(FormatError, match="NaN"):
        KVContainer.build(nan, FP, spec=QuantSpec(), origin=origin)


def test_reader_refuses(tmp_path) -> None:
    body = KVContainer.build(_layers(), FP, origin={"kind": "cartridge"}).to_bytes()
    with pytest.raises(FormatError, match=r"oversized: \d+ bytes, the limit is 100"):
        read_container(body, max_bytes=100)
    (tmp_path / "t").write_bytes(body[:-1])
    with pytest.raises(FormatError, match="truncated"):
        read_container(tmp_path / "t")
    with pytest.raises(FormatError, match="checksum"):
        read_container(body[:-1] + bytes([body[-1] ^ 1]))
    assert read_container(body[:-1] + bytes([body[-1] ^ 1]), verify=False)  # opt-out exists
    with pytest.raises(FormatError, match="header is not JSON"):
        read_container(b"\x04\0\0\0\0\0\0\0\xff\xfe\xfd\xfc")


@pytest.mark.parametrize("spec", [None, QuantSpec()])
def test_layer_reader_reads_one_layer_at_a_time(spec, tmp_path) -> None:
    from kv_cartridges.format import LayerReader

    c = KVContainer.build(_layers(), FP, spec=spec, origin={"kind": "cartridge"})
    c.write(tmp_path / "c")
    with LayerReader(tmp_path / "c") as reader:
        assert len(reader) == 3 and reader.manifest.codec == c.manifest.codec
        for (k, v), (k2, v2) in zip(c.layers(), [reader[i] for i in range(3)], strict=True):
            assert torch.equal(k, k2) and torch.equal(v, v2)
        with pytest.raises(IndexError):
            reader[3]
        again = KVContainer.build(reader, FP, spec=QuantSpec(k_bits=3, v_bits=3),
                                  origin={"kind": "cartridge"})  # fmt: skip
    assert again.manifest.codec["spec"]["k_bits"] == 3
