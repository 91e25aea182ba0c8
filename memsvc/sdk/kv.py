"""``client.kv`` and ``client.cartridges``: KV memory over REST, sync and async twins.

Containers travel as files: uploads are written to a temporary file and streamed from it,
downloads streamed into one, so a large cache never sits twice in memory.

    entry = client.kv.save(cache, model, token_ids, session_id="s1")   # 4.5-bit by default
    found = client.kv.lookup(model, token_ids + new_turn)               # longest stored prefix
    cache = client.kv.load(found.kv.id, model, n_tokens=found.n_tokens) # a DynamicCache
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from memsvc.errors import TransportError
from memsvc.schemas import KVLookupResult, KVPublic, Page
from memsvc.sdk._base import ApiCall
from memsvc.sdk._kv import (
    DEFAULT_SPEC,
    KVCalls,
    build_container,
    container_to_cache,
    model_id_of,
    token_list,
)

if TYPE_CHECKING:
    from kv_cartridges.format import KVContainer
    from memsvc.sdk.client import AsyncMemoryClient, MemoryClient

__all__ = ["AsyncCartridgeClient", "AsyncKVClient", "CartridgeClient", "KVClient"]

_OCTET = {"Content-Type": "application/octet-stream"}
_CHUNK = 1 << 20


@contextmanager
def _tmp_file() -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="memsvc-kv-", suffix=".safetensors")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _session_origin(session_id: str, episode_id: str | None) -> dict[str, Any]:
    origin: dict[str, Any] = {"kind": "session", "session_id": session_id}
    if episode_id is not None:
        origin["episode_id"] = episode_id
    return origin


def _params(**values: Any) -> dict[str, Any]:
    import json

    out = {k: v for k, v in values.items() if v is not None}
    if "metadata" in out:
        out["metadata"] = json.dumps(out["metadata"])
    if "spec" in out and not isinstance(out["spec"], str):
        out["spec"] = json.dumps(out["spec"].to_dict())
    return out


def _read_file(path: Path) -> KVContainer:
    from kv_cartridges.format import FormatError, read_container
    from memsvc.errors import ServerError

    try:
        return read_container(path)
    except FormatError as exc:
        raise ServerError(f"the server sent a container that fails verification: {exc}") from exc


class KVClient:
    """Episodic KV caches of a :class:`~memsvc.MemoryClient` (``client.kv``)."""

    def __init__(self, client: MemoryClient) -> None:
        self._client = client

    def _upload(self, method: str, path: str, file: Path, params: dict[str, Any]) -> KVPublic:
        c = self._client
        c._check_open()
        call = ApiCall(method, path, response_type=KVPublic)
        try:
            with file.open("rb") as f:
                response = c._http.request(
                    method, path, params=params, content=f, headers=c._headers() | _OCTET
                )
        except httpx.TransportError as exc:
            raise TransportError(f"{method} {path}: {exc}", request=exc.request) from exc
        return c._read(call, response)

    def _download(self, path: str, dest: Path) -> None:
        c = self._client
        c._check_open()
        try:
            with c._http.stream("GET", path, headers=c._headers()) as response:
                if response.is_error:
                    response.read()
                    c._read(ApiCall("GET", path), response)
                with dest.open("wb") as f:
                    for chunk in response.iter_bytes(_CHUNK):
                        f.write(chunk)
        except httpx.TransportError as exc:
            raise TransportError(f"GET {path}: {exc}", request=exc.request) from exc

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
        a preset name (``"default"``: 4.5 bits/elem), a QuantSpec, or ``"raw"`` (lossless)."""
        container = build_container(
            cache, model, token_ids, spec=spec, origin=_session_origin(session_id, episode_id)
        )
        with _tmp_file() as file:
            container.write(file)
            params = _params(episode_id=episode_id, metadata=metadata)
            return self._upload("PUT", f"/v1/sessions/{session_id}/kv", file, params)

    def load(self, kv_id: str, model: Any, *, n_tokens: int | None = None) -> Any:
        """A ``DynamicCache`` for ``model``; refuses a cache of another model (422)."""
        with _tmp_file() as file:
            self._download(KVCalls.content_path(kv_id), file)
            return container_to_cache(_read_file(file), model, n_tokens)

    def lookup(self, model: Any, token_ids: Any) -> KVLookupResult:
        """The stored cache covering the longest prefix of ``token_ids`` for this model."""
        return self._client._send(KVCalls.lookup(model_id_of(model), token_list(token_ids)))

    def resume(self, model: Any, token_ids: Any) -> tuple[Any, int]:
        """``(cache, n)``: the longest stored prefix as a cache and how many tokens it covers
        (``(None, 0)`` when nothing matches). Feed ``token_ids[n:]`` to the model next."""
        found = self.lookup(model, token_ids)
        if found.kv is None:
            return None, 0
        return self.load(found.kv.id, model, n_tokens=found.n_tokens), found.n_tokens

    def get(self, kv_id: str) -> KVPublic:
        return self._client._send(KVCalls.get(kv_id))

    def delete(self, kv_id: str) -> None:
        self._client._send(KVCalls.delete(kv_id))


