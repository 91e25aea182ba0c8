"""Export the packaged MiniLM to ONNX (and int8) once, into the data directory.

sentence-transformers' own ``backend="onnx"`` loads through ``optimum-onnx``, whose releases
pin ``transformers<4.58``; memsvc needs transformers 5 (cartridge training), so the export is
done here with ``torch.onnx`` (the TorchScript exporter: no onnxscript, dynamic batch and
sequence axes) and the int8 copy with ONNX Runtime's dynamic quantization. Both run at most
once per model and data directory: a file lock keeps two processes that start together from
exporting at the same time, the second one finds the files and reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

__all__ = [
    "FP32_FILE",
    "INT8_FILE",
    "ensure_onnx_model",
    "export_fp32",
    "model_fingerprint",
    "quantize_int8",
]

FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
# Bumped when the export recipe changes, so an older export is not reused.
_RECIPE = "torchscript-opset17-int8-per-channel-v1"


def model_fingerprint(model_path: str | Path) -> str:
    """A short hash of the model's config and weights: another model gets another export."""
    digest = hashlib.sha256(_RECIPE.encode())
    folder = Path(model_path)
    for name in ("config.json", "sentence_bert_config.json", "model.safetensors"):
        path = folder / name
        if path.exists():
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def export_fp32(model_path: str, target: Path) -> None:
    """Write the transformer of ``model_path`` to ``target`` as an fp32 ONNX graph.

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, [batch, seq]);
    output ``last_hidden_state`` [batch, seq, dim]. Pooling and normalising happen outside.
    """
    import torch
    from transformers import AutoModel

    # Eager attention: the SDPA path's mask handling does not trace to a graph with a
    # dynamic sequence length.
    encoder = AutoModel.from_pretrained(model_path, attn_implementation="eager")
    encoder.eval()

    class _Graph(torch.nn.Module):
        # Named inputs in a fixed order: the model's own forward takes more, some positional.
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                return_dict=True,
            )
            return out.last_hidden_state

    model = _Graph().eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    inputs = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            inputs,
            str(target),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the matrix products (weights int8, activations per call).

    Weights get a scale per output channel: with one scale per matrix the MiniLM's vectors
    drifted to cosine 0.96 (0.86 on a 256-token text) from torch's, per channel keeps them at
    ~0.99. The embedding lookups stay fp32: they cost nothing to run and quantizing them moves
    every token's starting vector.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        per_channel=True,
    )


def ensure_onnx_model(
    model_path: str,
    cache_root: Path,
    *,
    int8: bool,
    export: Callable[[str, Path], None] = export_fp32,
    quantize: Callable[[Path, Path], None] = quantize_int8,
) -> tuple[Path, bool]:
    """The ONNX file for ``model_path`` under ``cache_root``, exported first if missing.

    Returns the file and whether this call wrote it. The fp32 graph is the source of the int8
    one, so ``int8`` exports both. Files are written to a temporary name and moved into place
    under the lock: a reader never sees a half-written model.
    """
    folder = cache_root / model_fingerprint(model_path)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = folder / (INT8_FILE if int8 else FP32_FILE)
    if wanted.exists():
        return wanted, False
    with FileLock(str(folder / ".export.lock")):
        if wanted.exists():  # another process exported while this one waited
            return wanted, False
        fp32 = folder / FP32_FILE
        if not fp32.exists():
            _write_atomically(fp32, lambda tmp: export(model_path, tmp))
        if int8:
            _write_atomically(wanted, lambda tmp: quantize(fp32, tmp))
        manifest = {"model_path": str(model_path), "recipe": _RECIPE}
        (folder / "export.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return wanted, True


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    # A temporary directory beside the target: the exporter may write side files there, and
    # the final rename stays on one file system.
    tmp_dir = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        tmp = tmp_dir / target.name
        write(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
