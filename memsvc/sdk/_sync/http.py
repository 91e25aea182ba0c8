# Generated from memsvc/sdk/_async/http.py by scripts/unasync_sdk.py: do not edit;
# change the async source and run the script.
"""The HTTP transport: each call as one request to a memsvc server, over httpx.

Written once, asynchronous, in ``memsvc/sdk/_async/``; ``memsvc/sdk/_sync/`` is generated from
it (``scripts/unasync_sdk.py``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from memsvc.errors import TransportError
from memsvc.operations import Call
from memsvc.sdk._base import (
    IDEMPOTENCY_HEADER,
    RetryPolicy,
    json_body,
    new_idempotency_key,
    query_params,
    read_response,
)
from memsvc.sdk.transport import Transport

__all__ = ["HTTPTransport"]

_CHUNK = 1 << 20
_OCTET = {"Content-Type": "application/octet-stream"}


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            yield block


def _payload(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


class HTTPTransport(Transport):
    """Calls as requests through an ``httpx.AsyncClient`` (whose base URL is the server).

    A call is sent again after a transport error, a 429 or 503 (after its ``Retry-After``) or
    while its first attempt still runs (409 ``idempotency_in_progress``), as ``retry`` says:
    every write carries one ``Idempotency-Key`` on each attempt, so a retried write is done
    once (the caller's key, or a fresh one per call).
    """

    def __init__(self, http: httpx.Client, headers: Mapping[str, str], retry: RetryPolicy) -> None:
        self._http = http
        self._headers = dict(headers)
        self._retry = retry

    def _headers_of(self, call: Call) -> dict[str, str]:
        op = call.op
        if not op.writes or op.idempotency == "never":
            return self._headers
        key = call.idempotency_key or new_idempotency_key()
        return self._headers | {IDEMPOTENCY_HEADER: key}

    def _attempt(self, call: Call, headers: dict[str, str]) -> httpx.Response:
        op = call.op
        url, params = op.url(**call.path), query_params(call.query)
        if call.upload is not None:  # the file is read anew on each attempt
            content = _file_chunks(call.upload)
            return self._http.request(
                op.method, url, params=params, content=content, headers=headers | _OCTET
            )
        body = json_body(call.body)
        return self._http.request(op.method, url, params=params, json=body, headers=headers)

    def send(self, call: Call) -> Any:
        headers = self._headers_of(call)  # the same idempotency key on every attempt
        attempt = 0
        while True:
            try:
                response = self._attempt(call, headers)
            except httpx.TransportError as exc:
                wait = self._retry.after_transport_error(attempt)
                if wait is None:
                    where = f"{call.op.method} {call.op.url(**call.path)}"
                    raise TransportError(f"{where}: {exc}", request=exc.request) from exc
            else:
                retry_after = response.headers.get("retry-after")
                wait = self._retry.after_response(
                    attempt, response.status_code, retry_after, _payload(response)
                )
                if wait is None:
                    return read_response(call.op, response)
            attempt += 1
            time.sleep(wait)

    @contextmanager
    def download(self, call: Call) -> Iterator[Path]:
        op = call.op
        url = op.url(**call.path)
        fd, name = tempfile.mkstemp(prefix="memsvc-kv-", suffix=".safetensors")
        os.close(fd)
        dest = Path(name)
        try:
            try:
                with self._http.stream(op.method, url, headers=self._headers) as response:
                    if response.is_error:
                        response.read()
                        read_response(op, response)  # raises the error it stands for
                    with dest.open("wb") as f:
                        for chunk in response.iter_bytes(_CHUNK):
                            f.write(chunk)
            except httpx.TransportError as exc:
                raise TransportError(f"{op.method} {url}: {exc}", request=exc.request) from exc
            yield dest
        finally:
            dest.unlink(missing_ok=True)

    def close(self) -> None:
        self._http.close()
