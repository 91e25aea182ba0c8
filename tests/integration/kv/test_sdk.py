"""SDK: save -> lookup -> load -> continue gives the tokens of never having left, over REST
(sync and async) and embedded; another model's cache is refused; the surfaces are twins."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from api.main import create_app
from memsvc import AsyncMemoryClient, Memory, MemoryClient
from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.sdk import AsyncCartridgeClient, AsyncKVClient, CartridgeClient, KVClient
from memsvc.service import MemoryService
from tests.conftest import TenantKey
from tests.integration.kv.conftest import container_for, prefill


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: the REST tests cover PostgreSQL; these are about the SDK."""
    return f"sqlite:///{tmp_path / 'memsvc.db'}"


def greedy(model, cache, feed: list[int], steps: int) -> list[int]:
    """Greedy tokens after feeding ``feed`` on top of ``cache``."""
    from transformers import DynamicCache

    cache = cache if cache is not None else DynamicCache()
    out, x = [], torch.tensor([feed])
    with torch.inference_mode():
        for _ in range(steps):
            step = model(x, cache=cache, use_cache=True)
            token = int(step.logits[0, -1].argmax())
            out.append(token)
            cache, x = step.cache, torch.tensor([[token]])
    return out


@pytest.fixture(params=["embedded", "rest"])
def sdk(request, service: MemoryService, tenant: TenantKey, client: TestClient) -> Iterator:
    if request.param == "embedded":
        memory = Memory(service=service, tenant_id=tenant.tenant_id)
    else:
        memory = MemoryClient(api_key=tenant.key, http_client=client)
    yield memory
    memory.close()


def test_save_lookup_load_continue(sdk, tiny_model, token_ids) -> None:
    turn, new = token_ids[:130], [5, 9, 11]
    cache, _ = prefill(tiny_model, turn)
    stay = greedy(tiny_model, prefill(tiny_model, turn)[0], new, 12)  # never left
    saved = sdk.kv.save(cache, tiny_model, turn, session_id="s1", spec="raw")
    assert saved.kind == "episodic" and saved.n_tokens == 130 and saved.codec == {"name": "raw"}

    found = sdk.kv.lookup(tiny_model, turn + new)
    assert found.n_tokens == 130 and found.kv.id == saved.id
    restored = sdk.kv.load(found.kv.id, tiny_model, n_tokens=found.n_tokens)
    assert greedy(tiny_model, restored, new, 12) == stay

    again, n = sdk.kv.resume(tiny_model, torch.tensor([turn + new]))
    assert n == 130 and greedy(tiny_model, again, new, 12) == stay
    # a longer query than the cache and a shorter one: a prefix of whole chunks
    cut, n = sdk.kv.resume(tiny_model, turn[:100])
    assert n == 64 and cut.get_seq_length() == 64
    assert sdk.kv.resume(tiny_model, [1, 2, 3]) == (None, 0)

    quantized = sdk.kv.save(cache, tiny_model, turn, session_id="s1", episode_id="e1")
    assert quantized.codec["name"] == "kvquant" and quantized.size_bytes < saved.size_bytes / 4
    assert sdk.kv.get(saved.id).id == saved.id  # another episode: both kept
    sdk.kv.delete(quantized.id)
    with pytest.raises(NotFoundError):
        sdk.kv.get(quantized.id)


def test_cartridges_push_pull_list_compose_delete(sdk, tiny_model, token_ids, tmp_path) -> None:
    container = container_for(tiny_model, token_ids)
    a = sdk.cartridges.push(container, name="doc", spec="default")
    assert a.codec["name"] == "kvquant" and a.name == "doc"
    file = tmp_path / "c.safetensors"
    container.write(file)
    b = sdk.cartridges.push(file, metadata={"source": "file"})
    assert b.codec == {"name": "raw"} and b.metadata == {"source": "file"}
    assert [c.id for c in sdk.cartridges.list(model=tiny_model, name="doc").data] == [a.id]
    assert sdk.cartridges.list(model="0" * 32).count == 0
    pulled = sdk.cartridges.pull(b.id)
    k, v = pulled.layers()[1]
    assert torch.equal(k, container.layers()[1][0]) and torch.equal(v, container.layers()[1][1])
    out = sdk.cartridges.pull(a.id, tmp_path / "out.safetensors")
    assert out.stat().st_size == a.size_bytes
    assert sdk.cartridges.load(b.id, tiny_model).get_seq_length() == 150
    both = sdk.cartridges.compose([b.id, b.id], name="twice")
    assert both.n_tokens == 300 and both.codec == {"name": "raw"}
    with pytest.raises(InvalidRequestError):
        sdk.cartridges.compose([b.id])
    sdk.cartridges.delete(a.id)
    assert {c.id for c in sdk.cartridges.list().data} == {b.id, both.id}
    with pytest.raises(NotFoundError):
        sdk.cartridges.get(a.id)
    with pytest.raises(NotFoundError):
        sdk.kv.load(a.id, tiny_model)


