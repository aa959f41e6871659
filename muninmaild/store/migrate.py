"""Bring the schema to the current revision at start-up.

Alembic is slow and large to import (bench/README.md), so it loads only when the schema is behind.
Concurrent starters are serialised: SQLite by the write lock of `BEGIN IMMEDIATE`, PostgreSQL by
a transaction-scoped advisory lock; the second one then finds nothing to do.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

HEAD_REVISION = "0007"
SCRIPT_LOCATION = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_ID = 0x6D756E696E  # "munin"


async def current_revision(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar_one_or_none()
    except DBAPIError:
        return None  # no table yet: an empty database


async def migrate(engine: AsyncEngine) -> bool:
    """Upgrade to head; True if anything was applied."""
    if await current_revision(engine) == HEAD_REVISION:
        return False
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_ID})"))
        await conn.run_sync(_upgrade)
    return True


def _upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
