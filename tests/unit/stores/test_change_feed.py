"""The change feed the derived indexes sync from: every search reads it, so it must seek."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from stores.memories import changes_since
from stores.migrate import upgrade_database


def test_changes_since_seeks_the_rev_index_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    upgrade_database(url)
    engine = create_engine(url)
    seen: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    with Session(engine) as session:
        assert changes_since((5, 3), limit=10, session=session) == []
    ((statement, params),) = [(s, p) for s, p in seen if "FROM memories" in s]
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
    engine.dispose()
    details = " | ".join(str(row[-1]) for row in plan)
    # A full scan of the rev index grows with the table (4.4 ms per search at 100k rows).
    assert "SEARCH memories" in details and "rev>" in details, details
