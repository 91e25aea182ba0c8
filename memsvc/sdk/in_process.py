"""The in-process transport: calls answered by a ``MemoryService`` in this process.

It hands each :class:`~memsvc.operations.Call` to :func:`memsvc.service.handlers.dispatch`,
the entry the REST routes use too, after the same checks in the same order, so the embedded
``Memory`` behaves as the server does. An upload's file is copied into the service's blob store
first (the service consumes what it stores; the caller's file stays); a download is copied out
of the blob opened for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memsvc.operations import Call
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
        return dispatch(self.service, self.principal, call)

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
