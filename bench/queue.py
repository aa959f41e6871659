"""Queues prepared before a measurement, and probes that read the counts while it runs.

A prepared queue is built once per size (generated mail, parsed with the daemon's own parser,
stored through its repository) with the processor paused, then copied for each run: a file
copy for SQLite, `CREATE DATABASE ... TEMPLATE` for PostgreSQL. Probes run the
monitoring query, `SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status`.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from bench import mailgen
from muninmaild.mail.parse import parse_message
from muninmaild.records import NewMessage
from muninmaild.store.models import CLAIMABLE

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
COUNTS_SQL = "SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status"
# What the stopwatches poll, every 20 ms: the monitoring query reads every row (14 ms for
# 10,000 here, a third of a core at that pace, taken from the daemon it times), these two on
# SQLite only the table's b-tree and the claim index (0.01 ms). The monitoring query checks
# the end, once.
ROWS_SQL = "SELECT COUNT(*) FROM emails"
UNFINISHED_SQL = f"SELECT COUNT(*) FROM emails WHERE {CLAIMABLE}"
BATCH = 500


def new_messages(count: int, seed: int = 2) -> list[NewMessage]:
    """`count` generated messages as the fetcher would queue them."""
    out = []
    for i, raw in enumerate(mailgen.messages(count, seed, prefix="queued")):
        mail = replace(parse_message(raw), size=len(raw))
        out.append(NewMessage("bench", "INBOX", 1, i + 1, mail))
    return out


async def populate(url: str, messages: Sequence[NewMessage], paused: Sequence[str]) -> None:
    """Create the schema at `url` and queue `messages` as pending, with `paused` components."""
    from muninmaild.store.engine import create_engine
    from muninmaild.store.migrate import migrate
    from muninmaild.store.repository import Repository

    engine = create_engine(url)
    try:
        await migrate(engine)
        repo = Repository(engine)
        for batch in batches(messages):
            await repo.add_messages(batch)
        for component in paused:
            await repo.set_paused(component, True)
    finally:
        await engine.dispose()


def batches(messages: Sequence[NewMessage]) -> list[Sequence[NewMessage]]:
    """In order, at most BATCH at a time and one account a batch, as fetchers queue mail."""
    out: list[Sequence[NewMessage]] = []
    start = 0
    for end in range(1, len(messages) + 1):
        split = end == len(messages) or messages[end].account != messages[start].account
        if split or end - start == BATCH:
            out.append(messages[start:end])
            start = end
    return out


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class SqliteTemplate:
    def __init__(self, path: Path, messages: Sequence[NewMessage], paused: Sequence[str]) -> None:
        self.path = path
        asyncio.run(populate(sqlite_url(path), messages, paused))

    def copy_to(self, target: Path) -> str:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, target)
        return sqlite_url(target)


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def pg_admin(*statements: str) -> None:
    asyncio.run(_admin(*statements))


class PgTemplate:
    """A template database on the machine's PostgreSQL; each run gets a copy, dropped after."""

    def __init__(self, messages: Sequence[NewMessage], paused: Sequence[str]) -> None:
        self.name = f"munin_bench_tpl_{uuid.uuid4().hex[:10]}"
        pg_admin(f"CREATE DATABASE {self.name}")
        try:
            asyncio.run(populate(PG_URL.format(name=self.name), messages, paused))
        except BaseException:
            self.remove()
            raise

    def copy(self) -> tuple[str, str]:
        """A fresh copy: (database name, SQLAlchemy URL)."""
        name = f"munin_bench_run_{uuid.uuid4().hex[:10]}"
        pg_admin(f"CREATE DATABASE {name} TEMPLATE {self.name}")
        return name, PG_URL.format(name=name)

    def remove(self) -> None:
        drop_database(self.name)


def drop_database(name: str) -> None:
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Probe(Protocol):
    def counts(self) -> dict[str, int]: ...

    def number(self, sql: str) -> int: ...

    def close(self) -> None: ...


class SqliteProbe:
    """Reads the queue while the daemon writes it (WAL: readers never block the writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        return self._db

    def counts(self) -> dict[str, int]:
        try:
            return {status: int(n) for status, n in self._conn().execute(COUNTS_SQL)}
        except sqlite3.OperationalError:
            return {}  # no schema yet: the daemon is still starting

    def number(self, sql: str) -> int:
        """The one figure `sql` selects; -1 before the daemon made the schema."""
        try:
            return int(self._conn().execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return -1

    def query(self, sql: str) -> list[Any]:
        return list(self._conn().execute(sql))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class PgProbe:
    """The same query over one asyncpg connection, driven from a private event loop."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn = self._loop.run_until_complete(
            asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
        )

    def counts(self) -> dict[str, int]:
        rows = self._loop.run_until_complete(self._conn.fetch(COUNTS_SQL))
        return {row[0]: int(row[1]) for row in rows}

    def number(self, sql: str) -> int:
        return int(self._loop.run_until_complete(self._conn.fetchval(sql)))

    def close(self) -> None:
        self._loop.run_until_complete(self._conn.close())
        self._loop.close()
