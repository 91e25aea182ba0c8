"""memsvc: long-term memory for LLM applications.

``from memsvc import Memory`` runs it in-process; ``MemoryClient`` / ``AsyncMemoryClient`` talk
to a server. Every error is a :class:`~memsvc.errors.MemsvcError`.
"""

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
