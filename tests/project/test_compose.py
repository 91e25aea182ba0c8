"""The docker-compose stack is consistent with the code: every command it runs exists, every
service has a health check, and ``docker-compose config`` accepts it.

There is no Docker engine here, so the stack is validated, not started; the same three memsvc
processes run for real in ``tests/e2e/test_consolidation_stack.py``.
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


def test_stack_services_and_commands() -> None:
    services = _stack()["services"]
    assert {"api", "worker", "beat", "postgres", "redis"} <= set(services)
    cli = get_command(app)
    for name, service in services.items():
        assert service.get("healthcheck"), f"{name} has no health check"
        for command in _memsvc_commands(service):
            assert command[1] in cli.commands, f"{name} runs unknown command {command[1]}"
    assert services["worker"]["command"][:2] == ["memsvc", "worker"]
    assert services["beat"]["command"][:2] == ["memsvc", "beat"]
    for name in ("api", "worker", "beat"):
        env = services[name]["environment"]
        assert env["MEMSVC_DATABASE_URL"].startswith("postgresql"), name
        assert env["MEMSVC_REDIS_URL"].startswith("redis://"), name
        assert services[name]["volumes"], name
    assert services["worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"


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
