"""The statements the store sends, and how SQLite plans them: for tests that a query reads an
index, checked on the SQL as the store writes it rather than on a copy of it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def selects(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SELECT statements sent while inside, in order, with their `?` placeholders."""
    seen: list[str] = []

    def capture(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.startswith("SELECT"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


async def plan(engine: AsyncEngine, sql: str, value: str = "'x'") -> str:
    """SQLite's EXPLAIN QUERY PLAN of `sql`, each `?` replaced by `value`."""
    literal = sql.replace("?", value)
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {literal}"))
        return "\n".join(str(r[-1]) for r in rows)
