"""Several processes claiming from one database claim each row exactly once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.store.repository import Repository
from tests.factories import new_message

ROWS = 400
WORKERS = 4


async def fill(engine: AsyncEngine) -> None:
    repo = Repository(engine)
    batch = [new_message(uid) for uid in range(1, ROWS + 1)]
    await repo.add_messages(batch)


def run_workers(url: str) -> Counter[int]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.claim_worker", url, f"worker{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    claimed: Counter[int] = Counter()
    winners = 0
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert "fenced" not in out
        claimed.update(int(line) for line in out.split())
        winners += bool(out.split())
    assert winners >= 2, "the workers should have competed for rows"
    return claimed


async def check_results(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        statuses = (
            await conn.execute(
                text("SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status")
            )
        ).all()
        todos = (await conn.execute(text("SELECT COUNT(*) FROM todos"))).scalar_one()
    assert dict(statuses) == {"completed": ROWS}
    assert todos == ROWS


@pytest.mark.slow
async def test_sqlite_processes_claim_each_row_once(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    await fill(sqlite_engine)
    claimed = run_workers(sqlite_url)
    assert sorted(claimed) == list(range(1, ROWS + 1))
    assert set(claimed.values()) == {1}
    await check_results(sqlite_engine)


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_processes_claim_each_row_once(pg_engine: AsyncEngine) -> None:
    await fill(pg_engine)
    claimed = run_workers(pg_engine.url.render_as_string(hide_password=False))
    assert len(claimed) == ROWS
    assert set(claimed.values()) == {1}
    await check_results(pg_engine)
