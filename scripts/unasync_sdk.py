"""Generate the sync SDK (``memsvc/sdk/_sync``) from the async one (``memsvc/sdk/_async``).

The async client is the only hand-written one (as httpcore does it): this rewrites it token by
token with unasync (``async``/``await`` dropped, async names to their sync twins), then formats
the result with ruff. ``--check`` regenerates into a temporary directory and fails when the
committed files differ (tests/project/test_generated_sdk.py runs it).

    python scripts/unasync_sdk.py          # regenerate
    python scripts/unasync_sdk.py --check  # exit 1 when memsvc/sdk/_sync is stale
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("client.py", "http.py", "kv.py", "project.py", "scopes.py")
ASYNC_DIR = ROOT / "memsvc" / "sdk" / "_async"
SYNC_DIR = ROOT / "memsvc" / "sdk" / "_sync"

REPLACEMENTS = {
    "AsyncMemoryClient": "MemoryClient",
    "AsyncKVClient": "KVClient",
    "AsyncCartridgeClient": "CartridgeClient",
    "AsyncScopesMixin": "ScopesMixin",
    "AsyncProjectMixin": "ProjectMixin",
    "AsyncHTTPTransport": "HTTPTransport",
    "AsyncTransport": "Transport",
    "AsyncClient": "Client",  # httpx
    "AsyncBaseTransport": "BaseTransport",  # httpx
    "AbstractAsyncContextManager": "AbstractContextManager",
    "aclose": "close",
    "aread": "read",
    "aiter_bytes": "iter_bytes",
    "_async": "_sync",
    "asyncio": "time",  # await asyncio.sleep(s) -> time.sleep(s)
}


def _header(source: str) -> str:
    return (
        f"# Generated from memsvc/sdk/_async/{source} by scripts/unasync_sdk.py: do not edit;\n"
        "# change the async source and run the script.\n"
    )


def generate(into: Path) -> list[Path]:
    """Write the sync files under ``into`` (a directory standing for memsvc/sdk/_sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        source_dir = Path(tmp) / "_async"
        source_dir.mkdir()
        for name in SOURCES:
            shutil.copyfile(ASYNC_DIR / name, source_dir / name)
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)
        unasync.unasync_files([str(source_dir / name) for name in SOURCES], rules=[rule])
        into.mkdir(parents=True, exist_ok=True)
        written = []
        for name in SOURCES:
            text = (Path(tmp) / "_sync" / name).read_text()
            (into / name).write_text(_header(name) + text)
            written.append(into / name)
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(ROOT / "pyproject.toml")]
    subprocess.run([*ruff, "check", "--fix", "-q", *config, *map(str, written)], check=False)
    subprocess.run([*ruff, "format", "-q", *config, *map(str, written)], check=True)
    return written


def check() -> int:
    """0 when the committed sync files are what the async ones generate; else 1 and a diff."""
    stale = 0
    with tempfile.TemporaryDirectory() as tmp:
        for fresh in generate(Path(tmp)):
            committed = SYNC_DIR / fresh.name
            want, have = fresh.read_text(), committed.read_text() if committed.exists() else ""
            if want != have:
                stale = 1
                diff = difflib.unified_diff(
                    have.splitlines(), want.splitlines(), str(committed), "generated", lineterm=""
                )
                print("\n".join(list(diff)[:80]))
    return stale


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(check())
    generate(SYNC_DIR)
