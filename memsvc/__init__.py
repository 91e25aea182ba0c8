"""memsvc: long-term memory for LLM applications.

``from memsvc import Memory`` runs it in-process; ``MemoryClient`` / ``AsyncMemoryClient`` talk
to a server. Every error is a :class:`~memsvc.errors.MemsvcError`.

The clients, the embedded ``Memory`` and ``Settings`` are imported on first use (PEP 562), so a
REST client loads httpx and pydantic only: no torch, faiss, SQLAlchemy or numba, which only
the server (``pip install 'memsvc[server]'``) and client-side KV work (``memsvc[kv]``) need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from memsvc.errors import (
    APIStatusError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    MemsvcError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
)

if TYPE_CHECKING:
    from memsvc.sdk import UNSET, AsyncMemoryClient, Memory, MemoryClient
    from memsvc.settings import Settings

__all__ = [
    "UNSET",
    "APIStatusError",
    "AsyncMemoryClient",
    "AuthError",
    "ConflictError",
    "InvalidRequestError",
    "Memory",
    "MemoryClient",
    "MemsvcError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "Settings",
    "TransportError",
]
__version__ = "0.1.0"

# Public names imported on first use, and the module each comes from.
_LAZY = {
    "UNSET": "memsvc.sdk",
    "AsyncMemoryClient": "memsvc.sdk",
    "Memory": "memsvc.sdk",
    "MemoryClient": "memsvc.sdk",
    "Settings": "memsvc.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memsvc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
