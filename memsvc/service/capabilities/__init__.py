"""The service's capabilities, one per resource of the SDK and the REST API.

``MemoryService`` (``memsvc.service.core``) is made of them: ``service.memories``,
``service.recall``, ``service.events``, ``service.sessions``, ``service.jobs``,
``service.graph``, ``service.kv``, ``service.tenants`` and ``service.webhooks``. Each takes
the tenant first and only delegates to the module that holds the logic; each gets only the
collaborators it needs.
"""

from memsvc.service.capabilities.data import Events, Memories, Recall, Sessions
from memsvc.service.capabilities.more import KV, Graph, Jobs, Tenants, Webhooks

__all__ = ["KV", "Events", "Graph", "Jobs", "Memories", "Recall", "Sessions", "Tenants", "Webhooks"]
