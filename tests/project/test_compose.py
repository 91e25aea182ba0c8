"""The docker-compose stack is consistent with the code: every command it runs exists, every
service has a health check, and ``docker-compose config`` accepts it.

There is no Docker engine here, so the stack is validated, not started; the same three memsvc
processes run for real in ``tests/e2e/test_consolidation_stack.py``, and the S3 blob store
against a real SeaweedFS in ``tests/integration/blobs/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.main import get_command

from memsvc.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _stack() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _memsvc_commands(service: dict) -> list[list[str]]:
    commands = [service.get("command") or []]
    test = (service.get("healthcheck") or {}).get("test") or []
    if test[:1] == ["CMD"]:
        commands.append(test[1:])
    return [c for c in commands if c[:1] == ["memsvc"]]


def _known(cli: object, command: list[str]) -> bool:
    """``memsvc <command>`` or ``memsvc <group> <command>`` exists."""
    found = cli.commands.get(command[1])  # type: ignore[attr-defined]
    if found is None:
        return False
    sub = getattr(found, "commands", None)
    return sub is None or (len(command) > 2 and command[2] in sub)


def test_stack_services_and_commands() -> None:
    services = _stack()["services"]
    assert {"api", "worker", "beat", "postgres", "redis", "objects"} <= set(services)
    cli = get_command(app)
    for name, service in services.items():
        one_shot = service.get("restart") == "on-failure"  # a job that exits when done
        assert one_shot or service.get("healthcheck"), f"{name} has no health check"
        for command in _memsvc_commands(service):
            assert _known(cli, command), f"{name} runs unknown command {command[1:]}"
    assert services["worker"]["command"][:2] == ["memsvc", "worker"]
    assert services["beat"]["command"][:2] == ["memsvc", "beat"]
    for name in ("api", "worker", "beat"):
        env = services[name]["environment"]
        assert env["MEMSVC_DATABASE_URL"].startswith("postgresql"), name
        assert env["MEMSVC_REDIS_URL"].startswith("redis://"), name
    assert services["worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_blobs_are_shared_through_the_object_store() -> None:
    """api, worker and beat keep KV blobs in one bucket of the stack's object store, the
    bucket is created at start before they run, and none of them keeps state on a volume of
    its own that another needs (only the API's derived index snapshots are on a volume)."""
    services = _stack()["services"]
    objects = services["objects"]
    assert "seaweedfs" in objects["image"] and "-s3" in objects["command"]
    assert any(v.endswith(":/data") for v in objects["volumes"])
    bucket_job = services["objects-bucket"]
    assert bucket_job["command"] == ["memsvc", "blobs", "create-bucket"]
    assert bucket_job["depends_on"]["objects"]["condition"] == "service_healthy"
    envs = [services[name]["environment"] for name in ("api", "worker", "beat")]
    for name, env in zip(("api", "worker", "beat"), envs, strict=True):
        assert env["MEMSVC_BLOBS__BACKEND"] == "s3", name
        assert env["MEMSVC_BLOBS__S3_ENDPOINT_URL"] == "http://objects:8333", name
        assert "MEMSVC_KV__BLOB_DIR" not in env, name
    assert len({env["MEMSVC_BLOBS__S3_BUCKET"] for env in envs}) == 1
    for name in ("api", "worker"):
        condition = services[name]["depends_on"]["objects-bucket"]["condition"]
        assert condition == "service_completed_successfully", name
    for name in ("worker", "beat"):
        assert not services[name].get("volumes"), f"{name} keeps state on its own volume"
    assert services["api"]["volumes"] == ["apidata:/data"]  # derived index snapshots only


def test_docker_compose_config_accepts_the_stack() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        if os.environ.get("MEMSVC_REQUIRE_COMPOSE") == "1":
            pytest.fail("docker-compose is required (MEMSVC_REQUIRE_COMPOSE=1) and missing")
        pytest.skip("docker-compose is not installed")
    env = {**os.environ, "MEMSVC_ADMIN_KEY": "compose-test-key"}
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert {"api", "worker", "beat"} <= set(rendered["services"])
    assert rendered["services"]["worker"]["environment"]["MEMSVC_ADMIN_KEY"] == "compose-test-key"


def test_observability_profile_leaves_the_default_stack_unchanged() -> None:
    services = _stack()["services"]
    for name in ("api", "worker", "beat", "postgres", "redis"):
        assert "profiles" not in services[name], f"{name} must run in the default stack"
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"], name
    worker_env = services["worker"]["environment"]
    assert worker_env["MEMSVC_METRICS__WORKER_PORT"] == "9100"
    assert worker_env["PROMETHEUS_MULTIPROC_DIR"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_the_api_and_the_worker() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    worker_port = _stack()["services"]["worker"]["environment"]["MEMSVC_METRICS__WORKER_PORT"]
    assert targets == {"memsvc-api": ["api:8765"], "memsvc-worker": [f"worker:{worker_port}"]}


def test_dashboard_queries_name_metrics_that_exist() -> None:
    import json
    import re

    from memsvc.observability.metrics import sample_names
    from memsvc.service.stats import STATE_FAMILIES

    known = sample_names() | set(STATE_FAMILIES)
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/memsvc.json").read_text())
    assert dashboard["panels"]
    named: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\bmemsvc_[a-z_]+", target["expr"]))
            assert names, target["expr"]
            assert names <= known, f"{panel['title']}: unknown {names - known}"
            named |= names
    # Every family the issue asks for is on the dashboard.
    wanted = (
        "memsvc_http_requests_total",
        "memsvc_search_stage_seconds_bucket",
        "memsvc_memories_written_total",
        "memsvc_working_memory_events",
        "memsvc_consolidation_jobs_total",
        "memsvc_queue_depth",
        "memsvc_index_vectors",
        "memsvc_kv_bytes",
        "memsvc_kv_quota_used_ratio",
    )
    assert set(wanted) <= named, set(wanted) - named
    source = (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {yaml.safe_load(source)["datasources"][0]["uid"]}
