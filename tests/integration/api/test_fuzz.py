"""Schema-driven fuzzing of every route (schemathesis), on SQLite and on PostgreSQL.

Requests come from the served OpenAPI document, valid and invalid ones, with hostile values
planted (``tests/integration/api/hostile.py``). For every response: no 5xx, status, content
type and body match the document (errors included). After every accepted write the tenant's
listings, search and the written resource still answer 200: nothing accepted may poison later
reads.

``MEMSVC_FUZZ_EXAMPLES`` (default 25) sets the examples per route; generation is derandomized,
so a run is reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from consolidation.dispatch import build_service
from tests.conftest import ADMIN_KEY, TenantKey, fresh_pg_database, make_settings, new_tenant
from tests.integration.api.hostile import (
    CURSOR_KEYS,
    SEED_BODIES,
    SEED_QUERIES,
    known_params,
    mutate_body,
    mutate_params,
)

EXAMPLES = int(os.environ.get("MEMSVC_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_AUTH_HEADERS = {"authorization", "x-api-key"}
# The operations of the served document (it does not depend on the data behind it).
_DOCUMENT = create_app(make_settings(Path("unused")), service_factory=build_service).openapi()
OPERATIONS = [
    (method.upper(), path) for path, methods in _DOCUMENT["paths"].items() for method in methods
]


@dataclass
class FuzzTarget:
    """One service and app per backend, shared by every route's fuzzing."""

    app: FastAPI
    schema: schemathesis.BaseSchema
    tenant: TenantKey
    client: TestClient
    # Ids seen in accepted responses; path parameters draw from them to reach existing rows.
    known_ids: list[str] = field(default_factory=list)

    def remember(self, body: Any) -> None:
        """Keep the ids of an accepted response (at most 500)."""
        stack = [body]
        while stack and len(self.known_ids) < 500:
            item = stack.pop()
            if isinstance(item, dict):
                for key, value in item.items():
                    if (
                        key.endswith("id")
                        and isinstance(value, str)
                        and value not in self.known_ids
                    ):
                        self.known_ids.append(value)
                    stack.append(value)
            elif isinstance(item, list):
                stack.extend(item)


def _hooked_schema(app: FastAPI, known_ids: list[str]) -> schemathesis.BaseSchema:
    # NUL is planted by the mutators below; in generated strings it would refuse most writes.
    config = schemathesis.Config.from_dict({"generation": {"allow-x00": False}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)

    @schema.hook("flatmap_body")
    def _body(_: Any, body: Any) -> Any:
        return mutate_body(body)

    @schema.hook("flatmap_query")
    def _query(context: Any, query: Any) -> Any:
        keys = CURSOR_KEYS.get(context.operation.path, ()) if context.operation else ()
        return mutate_params(query, query=True, cursor_keys=keys)

    @schema.hook("flatmap_path_parameters")
    def _path(_: Any, path_parameters: Any) -> Any:
        return st.one_of(
            mutate_params(path_parameters, query=False),
            known_params(path_parameters, known_ids),
        )

    return schema


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    with ExitStack() as stack:
        # A database of its own: fuzzed admin writes (any tenant id) must not meet other tests'.
        db_url = (
            f"sqlite:///{data_dir / 'memsvc.db'}"
            if request.param == "sqlite"
            else stack.enter_context(fresh_pg_database())
        )
        yield from _serve(data_dir, db_url)


def _serve(data_dir: Path, db_url: str) -> Iterator[FuzzTarget]:
    # Cartridge training jobs fail at once (no such model loader) instead of loading a model.
    settings = make_settings(
        data_dir / "data", db_url, cartridge_training={"model": "tests.api.no_such_module:load"}
    )
    service = build_service(settings)
    app = create_app(settings, service=service)
    known: list[str] = []
    tenant = new_tenant(service, "fuzz")
    try:
        yield FuzzTarget(app, _hooked_schema(app, known), tenant, TestClient(app), known)
    finally:
        asgi.shutdown_lifespans()
        service.close()


def _written_ids(body: Any) -> list[str]:
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return [d["id"] for d in body["data"] if isinstance(d, dict) and "id" in d]
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return [body["id"]]
    return []


def assert_tenant_readable(client: TestClient, tenant: TenantKey, written: list[str]) -> None:
    """The "no poison" invariant: every read of the tenant still answers 200."""
    h = tenant.headers
    reads = [
        client.get("/v1/memories", params={"limit": 1000}, headers=h),
        client.get("/v1/memories", params={"limit": 1000, "include_archived": True}, headers=h),
        client.post("/v1/search", json={"query": "a b c"}, headers=h),
        client.post("/v1/context", json={"query": "a b c"}, headers=h),
        client.get("/v1/events", params={"limit": 1000}, headers=h),
        client.get("/v1/sessions", params={"limit": 1000}, headers=h),
        client.get("/v1/graph/entities", params={"limit": 1000}, headers=h),
        client.get("/v1/kv", headers=h),
        client.get("/v1/cartridges", headers=h),
    ]
    for memory_id in written:
        reads.append(client.get(f"/v1/memories/{memory_id}", headers=h))
        reads.append(client.get(f"/v1/memories/{memory_id}/history", headers=h))
    for response in reads:
        assert response.status_code in (200, 404), (response.request.url, response.text)


def _call(target: FuzzTarget, case: schemathesis.Case) -> None:
    admin = case.path.startswith("/v1/admin")
    key = ADMIN_KEY if admin else target.tenant.key
    if case.headers:  # the document lists the auth headers: use the real key instead
        case.headers = {k: v for k, v in case.headers.items() if k.lower() not in _AUTH_HEADERS}
    response = case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
    if response.status_code >= 300:
        return
    if response.headers.get("content-type", [""])[0].startswith("application/json"):
        target.remember(response.json())
    if case.method.upper() == "GET":
        return
    if admin:
        listed = target.client.get("/v1/admin/tenants", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200, listed.text
        return
    written = _written_ids(response.json()) if response.content else []
    assert_tenant_readable(target.client, target.tenant, written)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_route(target: FuzzTarget, method: str, path: str) -> None:
    operation = target.schema[path][method]
    valid = operation.as_strategy(GenerationMode.POSITIVE)
    seeded = [operation.as_strategy(body=b) for b in SEED_BODIES.get((method, path), [])]
    seeded += [operation.as_strategy(query=q) for q in SEED_QUERIES.get((method, path), [])]
    # Valid requests (hostile values planted in some), seeded ones, and invalid ones.
    cases = st.one_of(valid, *seeded, operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        _call(target, case)

    fuzz()
