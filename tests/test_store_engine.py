"""The SQLite engine decides how transactions begin, not the driver (store/engine.py).

That rests on SQLAlchemy's aiosqlite adapter: setting `isolation_level` on it reaches into
aiosqlite's private worker queue (docs/dependencies.md). These tests fail if that stops working,
silently or not.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.store.engine import READ_ONLY


@contextmanager
def other_connection(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """Another process's view of the file: no waiting for a lock, no transactions of its own."""
    conn = sqlite3.connect(sqlite_url.split("///", 1)[1], timeout=0, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


async def test_the_driver_leaves_beginning_transactions_to_the_engine(
    sqlite_engine: AsyncEngine,
) -> None:
    async with sqlite_engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        assert raw.driver_connection.isolation_level is None  # aiosqlite's own property


async def test_a_write_transaction_holds_the_write_lock_from_its_start(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    async with sqlite_engine.begin() as conn:
        await conn.execute(text("SELECT COUNT(*) FROM emails"))  # a read, yet BEGIN IMMEDIATE
        with other_connection(sqlite_url) as other, pytest.raises(sqlite3.OperationalError):
            other.execute("BEGIN IMMEDIATE")
    with other_connection(sqlite_url) as other:
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")


async def test_a_read_only_transaction_takes_no_write_lock(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    async with sqlite_engine.connect() as conn:
        reader = await conn.execution_options(**READ_ONLY)
        async with reader.begin():
            await reader.execute(text("SELECT COUNT(*) FROM emails"))
            with other_connection(sqlite_url) as other:
                other.execute("BEGIN IMMEDIATE")  # a writer elsewhere is not kept waiting
                other.execute("ROLLBACK")
