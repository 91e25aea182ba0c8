"""The ONNX export cache: once per model and data directory, under a lock, reused after."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from memsvc.embeddings import onnx_cache_dir
from memsvc.embeddings.onnx_export import (
    FP32_FILE,
    INT8_FILE,
    ensure_onnx_model,
    model_fingerprint,
)
from memsvc.settings import Settings


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 4}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


class Recorder:
    """Stands in for the exporter and the quantizer: counts calls, writes a file slowly."""

    def __init__(self) -> None:
        self.exports = 0
        self.quantizations = 0
        self._lock = threading.Lock()

    def export(self, model_path: str, target: Path) -> None:
        with self._lock:
            self.exports += 1
        time.sleep(0.2)  # long enough for a second caller to arrive while this one writes
        target.write_bytes(b"fp32 graph of " + model_path.encode())

    def quantize(self, source: Path, target: Path) -> None:
        with self._lock:
            self.quantizations += 1
        target.write_bytes(b"int8 of " + source.read_bytes())


def test_exports_once_then_reuses(model_dir: Path, tmp_path: Path) -> None:
    rec = Recorder()
    cache = tmp_path / "cache"
    path, exported = ensure_onnx_model(
        str(model_dir), cache, int8=False, export=rec.export, quantize=rec.quantize
    )
    assert exported and path.name == FP32_FILE and path.parent.parent == cache
    again, exported_again = ensure_onnx_model(
        str(model_dir), cache, int8=False, export=rec.export, quantize=rec.quantize
    )
    assert again == path and not exported_again and rec.exports == 1
    # int8 quantizes the fp32 graph already there; it does not export again.
    int8, exported_int8 = ensure_onnx_model(
        str(model_dir), cache, int8=True, export=rec.export, quantize=rec.quantize
    )
    assert exported_int8 and int8.name == INT8_FILE and int8.parent == path.parent
    assert (rec.exports, rec.quantizations) == (1, 1)
    assert int8.read_bytes() == b"int8 of " + path.read_bytes()
    # No temporary files are left beside the exports.
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [".export.lock", "export.json", FP32_FILE, INT8_FILE]
    )


def test_two_callers_at_once_export_once(model_dir: Path, tmp_path: Path) -> None:
    rec = Recorder()
    cache = tmp_path / "cache"
    results: list[tuple[Path, bool]] = []

    def call() -> None:
        results.append(
            ensure_onnx_model(
                str(model_dir), cache, int8=True, export=rec.export, quantize=rec.quantize
            )
        )

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (rec.exports, rec.quantizations) == (1, 1)
    assert len({path for path, _ in results}) == 1
    assert sorted(exported for _, exported in results) == [False, False, True]


def test_another_model_gets_another_export(model_dir: Path) -> None:
    before = model_fingerprint(model_dir)
    (model_dir / "model.safetensors").write_bytes(b"other weights")
    assert model_fingerprint(model_dir) != before


def test_a_failed_export_leaves_nothing_to_reuse(model_dir: Path, tmp_path: Path) -> None:
    def broken(model_path: str, target: Path) -> None:
        target.write_bytes(b"half a graph")
        raise RuntimeError("exporter crashed")

    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="exporter crashed"):
        ensure_onnx_model(str(model_dir), cache, int8=False, export=broken)
    folder = cache / model_fingerprint(model_dir)
    assert not (folder / FP32_FILE).exists()
    assert [p.name for p in folder.iterdir()] == [".export.lock"]


def test_exports_live_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert onnx_cache_dir(settings) == tmp_path / "data" / "models" / "minilm-onnx"


def test_backend_setting_defaults_to_onnx_and_refuses_unknown_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEMSVC_EMBEDDER_BACKEND", raising=False)
    assert Settings().embedder_backend == "onnx"
    monkeypatch.setenv("MEMSVC_EMBEDDER_BACKEND", "onnx-int8")
    assert Settings().embedder_backend == "onnx-int8"
    monkeypatch.setenv("MEMSVC_EMBEDDER_BACKEND", "onnx_int4")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = str(caught.value)
    assert "embedder_backend" in message
    assert "'torch', 'onnx' or 'onnx-int8'" in message