def test_another_models_cache_is_refused(sdk, tiny_model, token_ids) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = tiny_model.config.to_dict() | {"rope_theta": 500.0}
    config.pop("rope_parameters", None)
    config.pop("rope_scaling", None)
    other = LlamaForCausalLM(LlamaConfig(**config)).eval()
    cache, _ = prefill(tiny_model, token_ids)
    saved = sdk.kv.save(cache, tiny_model, token_ids, session_id="s2", spec="raw")
    with pytest.raises(InvalidRequestError, match="another model") as err:
        sdk.kv.load(saved.id, other)
    assert err.value.code == "fingerprint_mismatch"
    assert sdk.kv.lookup(other, token_ids).kv is None  # other fingerprint: not found either
    with pytest.raises(InvalidRequestError, match="transformers model"):
        sdk.kv.save(cache, other.config, token_ids, session_id="s2")  # not a model
    with pytest.raises(InvalidRequestError, match="token ids"):
        sdk.kv.save(cache, tiny_model, token_ids[:-1], session_id="s2")


def test_async_client(service, tenant, tiny_model, token_ids) -> None:
    async def run() -> None:
        transport = httpx.ASGITransport(app=create_app(service.settings, service=service))
        http = httpx.AsyncClient(transport=transport, base_url="http://test")
        async with AsyncMemoryClient(api_key=tenant.key, http_client=http) as client:
            cache, _ = prefill(tiny_model, token_ids)
            saved = await client.kv.save(cache, tiny_model, token_ids, session_id="s", spec="raw")
            restored, n = await client.kv.resume(tiny_model, [*token_ids, 1])
            assert n == 150 and saved.n_tokens == 150
            assert torch.equal(restored.layers[0].keys, cache.layers[0].keys)
            pushed = await client.cartridges.push(container_for(tiny_model, token_ids))
            assert (await client.cartridges.list()).count == 1
            assert (await client.cartridges.pull(pushed.id)).manifest.n_tokens == 150
            await client.cartridges.delete(pushed.id)
            await client.kv.delete(saved.id)

    asyncio.run(run())


def _surface(cls: type) -> dict[str, list[tuple[str, object]]]:
    return {
        name: [(p.name, p.kind) for p in list(inspect.signature(fn).parameters.values())[1:]]
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_surfaces_are_twins(service, tenant) -> None:
    assert _surface(KVClient) == _surface(AsyncKVClient)
    assert _surface(CartridgeClient) == _surface(AsyncCartridgeClient)
    # Embedded, it is the same client over another transport.
    memory = Memory(service=service, tenant_id=tenant.tenant_id)
    assert type(memory.kv) is KVClient and type(memory.cartridges) is CartridgeClient
    assert set(_surface(KVClient)) >= {"save", "load", "lookup"}
    assert set(_surface(CartridgeClient)) >= {"push", "pull", "list", "compose", "delete"}


def test_every_spec_form_reads_the_same_over_rest_and_embedded(sdk, tiny_model, token_ids) -> None:
    """One reading of ``spec`` (kv_cartridges.manifest.resolve_spec) for every door: "raw" and
    None store as given, a preset, a QuantSpec and its dict compress the same."""
    from kv_cartridges.quant import PRESETS

    container = container_for(tiny_model, token_ids)
    raw = sdk.cartridges.push(container, spec="raw")
    assert raw.codec == {"name": "raw"}
    by_name = sdk.cartridges.push(container, spec="compact")
    by_object = sdk.cartridges.push(container, spec=PRESETS["compact"])
    by_dict = sdk.cartridges.push(container, spec=PRESETS["compact"].to_dict())
    assert by_name.codec == by_object.codec == by_dict.codec
    assert by_name.codec["name"] == "kvquant" and by_name.sha256 == by_dict.sha256
    with pytest.raises(InvalidRequestError, match="unknown preset 'huge'") as err:
        sdk.cartridges.push(container, spec="huge")
    assert err.value.field == "spec"


def test_ids_are_quoted_whatever_they_hold(sdk, tiny_model, token_ids) -> None:
    """A session id with characters that mean something in a URL reaches its session. (No
    "%" here: starlette's TestClient decodes the path twice; a real server decodes it once.)"""
    session = "chat/42 ?x=1#frag"
    cache, _ = prefill(tiny_model, token_ids)
    saved = sdk.kv.save(cache, tiny_model, token_ids, session_id=session, spec="raw")
    assert saved.session_id == session
    assert sdk.kv.lookup(tiny_model, token_ids).kv.id == saved.id
