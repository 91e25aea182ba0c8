"""Rules for the repository as a whole: small modules, nothing unpickled from disk."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "consolidation", "kv_cartridges", "memsvc", "stores")
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(path for folder in PACKAGES for path in (ROOT / folder).rglob("*.py"))


def test_the_packages_hold_modules() -> None:
    # The checks below would pass vacuously on an empty or moved tree.
    assert len(_modules()) > 100


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def test_nothing_is_pickled() -> None:
    # Containers and snapshots are safetensors/JSON: loading a pickle from disk runs code.
    for path in _modules():
        text = path.read_text()
        assert "import pickle" not in text and "torch.load(" not in text, path
