"""``memsvc serve --workers 2`` with ``PROMETHEUS_MULTIPROC_DIR``: whichever worker answers a
scrape reports every worker's requests (prometheus client's multiprocess mode)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import start_server

SENT = 60


def _healthz_count(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "memsvc_http_requests_total" and s.labels.get("route") == "/healthz":
                return s.value
    return 0.0


def test_two_workers_aggregate_their_counts(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # a previous run's: wiped
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "MEMSVC_LOG__FORMAT": "json"}
    server = start_server(tmp_path / "data", env, args=("--workers", "2"))
    try:
        before = _healthz_count(server.url)

        def hit(_: int) -> int:  # a new connection each time: the workers share the socket
            return httpx.get(f"{server.url}/healthz", timeout=10).status_code

        with ThreadPoolExecutor(6) as pool:
            assert set(pool.map(hit, range(SENT))) == {200}
        # Every scrape sees all of them, whichever worker answers it (the scrapes themselves
        # are counted under /metrics, not /healthz).
        counts = {_healthz_count(server.url) - before for _ in range(6)}
        assert counts == {SENT}
        access = [json.loads(line) for line in server.log().splitlines() if '"route"' in line]
        served_by = {a["pid"] for a in access if a.get("route") == "/healthz"}
        assert len(served_by) == 2, f"one worker served every request: {served_by}"
        assert not (metrics_dir / "counter_999999.db").exists()
    finally:
        server.stop()
