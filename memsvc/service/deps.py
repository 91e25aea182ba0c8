"""The collaborators every service function gets, bundled once (no globals)."""

from __future__ import annotations

import gc
import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from memsvc.embeddings import Embedder, build_embedder
from memsvc.retrieval.indexes import DerivedIndexes
from memsvc.service.activity import ForegroundActivity
from memsvc.service.availability import DEPENDENCY_ERRORS
from memsvc.service.rate_limit import RateLimiter
from memsvc.settings import Settings
from stores.blobs import BlobStore, LocalBlobStore
from stores.db import make_engine, make_sessionmaker
from stores.migrate import upgrade_database
from stores.short_term import InProcessShortTermStore, RedisShortTermStore, ShortTermStore

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from memsvc.retrieval.graph import GraphCache

__all__ = ["ServiceDeps", "build_deps"]

log = logging.getLogger(__name__)


# Index changes applied between two freezes of the collector's view (``_freeze_gc``): each
# costs one full collection, as often as a write-heavy service would run one anyway.
_REFREEZE_CHANGES = 20_000


class ServiceDeps:
    """Settings, database, embedder and derived indexes of one running service.

    The embedder and the indexes load on first use (or :meth:`warm_up`), so commands that only
    touch tenants or keys start instantly.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        sessions: sessionmaker[Session],
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self._embedder = embedder
        self._indexes: DerivedIndexes | None = None
        self._unfrozen_changes = 0
        self._short_term: ShortTermStore | None = None
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        self._jobs: ThreadPoolExecutor | None = None
        # Retrievals not yet written to SQL (memory id -> count); see flush_access.
        self._access: Counter[str] = Counter()
        self._access_lock = threading.Lock()
        self._graph_cache: GraphCache | None = None
        self._blobs: BlobStore | None = None
        self._rate_limiter: RateLimiter | None = None
        # Requests being served; background work in this process yields to them.
        self.activity = ForegroundActivity()
        self._thread_role = threading.local()
        # Set when working memory missed a write or may have lost its content (Redis away):
        # the maintenance tick refills it from the event log (working.restore_short_term).
        self.short_term_lost = threading.Event()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._load_lock:
                if self._embedder is None:
                    self._embedder = build_embedder(self.settings)
        return self._embedder

    @property
    def indexes(self) -> DerivedIndexes:
        if self._indexes is None:
            embedder = self.embedder
            with self._load_lock:
                if self._indexes is None:
                    indexes = DerivedIndexes(
                        self.sessions,
                        dim=embedder.dim,
                        embedding_model=embedder.name,
                        database=self.engine.url.render_as_string(hide_password=True),
                        directory=self.settings.index_dir,
                        snapshot_seconds=self.settings.index_snapshot_seconds,
                    )
                    indexes.open()
                    self._indexes = indexes
                    self._freeze_gc()
        return self._indexes

    def sync_indexes(self) -> int:
        """Apply the changes committed since the last sync to the derived indexes; returns
        how many. Once they have grown by ``_REFREEZE_CHANGES`` since the last freeze, what
        they grew by is frozen too (see ``_freeze_gc``)."""
        applied = self.indexes.sync()
        self._unfrozen_changes += applied
        if self._unfrozen_changes >= _REFREEZE_CHANGES:
            self._freeze_gc()
        return applied

    def _freeze_gc(self) -> None:
        """Collect, then move every object alive to the permanent generation (``gc.freeze``):
        index entries live as long as the process, and a full collection walking them all
        stalled a search for ~0.3 s. Collecting first keeps garbage cycles out of it."""
        self._unfrozen_changes = 0
        if self.settings.gc_freeze:
            gc.collect()
            gc.freeze()

    @property
    def graph_cache(self) -> GraphCache:
        """Entity graphs of the users searched lately (derived from SQL)."""
        if self._graph_cache is None:
            from memsvc.retrieval.graph import GraphCache

            self._graph_cache = GraphCache()
        return self._graph_cache

    @property
    def blobs(self) -> BlobStore:
        """Where KV containers live (a local directory unless another store was set)."""
        if self._blobs is None:
            self._blobs = LocalBlobStore(self.settings.blob_dir)
        return self._blobs

    @blobs.setter
    def blobs(self, store: BlobStore) -> None:
        self._blobs = store

    @property
    def short_term(self) -> ShortTermStore:
        """Working memory: Redis when ``MEMSVC_REDIS_URL`` is set, else in this process."""
        if self._short_term is None:
            with self._load_lock:
                if self._short_term is None:
                    url = self.settings.redis_url
                    timeout = self.settings.dependencies.redis_timeout_seconds
                    self._short_term = (
                        RedisShortTermStore(url, timeout=timeout)
                        if url
                        else InProcessShortTermStore()
                    )
        return self._short_term

    @property
    def rate_limiter(self) -> RateLimiter:
        """Per-API-key request limits (off unless a rate is set; shared through Redis)."""
        if self._rate_limiter is None:
            with self._load_lock:
                if self._rate_limiter is None:
                    settings = self.settings
                    self._rate_limiter = RateLimiter(
                        settings.rate_limit,
                        settings.redis_url,
                        settings.dependencies.redis_timeout_seconds,
                    )
        return self._rate_limiter

    def warm_up(self) -> None:
        """Load the embedder and open the indexes now rather than on the first request."""
        _ = self.indexes

    def start_background(self, tick: Callable[[], None], interval_s: float = 5.0) -> None:
        """Run ``tick`` every ``interval_s`` seconds on a daemon thread, off the request path."""
        if self._maintenance is not None:
            return

        def loop() -> None:
            self._thread_role.background = True
            while not self._stop.wait(interval_s):
                try:
                    tick()
                except DEPENDENCY_ERRORS as exc:  # an outage: one line per tick, no traceback
                    log.warning("background maintenance: a dependency is away: %s", exc)
                except Exception:  # a background loop must not die; the next tick retries
                    log.exception("background maintenance failed")

        self._maintenance = threading.Thread(target=loop, name="memsvc-maintenance", daemon=True)
        self._maintenance.start()

    @property
    def stopping(self) -> bool:
        """True once :meth:`close` began: long jobs stop between batches."""
        return self._stop.is_set()

    def run_in_background(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` on this service's job thread (one at a time, in order)."""
        with self._load_lock:
            if self._jobs is None:
                self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memsvc-job")
        future = self._jobs.submit(self._as_background, fn, *args)
        future.add_done_callback(_log_failure)
        return future

    def _as_background(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._thread_role.background = True
        return fn(*args)

    def yield_to_requests(self) -> float:
        """Called by long background work between units of work: on a background thread of a
        process that serves requests, wait until they have paused (see ForegroundActivity).
        A no-op anywhere else (a request's own thread, a Celery worker). Returns seconds waited.
        """
        if not getattr(self._thread_role, "background", False):
            return 0.0
        config = self.settings.consolidation
        return self.activity.wait_for_quiet(
            config.yield_quiet_seconds, config.yield_max_seconds, self._stop
        )

    def record_access(self, memory_ids: list[str]) -> None:
        """Count retrievals now; they reach SQL in batches (reinforcement is not urgent)."""
        with self._access_lock:
            self._access.update(memory_ids)

    def take_access(self) -> dict[str, int]:
        with self._access_lock:
            taken, self._access = dict(self._access), Counter()
        return taken

    def close(self) -> None:
        self._stop.set()
        if self._jobs is not None:
            self._jobs.shutdown(wait=True, cancel_futures=True)
        if self._maintenance is not None:
            self._maintenance.join(timeout=30)
        if self._indexes is not None:
            self._indexes.close()
        if self._short_term is not None:
            self._short_term.close()
        if self._rate_limiter is not None:
            self._rate_limiter.close()
        self.engine.dispose()


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("background job failed", exc_info=future.exception())


def build_deps(settings: Settings, *, embedder: Embedder | None = None) -> ServiceDeps:
    """Migrate the database and connect; the embedder and indexes load on first use."""
    url = settings.sqlalchemy_url
    upgrade_database(url)
    bounds = settings.dependencies
    engine = make_engine(
        url,
        connect_timeout=bounds.db_connect_timeout_seconds,
        pool_timeout=bounds.db_pool_timeout_seconds,
        statement_timeout=bounds.db_statement_timeout_seconds,
    )
    return ServiceDeps(settings, engine, make_sessionmaker(engine), embedder)
