"""A mem0-compatible API under ``/mem0``: mem0ai's ``MemoryClient`` runs against memsvc.

A thin adapter: each mem0 call is translated into calls of memsvc's operations table
(:mod:`memsvc.operations`) answered by the same handlers as ``/v1``; nothing is stored twice.
"""

from api.mem0.routes import router

__all__ = ["router"]
