# Generated from memsvc/sdk/_async/kv.py by scripts/unasync_sdk.py: do not edit;
# change the async source and run the script.
"""``client.kv`` and ``client.cartridges``: KV caches and trained cartridges, written once.

Written asynchronous in ``memsvc/sdk/_async/kv.py``; ``memsvc/sdk/_sync/kv.py`` is generated
from it by ``scripts/unasync_sdk.py``.
Everything goes through the client's public :meth:`request` and :meth:`download`; the I/O-free
parts (caches to containers and back, specs) are in :mod:`memsvc.sdk._kv`. torch is imported
on first use.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memsvc.errors import ServerError
from memsvc.schemas import CartridgeCompose, KVLookupRequest, KVLookupResult, KVPublic, Page
from memsvc.schemas.params import CartridgeListParams, CartridgeUploadParams, SessionKVUploadParams
from memsvc.sdk._base import build
from memsvc.sdk._kv import (
    DEFAULT_SPEC,
    build_container,
    container_to_cache,
    model_id_of,
    spec_param,
    token_list,
)

if TYPE_CHECKING:
    from kv_cartridges.format import KVContainer
    from memsvc.sdk._sync.client import MemoryClient

__all__ = ["CartridgeClient", "KVClient"]


@contextmanager
def _container_file(container: KVContainer) -> Iterator[Path]:
    """The container written to a temporary file (removed after)."""
    fd, name = tempfile.mkstemp(prefix="memsvc-kv-", suffix=".safetensors")
    os.close(fd)
    try:
        container.write(Path(name))
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _read_file(path: Path) -> KVContainer:
    from kv_cartridges.format import FormatError, read_container

    try:
        return read_container(path)
    except FormatError as exc:
        raise ServerError(f"the server sent a container that fails verification: {exc}") from exc


def _json_object(metadata: dict[str, Any] | None) -> str | None:
    import json

    return None if metadata is None else json.dumps(metadata)


class KVClient:
    """Episodic KV caches (``client.kv``): save a conversation's cache, resume it later."""

    def __init__(self, client: MemoryClient) -> None:
        self._client = client

    def save(
        self,
        cache: Any,
        model: Any,
        token_ids: Any,
        *,
        session_id: str,
        episode_id: str | None = None,
        spec: Any = DEFAULT_SPEC,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        """Store the cache of a session (or episode), replacing the previous one. ``spec``:
        a preset name (``"default"``: 4.5 bits/elem), a QuantSpec or its dict, or ``"raw"``
        (lossless)."""
        origin: dict[str, Any] = {"kind": "session", "session_id": session_id}
        if episode_id is not None:
            origin["episode_id"] = episode_id
        container = build_container(cache, model, token_ids, spec=spec, origin=origin)
        query = build(SessionKVUploadParams, episode_id=episode_id, metadata=_json_object(metadata))
        with _container_file(container) as file:
            return self._client.request(
                "kv-put_session_kv", path={"session_id": session_id}, query=query, upload=file
            )

    def load(self, kv_id: str, model: Any, *, n_tokens: int | None = None) -> Any:
        """A ``DynamicCache`` for ``model``; refuses a cache of another model (422)."""
        with self._client.download("kv-get_kv_content", path={"kv_id": kv_id}) as file:
            return container_to_cache(_read_file(file), model, n_tokens)

    def lookup(self, model: Any, token_ids: Any) -> KVLookupResult:
        """The stored cache covering the longest prefix of ``token_ids`` for this model."""
        body = build(KVLookupRequest, model_id=model_id_of(model), token_ids=token_list(token_ids))
        return self._client.request("kv-lookup_kv", body=body)

    def resume(self, model: Any, token_ids: Any) -> tuple[Any, int]:
        """``(cache, n)``: the longest stored prefix as a cache and how many tokens it covers
        (``(None, 0)`` when nothing matches). Feed ``token_ids[n:]`` to the model next."""
        found = self.lookup(model, token_ids)
        if found.kv is None:
            return None, 0
        return self.load(found.kv.id, model, n_tokens=found.n_tokens), found.n_tokens

    def get(self, kv_id: str) -> KVPublic:
        return self._client.request("kv-get_kv", path={"kv_id": kv_id})

    def delete(self, kv_id: str) -> None:
        self._client.request("kv-delete_kv", path={"kv_id": kv_id})


class CartridgeClient:
    """Trained KV cartridges (``client.cartridges``)."""

    def __init__(self, client: MemoryClient, kv: KVClient) -> None:
        self._client, self._kv = client, kv

    def push(
        self,
        source: KVContainer | str | os.PathLike[str],
        *,
        name: str | None = None,
        spec: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        """Upload a container (object or file). ``spec`` asks the server to compress a raw one
        (a preset name, a QuantSpec or its dict; ``None`` or ``"raw"``: stored as it is)."""
        query = build(
            CartridgeUploadParams,
            name=name,
            spec=spec_param(spec),
            metadata=_json_object(metadata),
        )
        if isinstance(source, (str, os.PathLike)):
            return self._client.request(
                "cartridges-push_cartridge", query=query, upload=Path(source)
            )
        with _container_file(source) as file:
            return self._client.request("cartridges-push_cartridge", query=query, upload=file)

    def pull(self, cartridge_id: str, path: str | os.PathLike[str] | None = None) -> Any:
        """The verified container, or (``path`` given) the file written there."""
        where = {"cartridge_id": cartridge_id}
        with self._client.download("cartridges-get_cartridge_content", path=where) as file:
            container = _read_file(file)
            if path is None:
                return container
            shutil.copyfile(file, path)
            return Path(path)

    def load(self, cartridge_id: str, model: Any) -> Any:
        """The cartridge as a ``DynamicCache`` for ``model`` (refuses another model's)."""
        return container_to_cache(self.pull(cartridge_id), model)

    def list(
        self,
        *,
        model: Any = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[KVPublic]:
        """Cartridges, filtered by model (a model, fingerprint or its id) and name."""
        model_id = None if model is None else model_id_of(model)
        query = build(CartridgeListParams, model_id=model_id, name=name, limit=limit, cursor=cursor)
        return self._client.request("cartridges-list_cartridges", query=query)

    def get(self, cartridge_id: str) -> KVPublic:
        return self._client.request("cartridges-get_cartridge", path={"cartridge_id": cartridge_id})

    def compose(
        self, ids: Sequence[str], *, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> KVPublic:
        """A new cartridge: these concatenated along tokens (same model)."""
        body = build(CartridgeCompose, ids=list(ids), name=name, metadata=metadata or {})
        return self._client.request("cartridges-compose_cartridges", body=body)

    def delete(self, cartridge_id: str) -> None:
        self._client.request("cartridges-delete_cartridge", path={"cartridge_id": cartridge_id})
