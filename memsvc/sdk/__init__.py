"""The Python SDK: REST clients (sync and async) and the embedded ``Memory``.

``Memory`` runs the whole service in-process and is imported on first use, so importing the
REST clients loads no server code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memsvc.sdk._base import UNSET, Unset
from memsvc.sdk.client import AsyncMemoryClient, MemoryClient

if TYPE_CHECKING:
    from memsvc.sdk.embedded import Memory

__all__ = ["UNSET", "AsyncMemoryClient", "Memory", "MemoryClient", "Unset"]


def __getattr__(name: str) -> Any:
    if name == "Memory":
        from memsvc.sdk.embedded import Memory

        globals()["Memory"] = Memory
        return Memory
    raise AttributeError(f"module 'memsvc.sdk' has no attribute {name!r}")
