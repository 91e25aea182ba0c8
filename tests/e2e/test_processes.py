"""Whole processes: two API servers over one PostgreSQL, and an embedded server restarted."""

from __future__ import annotations

import re
from pathlib import Path

from memsvc import MemoryClient
from tests.e2e.conftest import create_tenant


def test_two_api_processes_over_one_postgres(servers, pg_url: str, tmp_path: Path) -> None:
    env = {"MEMSVC_DATABASE_URL": pg_url}
    one = servers(tmp_path / "one", env)
    two = servers(tmp_path / "two", env)
    key = create_tenant(one.url, "shared").key  # created through one, used through both
    with MemoryClient(one.url, key) as c1, MemoryClient(two.url, key) as c2:
        (memory,) = c1.add("the spare key is under the blue flowerpot", user_id="u")
        hits = c2.search("where is the spare key", user_id="u")
        assert hits and hits[0].memory.id == memory.id
        c2.update(memory.id, text="the spare key is with the neighbour")
        assert c1.search("spare key", user_id="u")[0].memory.text.endswith("neighbour")
        c1.delete(memory.id)
        assert c2.search("spare key", user_id="u") == []
        assert [h.op for h in c2.history(memory.id)] == ["ADD", "UPDATE", "DELETE"]


def test_embedded_server_restart_keeps_everything(servers, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = servers(data_dir)
    match = re.search(r"local API key \(created [^)]*\): (msk_\S+)", first.log())
    assert match, first.log()
    key = match.group(1)
    with MemoryClient(first.url, key) as client:
        added = client.add([f"memory {n} about the garden" for n in range(20)], user_id="u")
    first.stop()
    assert (data_dir / "memsvc.db").exists()

    second = servers(data_dir)
    assert f"local API key (kept in {data_dir / 'api_key'}): {key}" in second.log()
    with MemoryClient(second.url, key) as client:
        assert client.get_all(user_id="u", limit=100).count == 20
        hits = client.search("memory 7 about the garden", user_id="u", top_k=1)
        assert hits[0].memory.id == added[7].id
