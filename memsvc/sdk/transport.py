"""How a client's calls reach a service: over HTTP, or in-process (the embedded ``Memory``).

A transport carries a :class:`~memsvc.operations.Call` (an operation of the table with its
models) and gives back the operation's response model, raising the same
:class:`~memsvc.errors.MemsvcError` classes whichever way the call went. Downloads (KV
container files) come as a local file, valid inside the ``with`` block.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path
from typing import Any

from memsvc.operations import Call

__all__ = ["AsyncTransport", "Transport"]


class Transport(ABC):
    """Carries calls for :class:`~memsvc.MemoryClient` (and the embedded ``Memory``)."""

    @abstractmethod
    def send(self, call: Call) -> Any:
        """The operation's response model (None for an operation without a body)."""

    @abstractmethod
    def download(self, call: Call) -> AbstractContextManager[Path]:
        """A local file holding the content a download operation answers."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections or the service held."""


class AsyncTransport(ABC):
    """Carries calls for :class:`~memsvc.AsyncMemoryClient`."""

    @abstractmethod
    async def send(self, call: Call) -> Any:
        """The operation's response model (None for an operation without a body)."""

    @abstractmethod
    def download(self, call: Call) -> AbstractAsyncContextManager[Path]:
        """A local file holding the content a download operation answers."""

    async def aclose(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections or the service held."""
