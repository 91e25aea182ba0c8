"""``POST /v1/cartridges/train``: a background job that trains, quantizes and stores a cartridge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.config.training import CartridgeTrainingConfig
from memsvc.service import MemoryService
from stores.models import JobRow
from tests.conftest import TenantKey, make_settings, new_tenant
from tests.unit.kv_cartridges.training.conftest import CORPUS

LOADER = "tests.unit.kv_cartridges.training.conftest:tiny_model_and_tokenizer"
BODY = {"corpus": CORPUS, "name": "notes", "tokens": 16, "steps": 3, "samples": 2,
        "chunk_tokens": 64, "reply_tokens": 6}  # fmt: skip


@pytest.fixture
def service(tmp_path: Path) -> Iterator[MemoryService]:
    config = CartridgeTrainingConfig(model=LOADER, max_steps=50)
    settings = make_settings(
        tmp_path / "data", f"sqlite:///{tmp_path / 'm.db'}", cartridge_training=config
    )
    svc = build_service(settings)
    yield svc
    svc.close()


@pytest.fixture
def client(service: MemoryService) -> Iterator[TestClient]:
    with TestClient(create_app(service.settings, service=service)) as c:
        yield c


@pytest.fixture
def tenant(service: MemoryService) -> TenantKey:
    return new_tenant(service, "a")


def _wait(client: TestClient, tenant: TenantKey, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json()
        if job["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_train_job_reports_progress_and_stores_a_quantized_cartridge(client, tenant) -> None:
    answer = client.post("/v1/cartridges/train", json=BODY, headers=tenant.headers)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["kind"] == "cartridge_train" and job["state"] == "queued"
    done = _wait(client, tenant, job["id"])
    assert done["state"] == "succeeded", done
    counts = done["counts"]
    assert counts["step"] == counts["steps"] == 3 and counts["selfstudy_done"] == 2
    assert "loss_x1000" in counts and done["errors"] == []
    stored = client.get(f"/v1/cartridges/{done['scope']['kv_id']}", headers=tenant.headers)
    assert stored.status_code == 200, stored.text
    kv = stored.json()
    assert kv["name"] == "notes" and kv["n_tokens"] == 16 and kv["kind"] == "cartridge"
    assert kv["codec"]["name"] == "kvquant" and kv["origin"]["kind"] == "cartridge"
    assert kv["metadata"]["train"]["steps"] == 3


def test_a_job_that_cannot_train_fails_with_the_reason(client, tenant) -> None:
    body = BODY | {"tokens": 4000}  # more positions than the corpus has tokens
    job = client.post("/v1/cartridges/train", json=body, headers=tenant.headers).json()
    done = _wait(client, tenant, job["id"])
    assert done["state"] == "failed" and "tokens must be in" in done["errors"][0]["error"]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"tokens": 1}, 422),
        ({"corpus": ""}, 422),
        ({"steps": 0}, 422),
        ({"epochs": 3}, 422),  # unknown field
        ({"steps": 51}, 422),  # over the service's limit
    ],
)
def test_bad_requests_are_4xx_and_start_nothing(client, tenant, service, change, status) -> None:
    answer = client.post("/v1/cartridges/train", json=BODY | change, headers=tenant.headers)
    assert answer.status_code == status, answer.text
    field = next(iter(change))
    assert field in answer.text
    with service.deps.sessions() as session:
        assert session.scalar(select(func.count()).select_from(JobRow)) == 0


def test_training_needs_a_key(client) -> None:
    assert client.post("/v1/cartridges/train", json=BODY).status_code == 401
