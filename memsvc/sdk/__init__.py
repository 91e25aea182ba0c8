"""The Python SDK: REST clients (sync and async) and the embedded ``Memory``."""

from memsvc.sdk._base import UNSET, Unset
from memsvc.sdk.client import AsyncMemoryClient, MemoryClient
from memsvc.sdk.embedded import Memory

__all__ = ["UNSET", "AsyncMemoryClient", "Memory", "MemoryClient", "Unset"]
