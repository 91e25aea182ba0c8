# Generated from memsvc/sdk/_async/http.py by scripts/unasync_sdk.py: do not edit;
# change the async source and run the script.
"""The HTTP transport: each call as one request to a memsvc server, over httpx.

Written once, asynchronous, in ``memsvc/sdk/_async/``; ``memsvc/sdk/_sync/`` is generated from
it (``scripts/unasync_sdk.py``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from memsvc.errors import TransportError
from memsvc.operations import Call
from memsvc.sdk._base import json_body, query_params, read_response
from memsvc.sdk.transport import Transport

__all__ = ["HTTPTransport"]

_CHUNK = 1 << 20
_OCTET = {"Content-Type": "application/octet-stream"}


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            yield block


class HTTPTransport(Transport):
    """Calls as requests through an ``httpx.AsyncClient`` (whose base URL is the server)."""

    def __init__(self, http: httpx.Client, headers: Mapping[str, str]) -> None:
        self._http = http
        self._headers = dict(headers)

    def send(self, call: Call) -> Any:
        op = call.op
        url = op.url(**call.path)
        params = query_params(call.query)
        try:
            if call.upload is not None:
                response = self._http.request(
                    op.method,
                    url,
                    params=params,
                    content=_file_chunks(call.upload),
                    headers=self._headers | _OCTET,
                )
            else:
                response = self._http.request(
                    op.method, url, params=params, json=json_body(call.body), headers=self._headers
                )
        except httpx.TransportError as exc:
            raise TransportError(f"{op.method} {url}: {exc}", request=exc.request) from exc
        return read_response(op, response)

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
