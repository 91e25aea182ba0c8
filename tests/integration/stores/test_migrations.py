"""The Alembic migrations produce exactly the ORM's schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from consolidation.dispatch import build_service
from memsvc.vocabulary import JobState
from stores.migrate import upgrade_database
from stores.models import Base, JobRow, Tenant, utcnow
from tests.conftest import make_settings


def test_migrations_match_the_models(db_url: str) -> None:
    upgrade_database(db_url)
    upgrade_database(db_url)  # idempotent
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_a_job_state_outside_the_vocabulary_is_refused(db_url: str, tmp_path: Path) -> None:
    """The CHECK constraint (migration 0008) holds on both databases and admits exactly the
    states of the enum."""
    service = build_service(make_settings(tmp_path, db_url))
    try:
        with service.deps.sessions.begin() as session:
            session.add(Tenant(id="t-jobs", name="t", created_at=utcnow()))
        for state in JobState:
            with service.deps.sessions.begin() as session:
                session.add(_job(state))
        with pytest.raises(IntegrityError), service.deps.sessions.begin() as session:
            session.add(_job("done"))
    finally:
        service.close()


def _job(state: str) -> JobRow:
    return JobRow(id=str(uuid.uuid4()), tenant_id="t-jobs", trigger="test", state=state)
