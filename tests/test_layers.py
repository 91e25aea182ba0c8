"""Imports point one way: consolidation -> memsvc -> stores (ARCHITECTURE.md).

The CLI is a process entry point and may start the workers; nothing else in memsvc, and nothing
in stores or api, imports the consolidation package (the service reaches it by the module name
in ``MEMSVC_CONSOLIDATION__RUNTIME``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_nothing_below_consolidation_imports_it() -> None:
    offenders = []
    for folder in ("memsvc", "stores", "api"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.is_relative_to(ROOT / "memsvc" / "cli"):
                continue
            if "consolidation" in _imports(path):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_stores_import_nothing_of_ours_but_settings() -> None:
    for path in (ROOT / "stores").rglob("*.py"):
        ours = _imports(path) & {"memsvc", "api", "consolidation", "kv_cartridges"}
        assert ours <= {"memsvc"}, path
        if "memsvc" in ours:
            assert "memsvc.settings" in path.read_text(), path
