"""The one error the codec raises on bad public input (shapes, dtypes, NaN/Inf, bad specs)."""

from __future__ import annotations

__all__ = ["QuantError"]


class QuantError(ValueError):
    """A KV tensor, spec or packed cache the codec refuses; the message names the problem."""
