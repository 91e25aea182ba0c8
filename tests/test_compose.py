"""The docker-compose stack is consistent with the code: every command it runs exists."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.main import get_command

from memsvc.cli import app

ROOT = Path(__file__).resolve().parent.parent


def test_stack_services_and_commands() -> None:
    stack = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = stack["services"]
    assert {"api", "postgres", "redis"} <= set(services)
    cli = get_command(app)
    for name, service in services.items():
        command = service.get("command")
        if command and command[0] == "memsvc":
            assert command[1] in cli.commands, f"{name} runs unknown command {command[1]}"
    env = services["api"]["environment"]
    assert env["MEMSVC_DATABASE_URL"].startswith("postgresql")
    assert env["MEMSVC_REDIS_URL"].startswith("redis://")
