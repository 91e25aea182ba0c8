"""How a memory reads in a prompt: one line, dated. Shared by context assembly and benchmarks."""

from __future__ import annotations

from datetime import datetime

from memsvc.schemas import MemoryPublic, SearchResult

__all__ = ["format_day", "memory_line", "result_line"]


def format_day(value: datetime | None) -> str:
    """``8 May 2023``: unambiguous for a reader (and an LLM), no leading zero."""
    if value is None:
        return "undated"
    return f"{value.day} {value.strftime('%B %Y')}"


def memory_line(memory: MemoryPublic) -> str:
    """``[8 May 2023] Caroline: I went to a support group yesterday``."""
    return f"[{format_day(memory.occurred_at)}] {memory.text}"


def result_line(result: SearchResult) -> str:
    """A search result as it goes into a prompt: dated, its snippet when it has one, and its
    exchange around it in conversation order (``question / result / answer``)."""
    before = [t.snippet or t.text for t in result.context if t.side == "before"]
    after = [t.snippet or t.text for t in result.context if t.side == "after"]
    parts = [*before, result.snippet or result.memory.text, *after]
    return f"[{format_day(result.memory.occurred_at)}] " + " / ".join(parts)
