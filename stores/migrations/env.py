"""Alembic environment: URL and metadata come from the application, never from alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from stores.db import make_engine
from stores.models import Base

config = context.config
target_metadata = Base.metadata

# Any 64-bit constant; serialises concurrent upgrades of several API processes on PostgreSQL.
_PG_MIGRATION_LOCK = 7_412_993_001


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from memsvc.settings import get_settings

    return get_settings().sqlalchemy_url


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()
            try:
                _configure_and_run(connection)
            finally:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                    connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
