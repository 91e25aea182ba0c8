"""The consolidation pipeline: promote, then extract → merge → invalidate → episodes → graph
per batch of events (one transaction each, watermark included), then the sentence vectors of
long messages, then decay.

Idempotent by construction: a batch commits together with the move of the session's watermark
(a compare-and-set), so a crashed run leaves either nothing or a whole batch, a re-run starts
after the last committed batch, and two runs at once cannot both commit the same batch.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import redis

from consolidation.steps.decay import decay_memories
from consolidation.steps.episodes import draft_episodes, write_episodes
from consolidation.steps.extract import Batch, extract, guide_of, load_batch
from consolidation.steps.sentences import embed_sentences
from memsvc.extraction import ExtractionUnavailable, Extractor, build_extractor
from memsvc.graph import read_graph
from memsvc.observability import metrics
from memsvc.service.deps import ServiceDeps
from memsvc.service.facts.graph import link_graph
from memsvc.service.facts.invalidate import invalidate_contradicted
from memsvc.service.facts.merge import merge_candidates
from memsvc.service.jobs import flush_access, new_job_row, update_job
from memsvc.service.runtime import UNPACED, Pace
from memsvc.service.working import promote_session
from memsvc.vocabulary import JobState
from stores import events as event_store
from stores import jobs as job_store
from stores import memories as memory_store
from stores.errors import OperationalError
from stores.models import utcnow

__all__ = ["TRANSIENT", "consolidate_session", "run_job", "scan"]

log = logging.getLogger(__name__)

ACTOR = "system:consolidation"
# Errors worth a retry with backoff: the database or Redis went away for a moment, or the LLM
# endpoint failed (5xx) or timed out on every attempt. A 4xx from the endpoint
# (ExtractionRejected) is not here: it fails the job at once, with the endpoint's message.
TRANSIENT: tuple[type[Exception], ...] = (
    OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ExtractionUnavailable,
)

Progress = Callable[[str, Counter[str]], None]


class _Lost(Exception):
    """Another run committed this batch first: roll back and read the next one."""


def _commit_batch(
    deps: ServiceDeps, batch: Batch, extractor: Extractor, counts: Counter[str]
) -> None:
    candidates = extract(extractor, batch, guide_of(deps, batch))
    graphs = [read_graph(c) for c in candidates]
    drafts = draft_episodes(deps, batch, candidates)
    texts = [c.text for c in candidates] + [d.text for d in drafts]
    vectors = deps.embedder.embed(texts) if texts else np.zeros((0, deps.embedder.dim), np.float32)
    facts, episodes = vectors[: len(candidates)], vectors[len(candidates) :]
    scope = {
        "tenant_id": batch.tenant_id,
        "user_id": batch.user_id,
        "agent_id": batch.agent_id,
        "session_id": batch.session_id,
    }
    with deps.sessions.begin() as session:
        # The counter lock first: it serialises consolidation writers on both databases.
        memory_store.reserve_revs(1, session=session)
        moved = event_store.advance_extracted(
            batch.tenant_id,
            batch.session_id,
            expected=batch.watermark,
            upto=batch.upto,
            kept=len(batch.kept),
            session=session,
        )
        if not moved:
            raise _Lost
        outcomes = merge_candidates(session, deps, scope, candidates, graphs, facts, actor=ACTOR)
        invalidated = invalidate_contradicted(session, outcomes, actor=ACTOR)
        episode_rows = write_episodes(session, deps, scope, drafts, episodes, outcomes, actor=ACTOR)
        graph_counts = link_graph(session, scope, outcomes, episode_rows)
    counts.update(events=len(batch.events), candidates=len(candidates))
    counts.update(o.op.lower() for o in outcomes)
    counts.update(invalidated=invalidated, episodes=len(episode_rows), **graph_counts)


def consolidate_session(
    deps: ServiceDeps,
    tenant_id: str,
    session_id: str,
    *,
    extractor: Extractor | None = None,
    progress: Progress | None = None,
    promote: bool = True,
    pace: Pace = UNPACED,
) -> Counter[str]:
    """Bring one session's long-term memory up to date with its event log.

    ``promote`` first moves all of its working memory to long-term memory (idle, closed,
    requested); an overflow job leaves working memory as it is (the overflow was promoted).
    """
    counts: Counter[str] = Counter()
    report = progress or (lambda step, c: None)
    if promote:
        report("promote", counts)
        counts["promoted"] += promote_session(deps, tenant_id, session_id)
    owned = extractor is None
    extractor = extractor or build_extractor(deps.settings)
    limit = deps.settings.consolidation.batch_events
    report("extract", counts)
    try:
        while not pace.stopping:
            pace.yield_to_requests()  # embedded: sleep-time work goes between requests
            batch = load_batch(deps, tenant_id, session_id, limit=limit)
            if batch is None:
                break
            try:
                _commit_batch(deps, batch, extractor, counts)
            except _Lost:
                counts["lost_races"] += 1
                continue
            report("extract", counts)
    finally:
        if owned:
            extractor.close()
    report("sentences", counts)
    counts["sentences_embedded"] += embed_sentences(
        deps, tenant_id, session_id, on_batch=lambda n: report("sentences", counts), pace=pace
    )
    return counts


def _update(deps: ServiceDeps, job_id: str, **values: Any) -> None:
    update_job(deps, job_id, **values)


def _sessions_of(deps: ServiceDeps, tenant_id: str, scope: dict[str, Any]) -> list[str]:
    with deps.sessions() as session:
        rows = event_store.sessions_in_scope(
            tenant_id,
            user_id=scope.get("user_id"),
            agent_id=scope.get("agent_id"),
            session_id=scope.get("session_id"),
            session=session,
        )
    return [r.id for r in rows]


def run_job(
    deps: ServiceDeps, job_id: str, *, extractor: Extractor | None = None, pace: Pace = UNPACED
) -> str:
    """Run a job to the end; returns its final state. Transient errors are recorded on the job
    and re-raised (the caller retries); any other error fails the job."""
    with deps.sessions() as session:
        job = job_store.get_job(job_id, session=session)
    if job is None:
        log.warning("job %s does not exist (another database?); dropped", job_id)
        return "missing"
    if JobState(job.state).finished:
        return job.state  # a redelivered message after the job finished
    _update(deps, job_id, state=JobState.RUNNING, attempts=job.attempts + 1, started_at=utcnow())
    log.info("job %s started (%s, %s)", job_id, job.kind, job.trigger, extra={"job_id": job_id})
    counts: Counter[str] = Counter()
    step = "start"
    started = step_started = time.perf_counter()
    done: list[str] = []

    def progress(name: str, session_counts: Counter[str]) -> None:
        nonlocal step, step_started
        if name != step:  # a step ended: its wall time
            now = time.perf_counter()
            if step != "start":
                metrics.CONSOLIDATION_STEP_SECONDS.labels(step).observe(now - step_started)
            step, step_started = name, now
        _update(deps, job_id, step=name, counts=dict(counts + session_counts))

    def finished(outcome: str) -> None:
        now = time.perf_counter()
        if step != "start":
            metrics.CONSOLIDATION_STEP_SECONDS.labels(step).observe(now - step_started)
        metrics.CONSOLIDATION_JOBS.labels(job.kind, outcome).inc()
        metrics.CONSOLIDATION_JOB_SECONDS.labels(job.kind, outcome).observe(now - started)
        log.info("job %s %s", job_id, outcome, extra={"job_id": job_id, "outcome": outcome})

    try:
        for session_id in _sessions_of(deps, job.tenant_id, job.scope or {}):
            counts += consolidate_session(
                deps,
                job.tenant_id,
                session_id,
                extractor=extractor,
                pace=pace,
                progress=progress,
                promote=job.trigger != "overflow",
            )
            done.append(session_id)
        if job.trigger == "request" and "session_id" not in (job.scope or {}):
            # A user's or tenant's consolidation also runs the forgetting curve over it.
            progress("decay", Counter())
            flush_access(deps)
            counts.update(
                decay_memories(
                    deps, tenant_id=job.tenant_id, user_id=(job.scope or {}).get("user_id")
                )
            )
    except TRANSIENT as exc:
        _record_error(deps, job_id, job.errors, step, exc, state=JobState.QUEUED)
        finished("retry")
        raise
    except Exception as exc:  # task boundary: record the failure on the job, never lose it
        log.exception("job %s failed in step %s", job_id, step)
        _record_error(deps, job_id, job.errors, step, exc, state=JobState.FAILED)
        finished(JobState.FAILED)
        return JobState.FAILED
    _update(
        deps,
        job_id,
        state=JobState.SUCCEEDED,
        step="done",
        counts=dict(counts),
        finished_at=utcnow(),
        sessions_done=done,
    )
    finished(JobState.SUCCEEDED)
    return JobState.SUCCEEDED


def _record_error(
    deps: ServiceDeps,
    job_id: str,
    errors: list[Any],
    step: str,
    exc: Exception,
    *,
    state: JobState,
) -> None:
    with deps.sessions() as session:
        current = job_store.get_job(job_id, session=session)
        errors = list(current.errors if current else errors or [])
    errors.append(
        {"at": utcnow().isoformat(), "step": step, "error": f"{type(exc).__name__}: {exc}"[:500]}
    )
    values: dict[str, Any] = {"state": state, "errors": errors[-20:]}
    if state == JobState.FAILED:
        values["finished_at"] = utcnow()
    _update(deps, job_id, **values)


def scan(deps: ServiceDeps, *, limit: int = 500) -> list[str]:
    """Jobs to dispatch now: new ones for idle sessions with a backlog, and stale ones."""
    config = deps.settings.consolidation
    now = utcnow()
    idle_cutoff = now - timedelta(seconds=deps.settings.session_idle_seconds)
    job_ids: list[str] = []
    with deps.sessions.begin() as session:
        for row in event_store.sessions_to_consolidate(idle_cutoff, limit=limit, session=session):
            waiting = job_store.active_job_for_session(
                row.tenant_id, row.id, states=job_store.ACTIVE_STATES, session=session
            )
            if waiting is None:
                job = new_job_row(row.tenant_id, "idle", {"session_id": row.id})
                job_store.add_job(job, session=session)
                job_ids.append(job.id)
        stale_cutoff = now - timedelta(seconds=config.stale_job_seconds)
        for job in job_store.jobs_stale_since(stale_cutoff, limit=limit, session=session):
            job.updated_at = now  # dispatched again now; not again until stale once more
            job_ids.append(job.id)
    return job_ids