class CartridgeClient:
    """Trained KV cartridges of a :class:`~memsvc.MemoryClient` (``client.cartridges``)."""

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
        """Upload a container (object or file). ``spec`` asks the server to compress a raw one."""
        params = _params(name=name, spec=spec, metadata=metadata)
        if isinstance(source, (str, os.PathLike)):
            return self._kv._upload("POST", "/v1/cartridges", Path(source), params)
        with _tmp_file() as file:
            source.write(file)
            return self._kv._upload("POST", "/v1/cartridges", file, params)

    def pull(self, cartridge_id: str, path: str | os.PathLike[str] | None = None) -> Any:
        """The verified container, or (``path`` given) the file written there."""
        if path is not None:
            self._kv._download(KVCalls.content_path(cartridge_id, "cartridge"), Path(path))
            _read_file(Path(path))
            return Path(path)
        with _tmp_file() as file:
            self._kv._download(KVCalls.content_path(cartridge_id, "cartridge"), file)
            return _read_file(file)

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
        return self._client._send(KVCalls.list_cartridges(model, name, limit, cursor))

    def get(self, cartridge_id: str) -> KVPublic:
        return self._client._send(KVCalls.get(cartridge_id, "cartridge"))

    def compose(
        self, ids: Sequence[str], *, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> KVPublic:
        """A new cartridge: these concatenated along tokens (same model)."""
        return self._client._send(KVCalls.compose(ids, name, metadata))

    def delete(self, cartridge_id: str) -> None:
        self._client._send(KVCalls.delete(cartridge_id, "cartridge"))


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            yield block


class AsyncKVClient:
    """``client.kv`` of :class:`~memsvc.AsyncMemoryClient` (same surface, awaitable)."""

    def __init__(self, client: AsyncMemoryClient) -> None:
        self._client = client

    async def _upload(self, method: str, path: str, file: Path, params: dict[str, Any]) -> KVPublic:
        c = self._client
        c._check_open()
        call = ApiCall(method, path, response_type=KVPublic)
        try:
            response = await c._http.request(
                method,
                path,
                params=params,
                content=_file_chunks(file),
                headers=c._headers() | _OCTET,
            )
        except httpx.TransportError as exc:
            raise TransportError(f"{method} {path}: {exc}", request=exc.request) from exc
        return c._read(call, response)

    async def _download(self, path: str, dest: Path) -> None:
        c = self._client
        c._check_open()
        try:
            async with c._http.stream("GET", path, headers=c._headers()) as response:
                if response.is_error:
                    await response.aread()
                    c._read(ApiCall("GET", path), response)
                with dest.open("wb") as f:
                    async for chunk in response.aiter_bytes(_CHUNK):
                        f.write(chunk)
        except httpx.TransportError as exc:
            raise TransportError(f"GET {path}: {exc}", request=exc.request) from exc

    async def save(
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
        container = build_container(
            cache, model, token_ids, spec=spec, origin=_session_origin(session_id, episode_id)
        )
        with _tmp_file() as file:
            container.write(file)
            params = _params(episode_id=episode_id, metadata=metadata)
            return await self._upload("PUT", f"/v1/sessions/{session_id}/kv", file, params)

    async def load(self, kv_id: str, model: Any, *, n_tokens: int | None = None) -> Any:
        with _tmp_file() as file:
            await self._download(KVCalls.content_path(kv_id), file)
            return container_to_cache(_read_file(file), model, n_tokens)

    async def lookup(self, model: Any, token_ids: Any) -> KVLookupResult:
        return await self._client._send(KVCalls.lookup(model_id_of(model), token_list(token_ids)))

    async def resume(self, model: Any, token_ids: Any) -> tuple[Any, int]:
        found = await self.lookup(model, token_ids)
        if found.kv is None:
            return None, 0
        return await self.load(found.kv.id, model, n_tokens=found.n_tokens), found.n_tokens

    async def get(self, kv_id: str) -> KVPublic:
        return await self._client._send(KVCalls.get(kv_id))

    async def delete(self, kv_id: str) -> None:
        await self._client._send(KVCalls.delete(kv_id))


class AsyncCartridgeClient:
    """``client.cartridges`` of :class:`~memsvc.AsyncMemoryClient`."""

    def __init__(self, client: AsyncMemoryClient, kv: AsyncKVClient) -> None:
        self._client, self._kv = client, kv

    async def push(
        self,
        source: KVContainer | str | os.PathLike[str],
        *,
        name: str | None = None,
        spec: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        params = _params(name=name, spec=spec, metadata=metadata)
        if isinstance(source, (str, os.PathLike)):
            return await self._kv._upload("POST", "/v1/cartridges", Path(source), params)
        with _tmp_file() as file:
            source.write(file)
            return await self._kv._upload("POST", "/v1/cartridges", file, params)

    async def pull(self, cartridge_id: str, path: str | os.PathLike[str] | None = None) -> Any:
        if path is not None:
            await self._kv._download(KVCalls.content_path(cartridge_id, "cartridge"), Path(path))
            _read_file(Path(path))
            return Path(path)
        with _tmp_file() as file:
            await self._kv._download(KVCalls.content_path(cartridge_id, "cartridge"), file)
            return _read_file(file)

    async def load(self, cartridge_id: str, model: Any) -> Any:
        return container_to_cache(await self.pull(cartridge_id), model)

    async def list(
        self,
        *,
        model: Any = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[KVPublic]:
        return await self._client._send(KVCalls.list_cartridges(model, name, limit, cursor))

    async def get(self, cartridge_id: str) -> KVPublic:
        return await self._client._send(KVCalls.get(cartridge_id, "cartridge"))

    async def compose(
        self, ids: Sequence[str], *, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> KVPublic:
        return await self._client._send(KVCalls.compose(ids, name, metadata))

    async def delete(self, cartridge_id: str) -> None:
        await self._client._send(KVCalls.delete(cartridge_id, "cartridge"))
