"""``memsvc cartridge train`` with the tiny model: writes a container and a loss curve, resumes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kv_cartridges.format import read_container
from memsvc.cli import app
from tests.unit.kv_cartridges.training.conftest import CORPUS

LOADER = "tests.unit.kv_cartridges.training.conftest:tiny_model_and_tokenizer"


def test_cartridge_train_writes_a_quantized_container_and_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "notes.txt"
    corpus.write_text(CORPUS)
    out = tmp_path / "notes.kv"
    args = ["cartridge", "train", "--corpus", str(corpus), "--tokens", "16", "--steps", "4",
            "--samples", "2", "--chunk-tokens", "64", "--reply-tokens", "6", "--model", LOADER,
            "--out", str(out), "--work-dir", str(tmp_path / "work")]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    container = read_container(out)
    assert container.manifest.codec["name"] == "kvquant" and container.manifest.n_tokens == 16
    (k, v) = container.layers()[0]
    assert k.shape == v.shape == (1, 2, 16, 8)
    curve = (tmp_path / "notes.kv.loss.csv").read_text().splitlines()
    assert curve[0] == "step,loss" and len(curve) == 5
    again = CliRunner().invoke(app, args)  # everything cached: same result, no new steps
    assert again.exit_code == 0, again.output
    assert (tmp_path / "notes.kv.loss.csv").read_text().splitlines() == curve
    assert read_container(out).layers()[0][0].equal(k)


def test_cartridge_train_refuses_more_positions_than_the_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("just a few words")
    args = ["cartridge", "train", "--corpus", str(corpus), "--tokens", "500", "--model", LOADER,
            "--out", str(tmp_path / "t.kv"), "--work-dir", str(tmp_path / "w")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "tokens must be in" in result.output
    assert not (tmp_path / "t.kv").exists()
