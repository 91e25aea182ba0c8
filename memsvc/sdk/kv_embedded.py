"""``Memory.kv`` and ``Memory.cartridges``: the KV surface of the REST clients, in-process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from memsvc.schemas import CartridgeCompose, KVLookupRequest, KVLookupResult, KVPublic, Page
from memsvc.sdk._base import invalid_from_validation
from memsvc.sdk._kv import (
    DEFAULT_SPEC,
    build_container,
    container_to_cache,
    model_id_of,
    resolve_spec,
    token_list,
)

if TYPE_CHECKING:
    from kv_cartridges.format import KVContainer
    from memsvc.sdk.embedded import Memory

__all__ = ["EmbeddedCartridges", "EmbeddedKV"]


class EmbeddedKV:
    """Episodic KV caches of an embedded :class:`~memsvc.Memory` (``memory.kv``)."""

    def __init__(self, memory: Memory) -> None:
        self._memory = memory

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
        origin: dict[str, Any] = {"kind": "session", "session_id": session_id}
        if episode_id is not None:
            origin["episode_id"] = episode_id
        container = build_container(cache, model, token_ids, spec=spec, origin=origin)
        m = self._memory
        return m._svc().save_session_kv(
            m.tenant_id, session_id, container, episode_id=episode_id, metadata=metadata
        )

    def load(self, kv_id: str, model: Any, *, n_tokens: int | None = None) -> Any:
        container = self._memory._svc().load_kv(self._memory.tenant_id, kv_id)
        return container_to_cache(container, model, n_tokens)

    def lookup(self, model: Any, token_ids: Any) -> KVLookupResult:
        try:
            request = KVLookupRequest(model_id=model_id_of(model), token_ids=token_list(token_ids))
        except ValidationError as exc:
            raise invalid_from_validation(exc) from exc
        return self._memory._svc().lookup_kv(self._memory.tenant_id, request)

    def resume(self, model: Any, token_ids: Any) -> tuple[Any, int]:
        found = self.lookup(model, token_ids)
        if found.kv is None:
            return None, 0
        return self.load(found.kv.id, model, n_tokens=found.n_tokens), found.n_tokens

    def get(self, kv_id: str) -> KVPublic:
        return self._memory._svc().get_kv(self._memory.tenant_id, kv_id)

    def delete(self, kv_id: str) -> None:
        self._memory._svc().delete_kv(self._memory.tenant_id, kv_id)


class EmbeddedCartridges:
    """Trained KV cartridges of an embedded :class:`~memsvc.Memory` (``memory.cartridges``)."""

    def __init__(self, memory: Memory, kv: EmbeddedKV) -> None:
        self._memory = memory

    def push(
        self,
        source: KVContainer | str | os.PathLike[str],
        *,
        name: str | None = None,
        spec: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        svc, codec = self._memory._svc(), resolve_spec(spec)
        tmp = svc.deps.blobs.new_tmp_file()  # the service consumes the file it stores
        try:
            if isinstance(source, (str, os.PathLike)):
                shutil.copyfile(source, tmp)
            else:
                source.write(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return svc.store_kv_file(
            self._memory.tenant_id, tmp, kind="cartridge", name=name, spec=codec, metadata=metadata
        )

    def pull(self, cartridge_id: str, path: str | os.PathLike[str] | None = None) -> Any:
        svc, tenant = self._memory._svc(), self._memory.tenant_id
        if path is None:
            return svc.load_kv(tenant, cartridge_id, kind="cartridge")
        content = svc.open_kv_content(tenant, cartridge_id, kind="cartridge")
        with Path(path).open("wb") as f:
            for chunk in content.chunks():
                f.write(chunk)
        return Path(path)

    def load(self, cartridge_id: str, model: Any) -> Any:
        return container_to_cache(self.pull(cartridge_id), model)

    def list(
        self,
        *,
        model: Any = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[KVPublic]:
        return self._memory._svc().list_kv(
            self._memory.tenant_id,
            kind="cartridge",
            model_id=None if model is None else model_id_of(model),
            name=name,
            limit=limit,
            cursor=cursor,
        )

    def get(self, cartridge_id: str) -> KVPublic:
        return self._memory._svc().get_kv(self._memory.tenant_id, cartridge_id, kind="cartridge")

    def compose(
        self, ids: Sequence[str], *, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> KVPublic:
        try:
            request = CartridgeCompose(ids=list(ids), name=name, metadata=metadata or {})
        except ValidationError as exc:
            raise invalid_from_validation(exc) from exc
        return self._memory._svc().compose_cartridges(self._memory.tenant_id, request)

    def delete(self, cartridge_id: str) -> None:
        self._memory._svc().delete_kv(self._memory.tenant_id, cartridge_id, kind="cartridge")
