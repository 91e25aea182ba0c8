"""The README's two set-up commands stay true, and CI runs the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_opens_with_two_setup_commands() -> None:
    serve, test = _commands()
    assert serve.endswith("memsvc serve") and "pip install -e '.[server]'" in serve
    assert "pytest" in test and ".[test]" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = _commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()
