"""Id lists of any length: no statement binds more parameters than the databases allow."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.processing.handler import KEEP_IDS, ProcessorStats
from muninmaild.records import QueueCounts
from muninmaild.service import report
from muninmaild.store.chunks import chunks
from muninmaild.store.repository import Repository
from tests.factories import new_message

MANY = list(range(1, 40_001))  # past SQLite's 32,766 and asyncpg's 32,767 parameters


def test_chunks_keep_order_and_size() -> None:
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([])) == []


async def test_statements_over_forty_thousand_ids_run(any_engine: AsyncEngine) -> None:
    repo = Repository(any_engine)
    await repo.add_messages([new_message(1), new_message(2)])
    assert await repo.requeue(MANY) == 2
    assert len(await repo.results_for(MANY)) == 2
    assert await repo.todos_by_id(MANY, date(2026, 1, 1)) == []
    assert await repo.set_todos_done(MANY, True) == (0, MANY)


def test_the_run_once_report_summarises_a_big_run() -> None:
    stats = ProcessorStats(keep_ids=True, completed=300_000)
    stats.handled = 300_000
    text = report.render([], stats, QueueCounts(completed=300_000), [])
    assert "processed 300000: 300000 completed" in text
    assert "... and 300000 more (muninctl list shows them)" in text
    assert len(text.splitlines()) < 10 and KEEP_IDS <= report.DETAIL_LIMIT
