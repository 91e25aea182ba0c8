"""The Alembic migrations produce exactly the ORM's schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from stores.migrate import upgrade_database
from stores.models import Base


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
