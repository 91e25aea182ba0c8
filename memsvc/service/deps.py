"""The collaborators every service function gets, bundled once (no globals).

Passive: settings, the database, the embedder, the derived indexes, working memory, the blob
store, the graph cache, the retrieval log, the rate limiter. No threads and no loops: those
belong to :class:`~memsvc.service.runtime.BackgroundRuntime`. The embedder, the indexes and
the stores load on first use (or :meth:`ServiceDeps.warm_up`), so commands that only touch
tenants or keys start instantly.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from memsvc.embeddings import Embedder, build_embedder
from memsvc.retrieval.indexes import DerivedIndexes
from memsvc.service.collaborators import AccessLog, GcFreezer
from memsvc.service.rate_limit import RateLimiter
from memsvc.settings import Settings
from stores.blobs import BlobStore, LocalBlobStore
from stores.db import make_engine, make_sessionmaker
from stores.migrate import upgrade_database
from stores.short_term import InProcessShortTermStore, RedisShortTermStore, ShortTermStore
from stores.vector_index import Approximate

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from memsvc.retrieval.graph import GraphCache

__all__ = ["ServiceDeps", "build_blob_store", "build_deps"]


def build_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name (``MEMSVC_BLOBS__BACKEND``)."""
    config = settings.blobs
    if config.backend == "local":
        return LocalBlobStore(settings.blob_dir)
    from stores.s3_blobs import S3BlobStore

    return S3BlobStore(
        bucket=config.s3_bucket,
        prefix=config.s3_prefix,
        # Uploads are received and verified locally before they are sent.
        tmp_root=settings.blob_dir / "tmp",
        endpoint_url=config.s3_endpoint_url or None,
        region=config.s3_region,
        access_key_id=config.s3_access_key_id or None,
        secret_access_key=config.s3_secret_access_key.get_secret_value() or None,
        multipart_threshold_bytes=config.multipart_threshold_bytes,
        multipart_chunk_bytes=config.multipart_chunk_bytes,
        read_chunk_bytes=config.read_chunk_bytes,
        connect_timeout_seconds=config.connect_timeout_seconds,
        read_timeout_seconds=config.read_timeout_seconds,
        max_attempts=config.max_attempts,
        create_bucket=config.s3_create_bucket,
    )


class ServiceDeps:
    """Settings, database, embedder, derived indexes and stores of one service."""

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
        self.access = AccessLog()  # retrievals, written to SQL in batches (flush_access)
        self.gc = GcFreezer(settings.gc_freeze)
        # Set when working memory missed a write or may have lost its content (Redis away):
        # the maintenance tick refills it from the event log (working.restore_short_term).
        self.short_term_lost = threading.Event()
        self._embedder = embedder
        self._indexes: DerivedIndexes | None = None
        self._short_term: ShortTermStore | None = None
        self._graph_cache: GraphCache | None = None
        self._blobs: BlobStore | None = None
        self._rate_limiter: RateLimiter | None = None
        self._load_lock = threading.Lock()

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
                    partitions = self.settings.partitions
                    indexes = DerivedIndexes(
                        self.sessions,
                        dim=embedder.dim,
                        embedding_model=embedder.name,
                        database=self.engine.url.render_as_string(hide_password=True),
                        directory=self.settings.index_dir,
                        snapshot_seconds=self.settings.index_snapshot_seconds,
                        on_demand=partitions.on_demand,
                        memory_budget_bytes=partitions.memory_budget_bytes,
                        approximate=Approximate(
                            above=partitions.approximate_above,
                            lists_per_sqrt=partitions.ivf_lists_per_sqrt,
                            probe_fraction=partitions.ivf_probe_fraction,
                            min_probe=partitions.ivf_min_probe,
                        ),
                    )
                    indexes.open()
                    self._indexes = indexes
                    self.gc.loaded()
        return self._indexes

    @property
    def indexes_loaded(self) -> bool:
        """Whether the derived indexes are in memory (reading them would not load them)."""
        return self._indexes is not None

    def sync_indexes(self) -> int:
        """Apply the changes committed since the last sync to the derived indexes; returns
        how many (and tells the collector freezer they grew)."""
        applied = self.indexes.sync()
        self.gc.grew(applied)
        return applied

    @property
    def graph_cache(self) -> GraphCache:
        """Entity graphs of the users searched lately (derived from SQL)."""
        if self._graph_cache is None:
            from memsvc.retrieval.graph import GraphCache

            self._graph_cache = GraphCache()
        return self._graph_cache

    @property
    def blobs(self) -> BlobStore:
        """Where KV containers live: a local directory, or the S3 bucket of
        ``MEMSVC_BLOBS__*`` shared by every replica and worker."""
        if self._blobs is None:
            with self._load_lock:
                if self._blobs is None:
                    self._blobs = build_blob_store(self.settings)
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

    def close(self) -> None:
        if self._indexes is not None:
            self._indexes.close()
        if self._short_term is not None:
            self._short_term.close()
        if self._rate_limiter is not None:
            self._rate_limiter.close()
        self.engine.dispose()


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
