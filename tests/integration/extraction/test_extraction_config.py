"""Extraction configuration: versioned per tenant and scope, the most specific in use,
tenants isolated, bad input refused; the same through REST, the client and embedded Memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from memsvc import Memory, MemoryClient
from memsvc.errors import InvalidRequestError
from memsvc.service import MemoryService
from memsvc.service.extraction_config import guide_for
from tests.conftest import TenantKey

URL = "/v1/extraction/config"


def test_versions_scopes_and_isolation(
    client: TestClient, service: MemoryService, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    h = tenant.headers
    empty = client.get(URL, headers=h).json()
    assert (empty["version"], empty["instructions"], empty["categories"]) == (0, "", [])

    v1 = client.put(URL, json={"instructions": "one"}, headers=h).json()
    v2 = client.put(
        URL,
        json={"instructions": "two", "categories": [{"name": "food", "keywords": ["pizza"]}]},
        headers=h,
    ).json()
    assert (v1["version"], v2["version"]) == (1, 2) and v2["actor"].startswith("key:")
    mine = client.put(URL, json={"user_id": "ann", "instructions": "ann's"}, headers=h).json()
    assert (mine["version"], mine["user_id"]) == (1, "ann")

    # In use: the newest version of the most specific scope that has one.
    assert client.get(URL, headers=h).json()["instructions"] == "two"
    assert client.get(URL, params={"user_id": "ann"}, headers=h).json()["instructions"] == "ann's"
    both = client.get(URL, params={"user_id": "ann", "agent_id": "bot"}, headers=h).json()
    assert (both["instructions"], both["user_id"], both["agent_id"]) == ("ann's", "ann", None)
    assert client.get(URL, params={"user_id": "bob"}, headers=h).json()["version"] == 2

    versions = client.get(URL + "/versions", headers=h).json()
    assert [v["instructions"] for v in versions["data"]] == ["two", "one"]
    assert versions["data"][0]["categories"] == [
        {"name": "food", "keywords": ["pizza"], "description": ""}
    ]
    with service.deps.sessions() as session:
        guide = guide_for(session, tenant.tenant_id, "bob", None)
    assert guide.version == 2 and guide.tag("We ate pizza.") == ["food"]

    # Another tenant sees none of it.
    theirs = client.get(URL, headers=other_tenant.headers).json()
    assert theirs["version"] == 0
    assert client.get(URL + "/versions", headers=other_tenant.headers).json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"categories": [{"name": "a"}, {"name": "A"}]}, "categories[1].name"),
        ({"categories": [{"name": ""}]}, "categories[0].name"),
        ({"instructions": "x" * 4001}, "instructions"),
        ({"instruction": "typo"}, "instruction"),
    ],
)
def test_bad_configurations_are_refused_and_change_nothing(
    client: TestClient, tenant: TenantKey, body: dict, field: str
) -> None:
    refused = client.put(URL, json=body, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field
    assert client.get(URL + "/versions", headers=tenant.headers).json()["count"] == 0


@pytest.fixture(params=["embedded", "rest"])
def sdk(request, service: MemoryService, tenant: TenantKey, client: TestClient) -> Iterator:
    if request.param == "embedded":
        memory = Memory(service=service, tenant_id=tenant.tenant_id)
    else:
        memory = MemoryClient(api_key=tenant.key, http_client=client)
    yield memory
    memory.close()


def test_sdk_extraction_config(sdk) -> None:
    assert sdk.get_extraction_config().version == 0
    stored = sdk.set_extraction_config(
        instructions="Remember travel plans.",
        categories=[{"name": "travel", "keywords": ["flight", "trip"]}],
        agent_id="planner",
    )
    assert (stored.version, stored.agent_id) == (1, "planner")
    assert sdk.get_extraction_config(agent_id="planner").categories[0].name == "travel"
    assert sdk.get_extraction_config().version == 0  # the tenant's own is still unset
    sdk.set_extraction_config(instructions="v2", agent_id="planner")
    listed = sdk.list_extraction_config_versions(agent_id="planner")
    assert [v.version for v in listed] == [2, 1]
    with pytest.raises(InvalidRequestError):
        sdk.set_extraction_config(categories=[{"name": "x", "colour": "red"}])
