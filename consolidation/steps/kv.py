"""Step *kv*: episodic KV caches age — re-encoded at fewer bits once unused for a while, and
dropped past the tenant's retention budget, least used and longest unused first.

Runs with the decay pass (the beat's ``memsvc.decay`` in the stack, the maintenance tick when
embedded). The rules are in ``memsvc.lifecycle.kv``, the storage work in
``memsvc.service.kv_lifecycle``; trained cartridges are never touched.
"""

from __future__ import annotations

import logging
from datetime import datetime

from memsvc.service.deps import ServiceDeps

__all__ = ["consolidate_kv_caches"]

log = logging.getLogger(__name__)


def consolidate_kv_caches(
    deps: ServiceDeps, *, tenant_id: str | None = None, now: datetime | None = None
) -> dict[str, int]:
    """One pass over the episodic caches (every tenant, or one); idempotent."""
    from memsvc.service.kv_lifecycle import consolidate_kv  # torch: only when the step runs

    counts = consolidate_kv(deps, tenant_id=tenant_id, now=now)
    if any(counts.values()):
        log.info("kv consolidation: %s", counts)
    return counts
