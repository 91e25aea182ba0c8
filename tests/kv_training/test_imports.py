"""``kv_cartridges`` knows nothing of the service: no memsvc, stores, api or consolidation."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_kv_cartridges_imports_none_of_the_service() -> None:
    for path in sorted((ROOT / "kv_cartridges").rglob("*.py")):
        ours = _top_level_imports(path) & {"memsvc", "stores", "api", "consolidation"}
        assert not ours, f"{path.relative_to(ROOT)} imports {sorted(ours)}"


def test_training_modules_stay_small() -> None:
    for path in sorted((ROOT / "kv_cartridges" / "training").glob("*.py")):
        assert len(path.read_text().splitlines()) <= 300, path.name
