"""The routes of every operation in :mod:`memsvc.operations`, made from the table.

Each route validates its request into the operation's models (path parameters, a query model,
a JSON body; an upload's body streamed to a file), then hands a
:class:`~memsvc.operations.Call` to :func:`memsvc.service.handlers.dispatch`, the same entry
the embedded ``Memory`` uses. One router per resource (tag), mounted under the API root.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import Parameter, Signature
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import IdempotencyDep, PrincipalDep, ServiceDep
from api.idempotency import reply_not_stored
from api.uploads import receive_container
from memsvc.operations import OPERATIONS, Call, Operation
from memsvc.service import MemoryService
from memsvc.service.handlers import authorize, check_upload, dispatch

__all__ = ["operation_routers"]

MEDIA_TYPE = "application/octet-stream"
_FILE = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {MEDIA_TYPE: _FILE}}}


def _download(op: Operation) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {op.media_type: _FILE}, "description": "The file, streamed."}}


def _parameters(op: Operation) -> list[Parameter]:
    """The endpoint's signature as FastAPI reads it: path ids, query model, body, caller."""
    kw = Parameter.KEYWORD_ONLY
    params = [Parameter(name, kw, annotation=Annotated[str, Path()]) for name in op.path_params]
    if op.query is not None:
        params.append(Parameter("query", kw, annotation=Annotated[op.query, Query()]))
    if op.body is not None and op.body_required:
        params.append(Parameter("body", kw, annotation=Annotated[op.body, Body()]))
    elif op.body is not None:  # an absent body is the model's defaults
        optional = Annotated[op.body | None, Body()]
        params.append(Parameter("body", kw, annotation=optional, default=None))
    params.append(Parameter("principal", kw, annotation=PrincipalDep))
    params.append(Parameter("service", kw, annotation=ServiceDep))
    if op.idempotency == "transaction":  # the write stores its reply with its rows
        params.append(Parameter("idempotency", kw, annotation=IdempotencyDep))
    return params


def _call(op: Operation, values: dict[str, Any]) -> Call:
    path = {name: values[name] for name in op.path_params}
    return Call(
        op,
        path=path,
        query=values.get("query"),
        body=values.get("body"),
        idempotency=values.get("idempotency"),
    )


def _json_endpoint(op: Operation) -> Callable[..., Any]:
    def endpoint(**values: Any) -> Any:  # a plain def: FastAPI runs it in the thread pool
        return dispatch(values["service"], values["principal"], _call(op, values))

    return endpoint


def _upload_endpoint(op: Operation) -> Callable[..., Any]:
    async def endpoint(request: Request, **values: Any) -> Any:
        service, principal = values["service"], values["principal"]
        call = _call(op, values)
        # Refused before a byte of the body is read: a bad key, spec or scope.
        authorize(op, principal)
        await run_in_threadpool(check_upload, call)
        call.upload, call.upload_sha256 = await receive_container(request, service)
        return await run_in_threadpool(dispatch, service, principal, call)

    return endpoint


def _download_endpoint(op: Operation) -> Callable[..., Any]:
    async def endpoint(**values: Any) -> Response:
        service: MemoryService = values["service"]
        content = await run_in_threadpool(dispatch, service, values["principal"], _call(op, values))
        # Streamed from the blob opened while its row existed (a delete meanwhile cannot cut it).
        headers = content.http_headers()
        return StreamingResponse(content.chunks(), media_type=op.media_type, headers=headers)

    return endpoint


def _endpoint(op: Operation) -> Callable[..., Any]:
    if op.upload:
        endpoint = _upload_endpoint(op)
        params = [Parameter("request", Parameter.KEYWORD_ONLY, annotation=Request)]
    else:
        endpoint = _download_endpoint(op) if op.download else _json_endpoint(op)
        params = []
    parameters = params + _parameters(op)
    # Parameters with defaults go last, as Python wants them.
    parameters.sort(key=lambda p: p.default is not Parameter.empty)
    endpoint.__signature__ = Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = op.name
    endpoint.__doc__ = op.summary
    if op.idempotency == "never":
        reply_not_stored(endpoint)
    return endpoint


# Path parameters whose values the caller chooses and may hold "/" (a session, user or agent
# id is any string of its scope): matched across segments. The clients quote every id
# (Operation.url), but the server sees the path percent-decoded, so "a/b" must still reach
# the session "a/b".
_ANY_TEXT = ("session_id", "user_id", "agent_id")


def _route_path(op: Operation) -> str:
    path = op.path.removeprefix("/v1")
    for name in _ANY_TEXT:
        path = path.replace("{" + name + "}", "{" + name + ":path}")
    return path


def operation_routers() -> list[APIRouter]:
    """One router per resource, each route made from its operation."""
    routers: dict[str, APIRouter] = {}
    for op in OPERATIONS:
        router = routers.setdefault(op.tag, APIRouter(tags=[op.tag]))
        extra: dict[str, Any] = {}
        if op.download:
            extra = {"response_class": Response, "response_model": None, "responses": _download(op)}
        elif op.response is None:
            extra = {"response_model": None}
        else:
            extra = {"response_model": op.response}
        if op.upload:
            extra["openapi_extra"] = _UPLOAD_BODY
        router.add_api_route(
            _route_path(op),
            _endpoint(op),
            methods=[op.method],
            status_code=op.status_code,
            name=op.name,
            summary=op.summary.split(".")[0][:120],
            description=op.summary,
            **extra,
        )
        # The route's name in metrics and logs: the operation's full path template.
        router.routes[-1].memsvc_template = op.path  # type: ignore[attr-defined]
    return list(routers.values())
