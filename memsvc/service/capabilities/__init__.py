"""The service's capabilities, one per resource of the SDK and the REST API.

``MemoryService`` (``memsvc.service.core``) is made of them: ``service.memories``,
``service.recall``, ``service.events``, ``service.sessions``, ``service.jobs``,
``service.graph``, ``service.extraction``, ``service.kv``, ``service.scopes`` (purge,
export, import), ``service.tenants`` and ``service.webhooks``. Each takes the tenant first
and only delegates to the module that holds the logic; each gets only the collaborators it
needs.
"""

from memsvc.service.capabilities.data import Events, Memories, Recall, Sessions
from memsvc.service.capabilities.more import KV, Extraction, Graph, Jobs, Tenants, Webhooks
from memsvc.service.capabilities.scopes import Scopes

__all__ = [
    "KV",
    "Events",
    "Extraction",
    "Graph",
    "Jobs",
    "Memories",
    "Recall",
    "Scopes",
    "Sessions",
    "Tenants",
    "Webhooks",
]
