"""The ``memsvc`` command line (in-process through typer's runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from memsvc import Memory
from memsvc.cli import app
from memsvc.errors import AuthError
from tests.conftest import make_settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEMSVC_EMBEDDER", "hash")
    monkeypatch.setenv("MEMSVC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MEMSVC_DATABASE_URL", raising=False)
    return tmp_path / "data"


def test_db_upgrade_creates_the_schema(env: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (env / "memsvc.db").exists()


def test_index_rebuild_counts_live_memories(env: Path) -> None:
    with Memory(settings=make_settings(env)) as memory:
        ids = [m.id for m in memory.add(["one", "two", "three"], user_id="u")]
        memory.delete(ids[0])
    (env / "index" / "vectors.safetensors").unlink(missing_ok=True)
    result = runner.invoke(app, ["index", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "indexed 2 memories" in result.output
    assert (env / "index" / "vectors.safetensors").exists()


def test_tenant_create_prints_a_working_key(env: Path) -> None:
    result = runner.invoke(app, ["tenant", "create", "acme", "--id", "acme"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("msk_")
    again = runner.invoke(app, ["tenant", "create", "acme", "--id", "acme"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_tenant_keys_add_revoke_rotate(env: Path) -> None:
    created = runner.invoke(app, ["tenant", "create", "acme", "--id", "acme"])
    first_key = created.stdout.strip().splitlines()[-1]
    added = runner.invoke(app, ["tenant", "add-key", "acme", "--name", "ci"])
    assert added.exit_code == 0, added.output
    second_key = added.stdout.strip().splitlines()[-1]
    listed = runner.invoke(app, ["tenant", "keys", "acme"])
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert [r[1] for r in rows] == ["cli", "ci"] and [r[4] for r in rows] == ["-", "-"]
    ci_id = rows[1][0]
    revoked = runner.invoke(app, ["tenant", "revoke", "acme", ci_id])
    assert revoked.exit_code == 0 and "refused everywhere" in revoked.output
    rotated = runner.invoke(app, ["tenant", "rotate", "acme", rows[0][0], "--grace-seconds", "60"])
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.stdout.strip().splitlines()[-1]
    rows = [
        line.split("\t")
        for line in runner.invoke(app, ["tenant", "keys", "acme"]).stdout.strip().splitlines()
    ]
    assert len(rows) == 3 and all(r[4] != "-" for r in rows[:2]) and rows[2][4] == "-"
    with Memory(settings=make_settings(env)) as memory:
        service = memory.service
        assert service.tenants.authenticate(first_key).tenant_id == "acme"  # in its grace period
        assert service.tenants.authenticate(new_key).tenant_id == "acme"
        with pytest.raises(AuthError):
            service.tenants.authenticate(second_key)
    again = runner.invoke(app, ["tenant", "revoke", "acme", "no-such-key"])
    assert again.exit_code == 1 and "not found" in again.output
