"""The layers and forbidden imports of ``[tool.importlinter]`` in pyproject.toml hold.

import-linter follows every import, lazy ones inside functions included (only those under
``TYPE_CHECKING`` are left out), so a lower layer reaching a higher one fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
