"""The service's answer to each operation of :mod:`memsvc.operations`.

:func:`dispatch` is the one entry both doors use: the FastAPI routes (after FastAPI validated
the request into the operation's models) and the SDK's in-process transport (the embedded
``Memory``). A handler takes the service, the caller and the :class:`~memsvc.operations.Call`,
and returns the operation's response model (or, for a download, the content to stream).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memsvc.errors import InvalidRequestError, PermissionDeniedError
from memsvc.operations import OPERATIONS, Call, Operation
from memsvc.schemas import DeleteResult, ListEnvelope, MemoryBatch
from memsvc.schemas.params import MemoryScopeParams
from memsvc.schemas.tenants import ApiKeyRotate, ApiKeyRotated
from memsvc.schemas.transfer import ExportRequest, ImportResult
from memsvc.service import MemoryService, Principal

__all__ = ["HANDLERS", "authorize", "check_upload", "dispatch"]

Handler = Callable[[MemoryService, Principal, Call], Any]
HANDLERS: dict[str, Handler] = {}


def _handles(op_id: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[op_id] = handler
        return handler

    return register


def authorize(op: Operation, principal: Principal) -> None:
    """Refuse a principal the operation is not for (the admin key has no tenant data)."""
    if op.auth == "tenant" and principal.tenant_id is None:
        raise PermissionDeniedError("the admin key manages tenants; use a tenant's key for data")
    if op.auth == "admin" and not principal.is_admin:
        raise PermissionDeniedError("this route needs the admin key")


def dispatch(service: MemoryService, principal: Principal, call: Call) -> Any:
    """Authorize the caller, then answer the call."""
    authorize(call.op, principal)
    return HANDLERS[call.op.id](service, principal, call)


def _listed(items: list[Any]) -> ListEnvelope[Any]:
    return ListEnvelope(data=items, count=len(items))


# -- long-term memories ---------------------------------------------------------------------


@_handles("memories-add")
def _add(svc: MemoryService, p: Principal, c: Call) -> Any:
    single = not isinstance(c.body, MemoryBatch)
    items = [c.body] if single else c.body.items
    written = svc.memories.add(
        p.tenant_id, items, actor=p.actor, single=single, idempotency=c.idempotency
    )
    return _listed(written)


@_handles("memories-list_memories")
def _list_memories(svc: MemoryService, p: Principal, c: Call) -> Any:
    q = c.query
    return svc.memories.list(
        p.tenant_id, q.to_filter(), limit=q.limit, cursor=q.cursor, order=q.order
    )


@_handles("memories-delete_by_scope")
def _delete_by_scope(svc: MemoryService, p: Principal, c: Call) -> Any:
    query: MemoryScopeParams = c.query
    return DeleteResult(
        deleted=svc.memories.delete_all(p.tenant_id, query.to_filter(), actor=p.actor)
    )


@_handles("memories-get")
def _get(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.memories.get(p.tenant_id, c.path["memory_id"])


@_handles("memories-update")
def _update(svc: MemoryService, p: Principal, c: Call) -> Any:
    changes = c.body.model_dump(exclude_unset=True)
    return svc.memories.update(p.tenant_id, c.path["memory_id"], changes, actor=p.actor)


@_handles("memories-delete")
def _delete(svc: MemoryService, p: Principal, c: Call) -> Any:
    svc.memories.delete(p.tenant_id, c.path["memory_id"], actor=p.actor)
    return DeleteResult(deleted=1)


@_handles("memories-history")
def _history(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _listed(svc.memories.history(p.tenant_id, c.path["memory_id"]))


@_handles("memories-restore")
def _restore(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.memories.restore(p.tenant_id, c.path["memory_id"], actor=p.actor)


# -- recall, events, sessions ---------------------------------------------------------------


@_handles("search-search")
def _search(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.recall.search(p.tenant_id, c.body)


@_handles("context-context")
def _context(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.recall.context(p.tenant_id, c.body)


@_handles("events-add_events")
def _add_events(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.events.write(p.tenant_id, c.body, actor=p.actor, idempotency=c.idempotency)


@_handles("extraction-get_extraction_config")
def _get_extraction_config(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.extraction.get_config(p.tenant_id, c.query)


@_handles("extraction-put_extraction_config")
def _put_extraction_config(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.extraction.put_config(p.tenant_id, c.body, actor=p.actor)


@_handles("extraction-list_extraction_config_versions")
def _list_extraction_config_versions(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _listed(svc.extraction.list_versions(p.tenant_id, c.query))


@_handles("events-list_events")
def _list_events(svc: MemoryService, p: Principal, c: Call) -> Any:
    q = c.query
    return svc.events.list(p.tenant_id, q.to_filter(), limit=q.limit, cursor=q.cursor)


@_handles("sessions-list_sessions")
def _list_sessions(svc: MemoryService, p: Principal, c: Call) -> Any:
    q = c.query
    return svc.sessions.list(p.tenant_id, user_id=q.user_id, limit=q.limit, cursor=q.cursor)


@_handles("sessions-get_session")
def _get_session(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.sessions.get(p.tenant_id, c.path["session_id"])


@_handles("sessions-close_session")
def _close_session(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.sessions.close(p.tenant_id, c.path["session_id"])


# -- consolidation and the graph ------------------------------------------------------------


@_handles("jobs-consolidate")
def _consolidate(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.jobs.consolidate(p.tenant_id, c.body)


@_handles("jobs-get_job")
def _get_job(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.jobs.get(p.tenant_id, c.path["job_id"])


@_handles("graph-list_entities")
def _list_entities(svc: MemoryService, p: Principal, c: Call) -> Any:
    q = c.query
    return svc.graph.list_entities(
        p.tenant_id, user_id=q.user_id, type_=q.type, name=q.name, limit=q.limit, cursor=q.cursor
    )


@_handles("graph-get_entity")
def _get_entity(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.graph.get_entity(p.tenant_id, c.path["entity_id"])


@_handles("graph-list_relations")
def _list_relations(svc: MemoryService, p: Principal, c: Call) -> Any:
    q = c.query
    return svc.graph.list_relations(
        p.tenant_id,
        user_id=q.user_id,
        entity_id=q.entity_id,
        type_=q.type,
        as_of=q.as_of,
        limit=q.limit,
        cursor=q.cursor,
    )


# -- KV memory ------------------------------------------------------------------------------


@_handles("cartridges-train_cartridge")
def _train_cartridge(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.jobs.train_cartridge(p.tenant_id, c.body)


def check_upload(call: Call) -> None:
    """What an upload can be refused for before its body is received (the spec)."""
    if call.op.id == "exports-import_archive":  # an archive: checked once received
        return
    from memsvc.service.kv import resolve_spec  # torch: imported on first use

    resolve_spec(call.query.spec)


def _store_upload(svc: MemoryService, p: Principal, c: Call, **where: Any) -> Any:
    """Store the uploaded container file (consumed: moved into the blob store or removed)."""
    from memsvc.service.kv import resolve_spec  # torch: imported on first use

    q = c.query
    if c.upload is None:
        raise TypeError(f"{c.op.id} takes a container file")
    try:
        spec = resolve_spec(q.spec)
    except BaseException:
        c.upload.unlink(missing_ok=True)
        raise
    return svc.kv.store_file(
        p.tenant_id, c.upload, spec=spec, metadata=q.metadata, digest=c.upload_sha256, **where
    )


@_handles("cartridges-push_cartridge")
def _push_cartridge(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _store_upload(svc, p, c, kind="cartridge", name=c.query.name)


@_handles("kv-put_session_kv")
def _put_session_kv(svc: MemoryService, p: Principal, c: Call) -> Any:
    where = {"session_id": c.path["session_id"], "episode_id": c.query.episode_id}
    return _store_upload(svc, p, c, kind="episodic", **where)


@_handles("cartridges-list_cartridges")
def _list_cartridges(svc: MemoryService, p: Principal, c: Call) -> Any:
    q = c.query
    return svc.kv.list(
        p.tenant_id,
        kind="cartridge",
        model_id=q.model_id,
        name=q.name,
        limit=q.limit,
        cursor=q.cursor,
    )


@_handles("cartridges-compose_cartridges")
def _compose_cartridges(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.kv.compose(p.tenant_id, c.body)


@_handles("cartridges-get_cartridge")
def _get_cartridge(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.kv.get(p.tenant_id, c.path["cartridge_id"], kind="cartridge")


@_handles("cartridges-get_cartridge_content")
def _get_cartridge_content(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.kv.open_content(p.tenant_id, c.path["cartridge_id"], kind="cartridge")


@_handles("cartridges-delete_cartridge")
def _delete_cartridge(svc: MemoryService, p: Principal, c: Call) -> Any:
    svc.kv.delete(p.tenant_id, c.path["cartridge_id"], kind="cartridge")


@_handles("kv-lookup_kv")
def _lookup_kv(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.kv.lookup(p.tenant_id, c.body)


@_handles("kv-list_kv")
def _list_kv(svc: MemoryService, p: Principal, c: Call) -> Any:
    q = c.query
    return svc.kv.list(
        p.tenant_id,
        kind=q.kind,
        model_id=q.model_id,
        session_id=q.session_id,
        limit=q.limit,
        cursor=q.cursor,
    )


@_handles("kv-get_kv")
def _get_kv(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.kv.get(p.tenant_id, c.path["kv_id"])


@_handles("kv-get_kv_content")
def _get_kv_content(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.kv.open_content(p.tenant_id, c.path["kv_id"])


@_handles("kv-delete_kv")
def _delete_kv(svc: MemoryService, p: Principal, c: Call) -> Any:
    svc.kv.delete(p.tenant_id, c.path["kv_id"])


# -- erasure -------------------------------------------------------------------------------


def _purge(svc: MemoryService, p: Principal, c: Call, kind: str, param: str) -> Any:
    if not c.query.purge:
        raise InvalidRequestError(
            f"DELETE of a {kind} erases everything it left and needs purge=true; to delete "
            f"only its memories (tombstones), use DELETE /v1/memories?{kind}_id=...",
            field="purge",
        )
    return svc.scopes.purge(p.tenant_id, kind, c.path[param], actor=p.actor)


@_handles("users-purge_user")
def _purge_user(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _purge(svc, p, c, "user", "user_id")


@_handles("agents-purge_agent")
def _purge_agent(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _purge(svc, p, c, "agent", "agent_id")


@_handles("sessions-purge_session")
def _purge_session(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _purge(svc, p, c, "session", "session_id")


@_handles("exports-create_export")
def _create_export(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.scopes.request_export(p.tenant_id, c.body or ExportRequest())


@_handles("exports-get_export")
def _get_export(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.scopes.get_export(p.tenant_id, c.path["export_id"])


@_handles("exports-get_export_content")
def _get_export_content(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.scopes.open_export(p.tenant_id, c.path["export_id"])


@_handles("exports-import_archive")
def _import_archive(svc: MemoryService, p: Principal, c: Call) -> Any:
    if c.upload is None:
        raise TypeError(f"{c.op.id} takes an archive file")
    try:
        report = svc.scopes.import_(p.tenant_id, c.upload)
    finally:
        c.upload.unlink(missing_ok=True)  # consumed, as uploads are
    return ImportResult(**report.as_dict())


# -- tenants and keys -----------------------------------------------------------------------


@_handles("admin-create_tenant")
def _create_tenant(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.tenants.create(c.body.name, c.body.id)


@_handles("admin-list_tenants")
def _list_tenants(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _listed(svc.tenants.list())


@_handles("admin-create_key")
def _create_key(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.tenants.create_key(c.path["tenant_id"], c.body.name)


@_handles("admin-list_keys")
def _list_keys(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _listed(svc.tenants.list_keys(c.path["tenant_id"]))


@_handles("admin-get_kv_limits")
def _get_kv_limits(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.kv.get_limits(c.path["tenant_id"])


@_handles("admin-set_kv_limits")
def _set_kv_limits(svc: MemoryService, p: Principal, c: Call) -> Any:
    limits = c.body
    return svc.kv.set_limits(
        c.path["tenant_id"], quota_bytes=limits.quota_bytes, retention_bytes=limits.retention_bytes
    )


@_handles("admin-revoke_key")
def _revoke_key(svc: MemoryService, p: Principal, c: Call) -> Any:
    grace = c.body.grace_seconds if c.body is not None else 0.0
    return svc.tenants.revoke_key(c.path["tenant_id"], c.path["key_id"], grace_seconds=grace)


@_handles("admin-rotate_key")
def _rotate_key(svc: MemoryService, p: Principal, c: Call) -> Any:
    body = c.body or ApiKeyRotate()
    new, old = svc.tenants.rotate_key(
        c.path["tenant_id"], c.path["key_id"], grace_seconds=body.grace_seconds, name=body.name
    )
    return ApiKeyRotated(key=new, revoked=old)


# -- webhooks -------------------------------------------------------------------------------


@_handles("webhooks-create_webhook")
def _create_webhook(svc: MemoryService, p: Principal, c: Call) -> Any:
    return svc.webhooks.create(p.tenant_id, c.body)


@_handles("webhooks-list_webhooks")
def _list_webhooks(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _listed(svc.webhooks.list(p.tenant_id))


@_handles("webhooks-delete_webhook")
def _delete_webhook(svc: MemoryService, p: Principal, c: Call) -> Any:
    svc.webhooks.delete(p.tenant_id, c.path["webhook_id"])


@_handles("webhooks-list_deliveries")
def _list_deliveries(svc: MemoryService, p: Principal, c: Call) -> Any:
    return _listed(svc.webhooks.deliveries(p.tenant_id, c.path["webhook_id"], c.query))


_missing = {op.id for op in OPERATIONS} - set(HANDLERS)
if _missing:  # a new operation needs its handler before anything can serve it
    raise RuntimeError(f"operations without a handler: {sorted(_missing)}")
