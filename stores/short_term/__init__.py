"""Short-term (working) memory stores: one interface, in-process and Redis backends."""

from stores.short_term.base import Piece, ShortTermStore
from stores.short_term.in_process import InProcessShortTermStore
from stores.short_term.redis_store import RedisShortTermStore

__all__ = ["InProcessShortTermStore", "Piece", "RedisShortTermStore", "ShortTermStore"]
