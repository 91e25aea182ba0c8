"""The OpenAI-compatible stub server as a real process, for the extraction tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "sk-stub-test"
MODEL = "stub-extractor"


@dataclass
class Stub:
    base_url: str  # http://127.0.0.1:PORT/v1

    def requests(self) -> list[Any]:
        """Every request body the stub received since the last ``clear``."""
        return httpx.get(self.base_url.removesuffix("/v1") + "/_requests", timeout=5).json()

    def clear(self) -> None:
        httpx.delete(self.base_url.removesuffix("/v1") + "/_requests", timeout=5)


@pytest.fixture(scope="session")
def openai_stub() -> Iterator[Stub]:
    """tests/integration/extraction/openai_stub.py on a free loopback port, its own process."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.extraction.openai_stub",
            "--port",
            "0",
            "--model",
            MODEL,
            "--api-key",
            API_KEY,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once it listens
        if not line.startswith("listening on "):
            pytest.fail(f"the OpenAI stub did not start: {line!r}", pytrace=False)
        yield Stub(line.split()[-1])
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def stub(openai_stub: Stub) -> Stub:
    openai_stub.clear()
    return openai_stub
