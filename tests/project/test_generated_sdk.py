"""The sync SDK is generated from the async one and must not be edited by hand (or go stale)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sync_sdk_is_what_the_async_one_generates() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync_sdk.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, "run scripts/unasync_sdk.py:\n" + done.stdout + done.stderr
