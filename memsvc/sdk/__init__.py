"""The Python SDK: REST clients (sync and async) and the embedded ``Memory``.

``AsyncMemoryClient`` (``_async/``) is the one hand-written client; ``MemoryClient``
(``_sync/``) is generated from it, and ``Memory`` is ``MemoryClient`` over an in-process
transport. ``Memory`` is imported on first use, so importing the REST clients loads no server
code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memsvc.sdk._async.client import AsyncMemoryClient
from memsvc.sdk._async.kv import AsyncCartridgeClient, AsyncKVClient
from memsvc.sdk._base import UNSET, Unset
from memsvc.sdk._sync.client import MemoryClient
from memsvc.sdk._sync.kv import CartridgeClient, KVClient

if TYPE_CHECKING:
    from memsvc.sdk.embedded import Memory

__all__ = [
    "UNSET",
    "AsyncCartridgeClient",
    "AsyncKVClient",
    "AsyncMemoryClient",
    "CartridgeClient",
    "KVClient",
    "Memory",
    "MemoryClient",
    "Unset",
]


def __getattr__(name: str) -> Any:
    if name == "Memory":
        from memsvc.sdk.embedded import Memory

        globals()["Memory"] = Memory
        return Memory
    raise AttributeError(f"module 'memsvc.sdk' has no attribute {name!r}")
