"""Shared fixtures: databases (SQLite file, PostgreSQL schema), the model server, notify socket."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import migrate
from muninmaild.store.repository import Repository
from tests import kinds
from tests.peers.dovecot import Dovecot
from tests.peers.dovecot import available as dovecot_available

PG_URL = os.environ.get("MUNIN_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Integration (tests/kinds.py): marked slow, or using a fixture that starts a peer."""
    for item in items:
        fixtures = kinds.INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("slow") or fixtures:
            item.add_marker(pytest.mark.integration)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test, module-scoped ones too, may start a process.
    kinds.set_current(item.get_closest_marker("integration") is not None)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    kinds.set_current(None)


def peer_missing(what: str) -> None:
    """A missing peer fails under CI (a skip would hide the bug) and skips elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI must not skip it")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file migrated once for the session (each worker has its own), to copy."""
    path = tmp_path_factory.mktemp("template") / "queue.db"

    async def make() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate(engine)
        await engine.dispose()  # the last connection closes: the WAL is folded into the file

    asyncio.run(make())
    return path


@pytest.fixture
async def sqlite_engine(sqlite_url: str, sqlite_template: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database of the test's own: a copy of the session's template, a tenth of
    the cost of running every migration again."""
    shutil.copyfile(sqlite_template, sqlite_url.split(":///", 1)[1])
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


async def _pg_admin(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of the session's own on the machine's PostgreSQL, dropped at its end."""
    name = f"munin_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(PG_URL, f"CREATE DATABASE {name}"))
    except OSError:
        peer_missing("PostgreSQL on 127.0.0.1:5432")
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    asyncio.run(_pg_admin(PG_URL, f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's database, as new: nothing connected, an empty `public` schema.

    The same to the code under test as a database of its own (everything lives in `public`),
    at a fifth of the cost of creating and dropping one for each test.
    """
    asyncio.run(
        _pg_admin(
            pg_database,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            "DROP SCHEMA public CASCADE",
            "CREATE SCHEMA public",
        )
    )
    return pg_database


def _test_copy(template: str) -> str:
    """The database each `pg_engine` test gets, copied from `template`."""
    return template.removesuffix("_template") + "_test"


@pytest.fixture(scope="session")
def pg_template(pg_database: str) -> Iterator[str]:
    """A database migrated once for the session, that each `pg_engine` is created from."""
    name = f"{pg_database.rsplit('/', 1)[1]}_template"
    asyncio.run(_pg_admin(PG_URL, f"CREATE DATABASE {name}"))

    async def make() -> None:
        engine = create_engine(PG_URL.rsplit("/", 1)[0] + "/" + name)
        await migrate(engine)
        await engine.dispose()  # a template must have no one connected when it is copied

    asyncio.run(make())
    yield name
    asyncio.run(
        _pg_admin(
            PG_URL,
            f"DROP DATABASE IF EXISTS {_test_copy(name)} WITH (FORCE)",
            f"DROP DATABASE {name} WITH (FORCE)",
        )
    )


@pytest.fixture
async def pg_engine(pg_template: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database of the test's own, copied from the session's template (a fraction
    of the cost of the migrations); `pg_engine.url` names it for other processes."""
    name = _test_copy(pg_template)
    await _pg_admin(
        PG_URL,
        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
        f"CREATE DATABASE {name} TEMPLATE {pg_template}",
    )
    engine = create_engine(PG_URL.rsplit("/", 1)[0] + "/" + name)
    yield engine
    await engine.dispose()  # the next test's set-up drops the database, the session's end the last


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest) -> AsyncEngine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    engine: AsyncEngine = request.getfixturevalue(name)
    return engine


@pytest.fixture
async def repo(sqlite_engine: AsyncEngine) -> Repository:
    return Repository(sqlite_engine)


# -- Dovecot (tests/peers/dovecot.py) -------------------------------------------------------------


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., Dovecot]]:
    """Starts Dovecots with options (`idle=False`, `users=...`); all are removed afterwards."""
    if not dovecot_available():
        peer_missing("Dovecot (dovecot-imapd, run as root)")
    started: list[Dovecot] = []

    def start(**options: Any) -> Dovecot:
        started.append(Dovecot(**options))
        return started[-1]

    yield start
    for server in started:
        server.remove()


@pytest.fixture
def dovecot(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    return dovecot_factory()
