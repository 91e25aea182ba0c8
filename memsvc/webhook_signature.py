"""Signing and verifying webhook deliveries (stdlib only: receivers import just this).

Each delivery carries ``Memsvc-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the subscription's secret, over ``f"{t}.".encode() + body`` (the raw
request body, byte for byte), as Stripe does. A receiver recomputes it, compares in constant
time, and refuses a timestamp older than its tolerance (a replayed capture)::

    from memsvc.webhook_signature import verify
    verify(secret, request_body_bytes, request.headers["Memsvc-Signature"])  # raises if bad
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["HEADER", "SignatureError", "sign", "signature_header", "verify"]

HEADER = "Memsvc-Signature"


class SignatureError(ValueError):
    """The signature header is missing, malformed, wrong, or too old."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> int:
    """Check a delivery; returns its timestamp, raises :class:`SignatureError` if it is bad."""
    if not header:
        raise SignatureError(f"no {HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise SignatureError("no timestamp in the signature header") from exc
    expected = sign(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
        raise SignatureError("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(f"timestamp {timestamp} is outside the tolerance")
    return timestamp
