"""Writing extracted facts into long-term memory: merge (ADD / UPDATE / MERGE / NOOP),
invalidate (a newer slot value closes the old fact), graph (entities and relations).

Shared by the two ways facts are extracted: idle-session consolidation
(``consolidation.pipeline``, which adds episodes and decay around them) and extraction on
write (``add_events(..., infer=True)``, :mod:`memsvc.service.facts.on_write`). They live in
the service layer because both callers are at or above it: the service must not import
``consolidation``.
"""
