"""The in-process transport: calls answered by a ``MemoryService`` in this process.

It hands each :class:`~memsvc.operations.Call` to :func:`memsvc.service.handlers.dispatch`,
the entry the REST routes use too, after the same checks in the same order, so the embedded
``Memory`` behaves as the server does:

- an upload's file is copied into the service's blob store first (the service consumes what
  it stores; the caller's file stays); a download is copied out of the blob opened for it;
- a write the caller sent with its own ``idempotency_key`` stores its reply in its transaction
  (events, memories) and a repeat answers that reply, as over REST;
- a database or Redis that is away is a ``ServiceUnavailableError``, as REST's 503.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from memsvc.operations import Call
from memsvc.sdk._base import json_body, query_params
from memsvc.sdk.transport import AsyncTransport, Transport

if TYPE_CHECKING:
    from memsvc.service import MemoryService, Principal

__all__ = ["AsyncInProcessTransport", "InProcessTransport"]


class InProcessTransport(Transport):
    """Calls answered by ``service`` as ``principal`` (a tenant's, or the admin)."""

    def __init__(self, service: MemoryService, principal: Principal) -> None:
        self.service = service
        self.principal = principal

    def send(self, call: Call) -> Any:
        from memsvc.service.availability import DEPENDENCY_ERRORS, unavailable

        try:
            return self._send(call)
        except DEPENDENCY_ERRORS as exc:
            retry_after = self.service.settings.dependencies.retry_after_seconds
            raise unavailable(exc, retry_after) from exc

    def _send(self, call: Call) -> Any:
        from memsvc.service.handlers import authorize, check_upload, dispatch

        if call.upload is not None:
            authorize(call.op, self.principal)
            check_upload(call)  # refused before the file is copied, as REST refuses it early
            copy = self.service.deps.blobs.new_tmp_file()
            try:
                shutil.copyfile(call.upload, copy)
            except BaseException:
                copy.unlink(missing_ok=True)
                raise
            call = dataclasses.replace(call, upload=copy, upload_sha256=None)
        if call.idempotency_key is not None and call.op.idempotency == "transaction":
            authorize(call.op, self.principal)
            replayed = self._keyed(call)
            if replayed is not None:
                return replayed
        return dispatch(self.service, self.principal, call)

    def _keyed(self, call: Call) -> Any:
        """A write with the caller's key: the stored reply when the key was answered before,
        else ``None`` with the call set to store its reply in the write's transaction."""
        from memsvc.service.idempotency import IdempotentRequest, check_key

        key = check_key(call.idempotency_key, self.service.settings.idempotency.max_key_length)
        request = [call.op.method, call.op.url(**call.path), query_params(call.query)]
        text = json.dumps([*request, json_body(call.body)], sort_keys=True, default=str)
        fingerprint = hashlib.sha256(text.encode()).hexdigest()
        scope = self.principal.tenant_id or ""
        seen = self.service.idempotency.lookup(scope, key)
        if seen is not None:
            reply = seen.replay(key, fingerprint)  # or the mismatch / in-progress error
            return TypeAdapter(call.op.response).validate_json(reply.body)
        call.idempotency = IdempotentRequest(scope, key, fingerprint, call.op.status_code)
        return None

    @contextmanager
    def download(self, call: Call) -> Iterator[Path]:
        content = self.send(call)
        fd, name = tempfile.mkstemp(prefix="memsvc-kv-", suffix=".safetensors")
        dest = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in content.chunks():
                    f.write(chunk)
            yield dest
        finally:
            dest.unlink(missing_ok=True)


class AsyncInProcessTransport(AsyncTransport):
    """:class:`InProcessTransport` for ``AsyncMemoryClient``: each call on a worker thread,
    so the event loop never waits on the database or the embedder."""

    def __init__(self, service: MemoryService, principal: Principal) -> None:
        self._sync = InProcessTransport(service, principal)

    async def send(self, call: Call) -> Any:
        return await asyncio.to_thread(self._sync.send, call)

    @asynccontextmanager
    async def download(self, call: Call) -> AsyncIterator[Path]:
        manager = self._sync.download(call)
        path = await asyncio.to_thread(manager.__enter__)
        try:
            yield path
        finally:
            await asyncio.to_thread(manager.__exit__, None, None, None)
