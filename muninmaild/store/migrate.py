"""Bring the schema to the current revision at start-up.

Alembic is slow and large to import (bench/README.md), so it loads only when the schema is behind;
and the daemon (`migrate_apart`) then runs it in a child process, `python -I -m
muninmaild.store.migrate`, so that Alembic's 11 MB do not stay in the daemon for its whole
life after a first start. The child reads the database URL from its standard input, never
from its command line, where any user's `ps` would show a password in it.
Concurrent starters are serialised: SQLite by the write lock of `BEGIN IMMEDIATE`, PostgreSQL by
a transaction-scoped advisory lock; the second one then finds nothing to do.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.errors import StoreError
from muninmaild.store.engine import create_engine

HEAD_REVISION = "0010"
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


_REASON = "migration failed: "  # how the child's line of reason begins


async def migrate_apart(engine: AsyncEngine, url: str) -> bool:
    """As `migrate`, with the upgrade itself in a child process; StoreError if it fails."""
    if await current_revision(engine) == HEAD_REVISION:
        return False
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await child.communicate(url.encode())
    if child.returncode != 0:
        reason = failure_reason(err, child.returncode)
        raise StoreError(f"the schema could not be brought up to date: {reason}")
    return True


def failure_reason(err: bytes, returncode: int | None) -> str:
    """The child's own line of reason, not what a driver's thread may print after it as the
    interpreter shuts down (a traceback from aiosqlite's thread, at times)."""
    lines = err.decode("utf-8", "replace").strip().splitlines()
    said = [line[len(_REASON) :] for line in lines if line.startswith(_REASON)]
    return (said or lines or [f"exit status {returncode}"])[-1]


async def _migrate_url(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def _upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _main() -> int:
    """The child: one line on standard error saying why, if it fails."""
    try:
        asyncio.run(_migrate_url(sys.stdin.read().strip()))
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip()
        said = reason.splitlines()[0] if reason else type(exc).__name__
        sys.stderr.write(f"{_REASON}{said}\n")
        sys.stderr.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
