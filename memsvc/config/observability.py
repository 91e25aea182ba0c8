"""Settings of what an operator watches and is told: metrics, logs, traces, webhooks.

Nested parts of :class:`~memsvc.settings.Settings` (``MEMSVC_METRICS__*``, ``MEMSVC_LOG__*``,
``MEMSVC_TRACING__*``, ``MEMSVC_WEBHOOKS__*``); docs/operations.md describes each.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["LogConfig", "MetricsConfig", "TracingConfig", "WebhookConfig"]


class MetricsConfig(BaseModel):
    """``GET /metrics`` (Prometheus text) and the worker's metrics port."""

    # Record metrics and serve /metrics (off: nothing is recorded; the overhead bench's
    # baseline, ``memsvc bench search --no-metrics``).
    enabled: bool = True
    # When set, /metrics wants ``Authorization: Bearer <token>``; empty: open (bind the API to
    # a private network, or put the scrape behind the proxy). Never a tenant's key.
    token: str = ""
    # Per-tenant gauges (index size, KV bytes, quota use) label at most this many tenants, the
    # largest; the rest are summed under tenant="other" (bounded label cardinality).
    tenant_labels: int = Field(default=10, ge=0, le=1000)
    # The Celery worker serves its own metrics on this port (0: off), bound to worker_host
    # (0.0.0.0 in a container, so Prometheus can reach it).
    worker_port: int = Field(default=0, ge=0, le=65535)
    worker_host: str = "127.0.0.1"


class LogConfig(BaseModel):
    """Log lines: one JSON object per line (default), or plain text for a terminal."""

    format: Literal["json", "text"] = "json"


class TracingConfig(BaseModel):
    """OpenTelemetry spans (install ``memsvc[otel]``); nothing is imported while off."""

    enabled: bool = False
    # OTLP/HTTP endpoint of a collector; empty: spans go to whatever provider the host
    # program installed (or nowhere).
    otlp_endpoint: str = ""
    service_name: str = "memsvc"


class WebhookConfig(BaseModel):
    """Signed deliveries of change events to subscribers (docs/operations.md, "Webhooks")."""

    # Hosts a subscription's URL may name: exact host names or IP addresses, "*.example.com"
    # for subdomains, or "*" for any host. Loopback only by default: a URL is a request this
    # server makes from inside its network (SSRF); allow the receivers you mean.
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "::1"])
    # Attempts of one delivery before it is marked failed.
    max_attempts: int = Field(default=8, ge=1, le=50)
    # Backoff before attempt n+1: base * 2^(n-1), at most max, with +-20% jitter.
    backoff_base_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    # How often due deliveries are sent: the beat's task period, the embedded thread's sleep.
    poll_seconds: float = Field(default=2.0, gt=0)
    # Deliveries claimed per round (a claim hides a delivery from other senders for
    # ``claim_seconds`` while it is being sent).
    batch: int = Field(default=50, ge=1, le=1000)
    claim_seconds: float = Field(default=60.0, gt=0)
    # Subscriptions per tenant.
    max_per_tenant: int = Field(default=25, ge=1, le=1000)
