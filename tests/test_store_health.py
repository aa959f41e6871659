"""A failed database write: a StoreError in words, recorded for `status`, and cleared once
writes work again. The full-disk scenario itself is tests/reliability/test_disk_full.py."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from muninctl.commands.status import render as render_status
from muninmaild.control import views
from muninmaild.errors import StoreError
from muninmaild.store.health import WriteHealth, describe
from muninmaild.store.repository import Repository
from tests.factories import new_message

REFUSE = (
    "CREATE TRIGGER refuse BEFORE INSERT ON emails "
    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)

PG_DISK_FULL = "could not extend file: No space left on device"
PG_REFUSE_FUNCTION = (
    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{PG_DISK_FULL}' USING ERRCODE = 'disk_full'; END $$"
)
PG_REFUSE_TRIGGER = (
    "CREATE TRIGGER refuse BEFORE INSERT ON emails FOR EACH ROW EXECUTE FUNCTION refuse()"
)


@pytest.mark.parametrize(
    ("driver_text", "words"),
    [
        ("database or disk is full", "database or disk is full"),
        (
            "<class 'asyncpg.exceptions.DiskFullError'>: could not extend file: No space left",
            "could not extend file: No space left",
        ),
        ("first line\nDETAIL: second line", "first line"),
        ("", "no reason given by the database driver"),
    ],
)
def test_a_database_error_is_described_by_the_drivers_own_first_line(
    driver_text: str, words: str
) -> None:
    error = OperationalError("INSERT INTO emails VALUES (?)", ("Dear Ann, my secret",), Exception())
    error.orig = Exception(driver_text)
    assert describe(error) == f"database error: {words}"
    assert "secret" not in describe(error) and "INSERT" not in describe(error)


async def test_a_failed_write_is_a_store_error_and_shows_until_a_write_works(
    sqlite_engine: AsyncEngine,
) -> None:
    repo = Repository(sqlite_engine)
    async with sqlite_engine.begin() as conn:
        await conn.execute(text(REFUSE))
    with pytest.raises(StoreError, match=r"^database error: database or disk is full$") as failed:
        await repo.add_messages([new_message(1, body="Dear Ann, the secret plan")])
    assert "secret plan" not in str(failed.value.__cause__)  # hide_parameters in the engine
    shown = views.database(repo.health)
    assert shown["failing"] and shown["last_error"] == "database error: database or disk is full"
    assert shown["last_error_at"]

    async with sqlite_engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER refuse"))
    assert await repo.add_messages([new_message(1)]) == 1
    shown = views.database(repo.health)
    assert not shown["failing"] and shown["last_error"]  # the last failure stays, with its time


@pytest.mark.postgres
async def test_a_failed_write_on_postgresql_is_described_in_the_servers_words(
    pg_engine: AsyncEngine,
) -> None:
    # How the driver's words reach us through SQLAlchemy's asyncpg adapter differs between
    # releases (2.0 puts "<class 'asyncpg.exceptions...'>: " before them): the real thing here.
    repo = Repository(pg_engine)
    async with pg_engine.begin() as conn:
        await conn.execute(text(PG_REFUSE_FUNCTION))
        await conn.execute(text(PG_REFUSE_TRIGGER))
    with pytest.raises(StoreError) as failed:
        await repo.add_messages([new_message(1, body="Dear Ann, the secret plan")])
    assert str(failed.value) == f"database error: {PG_DISK_FULL}"


def test_status_says_when_the_database_fails() -> None:
    status = {
        "version": "0.1.0",
        "pid": 42,
        "uptime_s": 5.0,
        "paused": {"fetcher": False, "processor": False},
        "queue": {"pending": 1, "processing": 0, "completed": 5, "failed": 0},
        "accounts": [],
        "model": {"backend": "rules", "model": "rules", "tokens_in": 0, "tokens_out": 0},
        "last_error": None,
        "database": views.database(WriteHealth()),
    }
    assert "database:   ok" in render_status(status)
    health = WriteHealth(True, "database error: database or disk is full", None)
    status["database"] = views.database(health)
    assert "database:   failing: database error: database or disk is full" in render_status(status)
    health.failing = False
    status["database"] = views.database(health)
    assert "database:   ok (failed at -: database error: database or disk is full)" in (
        render_status(status)
    )
