"""Migrations produce exactly the models' schema, on both databases, and run once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.errors import StoreError
from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import (
    HEAD_REVISION,
    SCRIPT_LOCATION,
    current_revision,
    failure_reason,
    migrate,
    migrate_apart,
)
from muninmaild.store.models import Base


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(any_engine: AsyncEngine) -> None:
    async with any_engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_head_revision_constant_matches_the_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


async def test_migrate_twice_does_nothing_the_second_time(any_engine: AsyncEngine) -> None:
    assert await current_revision(any_engine) == HEAD_REVISION
    assert await migrate(any_engine) is False


def _upgrade_to(conn: Connection, revision: str) -> None:
    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


async def test_0008_leaves_mailboxes_synced_before_it_outside_the_backfill_window(
    sqlite_url: str,
) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0006")
            await conn.execute(
                text(
                    "INSERT INTO mailbox_state (account, mailbox, uidvalidity, highest_uid,"
                    " updated_at) VALUES ('a', 'INBOX', 7, 40, '2026-01-01 00:00:00')"
                )
            )
        assert await migrate(engine) is True
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT highest_uid, backfill_uid, backfill_skipped FROM mailbox_state")
            )
            assert found.one() == (40, 0, 0)
    finally:
        await engine.dispose()


MIGRATE_APART = """
import asyncio, sys
from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import HEAD_REVISION, current_revision, migrate_apart

async def main(url):
    engine = create_engine(url)
    try:
        assert await migrate_apart(engine, url) is True
        assert await current_revision(engine) == HEAD_REVISION
        assert await migrate_apart(engine, url) is False
    finally:
        await engine.dispose()

asyncio.run(main(sys.argv[1]))
assert "alembic" not in sys.modules, "Alembic was loaded into the daemon's process"
"""


def test_the_daemon_migrates_in_a_child_and_never_loads_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    done = subprocess.run(
        [sys.executable, "-c", MIGRATE_APART, url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_reason_of_a_failed_child_is_its_own_line_not_what_a_thread_printed_after() -> None:
    err = (
        b"migration failed: unable to open database file\n"
        b"Exception in thread Thread-1:\nTraceback (most recent call last):\n"
        b'  File "base_events.py", line 806, in call_soon_threadsafe\n'
        b"RuntimeError: Event loop is closed\n"
    )
    assert failure_reason(err, 1) == "unable to open database file"
    assert failure_reason(b"Killed\n", -9) == "Killed"
    assert failure_reason(b"", -9) == "exit status -9"


async def test_a_failed_migration_in_the_child_is_a_store_error_with_its_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "q.db").mkdir()  # a folder where the database file should be
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    engine = create_engine(url)
    try:
        with pytest.raises(StoreError, match=r"brought up to date: .*unable to open"):
            await migrate_apart(engine, url)
    finally:
        await engine.dispose()
