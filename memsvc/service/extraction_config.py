"""Per-project extraction configuration: instructions and categories, versioned per scope.

A tenant stores one configuration for everyone and may narrow it to a user, an agent, or
both; each change appends a version (old ones stay listed). Extraction uses the newest
version of the most specific scope that has one: (user, agent), then user, then agent, then
the tenant's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memsvc.errors import ConflictError, InvalidRequestError
from memsvc.extraction import NO_GUIDE, Category, Guide
from memsvc.schemas.extraction import (
    CategorySpec,
    ExtractionConfigPublic,
    ExtractionConfigUpdate,
    ExtractionScopeParams,
)
from memsvc.service.deps import ServiceDeps
from stores import extraction as store
from stores.errors import IntegrityError
from stores.models import ExtractionConfigRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["config_versions", "current_config", "guide_for", "put_config"]


def _key(user_id: str | None, agent_id: str | None) -> tuple[str, str]:
    return user_id or "", agent_id or ""


def _fallbacks(user_id: str | None, agent_id: str | None) -> list[tuple[str, str]]:
    """The scopes whose configuration applies, most specific first."""
    user, agent = _key(user_id, agent_id)
    return list(dict.fromkeys([(user, agent), (user, ""), ("", agent), ("", "")]))


def _public(row: ExtractionConfigRow) -> ExtractionConfigPublic:
    return ExtractionConfigPublic(
        user_id=row.user_id or None,
        agent_id=row.agent_id or None,
        version=row.version,
        instructions=row.instructions,
        categories=[CategorySpec.model_validate(c) for c in row.categories or []],
        actor=row.actor or None,
        created_at=row.created_at,
    )


def _effective(
    session: Session, tenant_id: str, user_id: str | None, agent_id: str | None
) -> ExtractionConfigRow | None:
    scopes = _fallbacks(user_id, agent_id)
    found = store.latest_versions(tenant_id, scopes, session=session)
    return next((found[s] for s in scopes if s in found), None)


def guide_for(session: Session, tenant_id: str, user_id: str | None, agent_id: str | None) -> Guide:
    """What the extractors use for a scope's events: its effective configuration."""
    row = _effective(session, tenant_id, user_id, agent_id)
    if row is None:
        return NO_GUIDE
    return Guide(
        instructions=row.instructions,
        categories=tuple(
            Category(c["name"], tuple(c.get("keywords") or ()), c.get("description") or "")
            for c in row.categories or []
        ),
        version=row.version,
    )


def current_config(
    deps: ServiceDeps, tenant_id: str, scope: ExtractionScopeParams
) -> ExtractionConfigPublic:
    """The configuration in use for the scope (``version`` 0 and empty when none is stored);
    ``user_id``/``agent_id`` of the answer say which scope's it is."""
    with deps.sessions() as session:
        row = _effective(session, tenant_id, scope.user_id, scope.agent_id)
        if row is not None:
            return _public(row)
    return ExtractionConfigPublic(
        user_id=None,
        agent_id=None,
        version=0,
        instructions="",
        categories=[],
        actor=None,
        created_at=None,
    )


def put_config(
    deps: ServiceDeps, tenant_id: str, update: ExtractionConfigUpdate, *, actor: str
) -> ExtractionConfigPublic:
    """Store a new version of the scope's configuration and return it."""
    seen: set[str] = set()
    for n, category in enumerate(update.categories):
        if category.name.lower() in seen:
            raise InvalidRequestError(
                f"categories[{n}].name {category.name!r} is given twice",
                field=f"categories[{n}].name",
            )
        seen.add(category.name.lower())
    user, agent = _key(update.user_id, update.agent_id)
    try:
        with deps.sessions.begin() as session:
            row = ExtractionConfigRow(
                tenant_id=tenant_id,
                user_id=user,
                agent_id=agent,
                version=store.next_version(tenant_id, user, agent, session=session),
                instructions=update.instructions,
                categories=[c.model_dump() for c in update.categories],
                actor=actor[:200],
                created_at=utcnow(),
            )
            store.add_version(row, session=session)
            return _public(row)
    except IntegrityError as exc:  # another writer took the number first
        raise ConflictError(
            "the extraction configuration changed concurrently; retry", field="version"
        ) from exc


def config_versions(
    deps: ServiceDeps, tenant_id: str, scope: ExtractionScopeParams, *, limit: int = 1000
) -> list[ExtractionConfigPublic]:
    """Every stored version of exactly this scope, newest first."""
    user, agent = _key(scope.user_id, scope.agent_id)
    with deps.sessions() as session:
        return [
            _public(r) for r in store.versions(tenant_id, user, agent, limit=limit, session=session)
        ]
