"""Request bodies streamed to a temporary file, hashed while written (never held in RAM)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from memsvc.errors import InvalidRequestError
from memsvc.service import MemoryService

__all__ = ["json_object_param", "receive_container"]


async def receive_container(request: Request, service: MemoryService) -> tuple[Path, str]:
    """The body in a fresh file of the blob store's temp directory, and its sha256. Refuses
    multipart forms, empty bodies and bodies over ``MEMSVC_KV__MAX_UPLOAD_BYTES`` (413)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/", "application/json", "application/x-www-form")):
        raise InvalidRequestError(
            f"content-type {content_type.split(';')[0]!r}: send the container file itself as "
            "the body (application/octet-stream)",
            field="content",
            status_code=415,
        )
    limit = service.settings.kv.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequestError(
            f"the body is {declared} bytes; the limit is {limit}", field="content", status_code=413
        )
    path = await run_in_threadpool(service.deps.blobs.new_tmp_file)
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise InvalidRequestError(
                        f"the body exceeds the limit of {limit} bytes",
                        field="content",
                        status_code=413,
                    )
                digest.update(chunk)
                f.write(chunk)
        if size == 0:
            raise InvalidRequestError("empty body: send the container file", field="content")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest()


def json_object_param(value: str | None, field: str) -> dict[str, Any] | None:
    """A query parameter holding a JSON object (e.g. ``metadata``)."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise InvalidRequestError(f"{field}: not JSON: {exc}", field=field) from exc
    if not isinstance(parsed, dict):
        raise InvalidRequestError(f"{field} must be a JSON object", field=field)
    return parsed
