"""Doors for agent frameworks, as thin adapters over the SDK clients (``memsvc.sdk``).

- :mod:`memsvc.integrations.mcp`: an MCP server (``memsvc mcp`` over stdio, ``/mcp`` on the API);
  needs ``memsvc[mcp]``.
- :mod:`memsvc.integrations.langgraph`: ``MemsvcStore``, a LangGraph ``BaseStore``; needs
  ``memsvc[langgraph]``.

Each module imports its framework at import time, so importing this package imports neither.
"""
