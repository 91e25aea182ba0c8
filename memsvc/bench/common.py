"""What the service benchmarks share: the raw embedder's floor, a server subprocess, percentiles."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from memsvc.embeddings import build_embedder
from memsvc.settings import Settings

__all__ = ["local_key", "percentile", "raw_embedder", "start_server"]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def raw_embedder(
    texts: list[str], batch: int, n_queries: int, embedder_name: str = "minilm"
) -> tuple[float, float]:
    """The floor every write and search sits on: (sentences/s in batches, ms per query)."""
    # The same model settings the server runs with; fed the same request-sized batches.
    settings = Settings()
    # The backend (torch, onnx, onnx-int8) is the settings'; "hash" measures no model at all.
    embedder = build_embedder(settings.model_copy(update={"embedder": embedder_name}))
    embedder.embed(texts[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed(texts[i : i + batch])
    per_s = len(texts) / (time.perf_counter() - start)
    times = []
    for text in texts[:n_queries]:
        t0 = time.perf_counter()
        embedder.embed_query(text)
        times.append((time.perf_counter() - t0) * 1000)
    return per_s, statistics.median(times)


def start_server(
    data_dir: Path, port: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str, Path]:
    """``memsvc serve`` (embedded default, MiniLM unless ``env`` says otherwise) on
    ``data_dir``; returns it, its URL and its log once it is ready."""
    log_path = data_dir.parent / f"server-{port}-{int(time.time() * 1000)}.log"
    env = {**os.environ, "MEMSVC_EMBEDDER": "minilm", "HF_HUB_OFFLINE": "1", **(env or {})}
    cmd = [
        sys.executable,
        "-m",
        "memsvc",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url, log_path
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server not ready:\n{log_path.read_text()}")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux ``/proc``; 0 where there is none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def local_key(log_path: Path) -> str:
    """The local API key ``memsvc serve`` printed at start-up."""
    found = re.search(r"local API key \([^)]*\): (msk_\S+)", log_path.read_text())
    if found is None:
        raise RuntimeError(f"no local API key in the server log:\n{log_path.read_text()}")
    return found.group(1)
