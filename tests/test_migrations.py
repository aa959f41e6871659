"""Migrations produce exactly the models' schema, on both databases, and run once."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import HEAD_REVISION, SCRIPT_LOCATION, current_revision, migrate
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
