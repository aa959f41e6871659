"""Create the async engine, with the SQLite settings that make it a safe queue."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from muninmaild.errors import StoreError

BUSY_TIMEOUT_MS = 10_000
# Execution options of the repository's read-only connections (see `_on_begin`).
READ_ONLY = {"munin_read_only": True}
MIN_SQLITE = (3, 35, 0)  # RETURNING


def create_engine(url: str) -> AsyncEngine:
    """`hide_parameters`: an error's text (and so a logged traceback) never quotes mail."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


def _sqlite_engine(url: str, database: str | None) -> AsyncEngine:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old: 3.35 or newer is needed")
    if not database or database == ":memory:":
        raise StoreError("an in-memory SQLite database cannot hold a queue: give a file")
    try:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder for {database}: {exc.strerror}") from None
    engine = create_async_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
    )
    event.listen(engine.sync_engine, "connect", _on_connect)
    event.listen(engine.sync_engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control from the driver so that `begin` below decides how they start.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        f"busy_timeout={BUSY_TIMEOUT_MS}",
        "foreign_keys=ON",
        "synchronous=NORMAL",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _on_begin(conn: Any) -> None:
    # A deferred transaction that later writes fails with SQLITE_BUSY at once, ignoring
    # busy_timeout; taking the write lock up front makes writers queue instead. Reads need no
    # lock under WAL, so they begin deferred and never wait for a writer.
    if conn.get_execution_options().get("munin_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def dialect_insert(engine: AsyncEngine) -> Any:
    """The database's own INSERT construct (for ON CONFLICT), importing only that dialect:
    PostgreSQL's would be a measurable part of a SQLite daemon's start-up (bench/README.md)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
