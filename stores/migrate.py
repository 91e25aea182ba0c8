"""Apply Alembic migrations programmatically (start-up and ``memsvc db upgrade``)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config

__all__ = ["alembic_config", "upgrade_database"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would mangle a password containing '%'.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    # Two embedded processes starting at once must not both create the tables.
    path = url.split("///", 1)[-1]
    if not url.startswith("sqlite") or not path or path == ":memory:":
        yield
        return
    lock_path = Path(path + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent, safe to run concurrently)."""
    with _sqlite_file_lock(url):
        command.upgrade(alembic_config(url), revision)
