"""``memsvc export`` / ``memsvc import``: SQLite to PostgreSQL through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from memsvc import Memory
from memsvc.cli import app
from tests.conftest import fresh_pg_database, make_settings

runner = CliRunner()


def test_export_then_import_moves_a_tenant_to_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMSVC_EMBEDDER", "hash")
    source = tmp_path / "sqlite"
    with Memory(settings=make_settings(source)) as memory:
        added = memory.add(["I like tea.", "I live in Oslo."], user_id="u")
        tenant_id = memory.tenant_id
        texts = sorted(m.text for m in memory.get_all(user_id="u").data)
    archive = tmp_path / "out.zip"
    monkeypatch.setenv("MEMSVC_DATA_DIR", str(source))
    monkeypatch.delenv("MEMSVC_DATABASE_URL", raising=False)
    exported = runner.invoke(app, ["export", str(archive), "--tenant", tenant_id])
    assert exported.exit_code == 0, exported.output
    assert "2 memories" in exported.output

    with fresh_pg_database("memsvc_cli") as url:
        monkeypatch.setenv("MEMSVC_DATA_DIR", str(tmp_path / "pg"))
        monkeypatch.setenv("MEMSVC_DATABASE_URL", url)
        imported = runner.invoke(app, ["import", str(archive)])
        assert imported.exit_code == 0, imported.output
        assert "'memories': 2" in imported.output
        again = runner.invoke(app, ["import", str(archive)])
        assert again.exit_code == 0 and "'memories': 2" in again.output  # skipped now
        settings = make_settings(tmp_path / "pg", url)
        with Memory(settings=settings, tenant_id=tenant_id) as memory:
            assert sorted(m.text for m in memory.get_all(user_id="u").data) == texts
            assert memory.get(added[0].id).text == added[0].text
        broken = tmp_path / "broken.zip"
        broken.write_bytes(b"not a zip")
        refused = runner.invoke(app, ["import", str(broken)])
        assert refused.exit_code == 1 and "not a readable archive" in refused.output


def test_purge_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMSVC_EMBEDDER", "hash")
    monkeypatch.setenv("MEMSVC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MEMSVC_DATABASE_URL", raising=False)
    with Memory(settings=make_settings(tmp_path)) as memory:
        memory.add(["I like tea.", "I live in Oslo."], user_id="u")
        memory.add(["Kept."], user_id="v")
        tenant_id = memory.tenant_id
    refused = runner.invoke(app, ["purge", "--tenant", tenant_id])
    assert refused.exit_code == 1 and "exactly one" in refused.output
    done = runner.invoke(app, ["purge", "--tenant", tenant_id, "--user", "u"])
    assert done.exit_code == 0, done.output
    assert "'memories': 2" in done.output and "wal checkpoint truncated" in done.output
    with Memory(settings=make_settings(tmp_path)) as memory:
        assert memory.get_all(user_id="u").data == []
        assert [m.text for m in memory.get_all(user_id="v").data] == ["Kept."]
