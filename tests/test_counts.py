"""The queue counts kept by triggers agree with the monitoring query after every kind of change,
on SQLite and PostgreSQL; and the lists users run read indexes, not the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.records import Analysis, QueueCounts, TokenUsage
from muninmaild.store.repository import Repository
from tests.clock import Clock
from tests.factories import claim_one, complete_one, new_message
from tests.query_plans import plan, selects

MONITORING = "SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status"
ANSWER = Analysis("A summary.", ("urgent",), ())


@pytest.fixture
def clock() -> Clock[datetime]:
    return Clock(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))


@pytest.fixture
def queue(any_engine: AsyncEngine, clock: Clock[datetime]) -> Repository:
    return Repository(any_engine, clock)


async def monitoring(engine: AsyncEngine) -> QueueCounts:
    async with engine.connect() as conn:
        found: dict[str, int] = {
            str(k): int(v) for k, v in (await conn.execute(text(MONITORING))).all()
        }
    return QueueCounts(**{k: int(v) for k, v in found.items()})


async def agree(queue: Repository, engine: AsyncEngine) -> QueueCounts:
    counted = await monitoring(engine)
    assert await queue.counts() == counted
    await queue.fold_counters()
    assert await queue.counts() == counted
    return counted


async def test_counts_agree_with_the_monitoring_query_through_every_change(
    queue: Repository, any_engine: AsyncEngine, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(i) for i in range(1, 9)])
    await queue.add_messages([new_message(20, skip_reason="too large")])
    assert await agree(queue, any_engine) == QueueCounts(pending=8, completed=1)
    rows = [await claim_one(queue, f"w#{i}", 60) for i in range(6)]
    held = [r for r in rows if r is not None]
    assert await agree(queue, any_engine) == QueueCounts(pending=2, processing=6, completed=1)
    assert await complete_one(queue, held[0].id, "w#0", ANSWER, TokenUsage(10, 2), "m")
    assert await queue.retry(held[1].id, "w#1", "later", 30)
    assert await queue.fail(held[2].id, "w#2", "broken")
    assert await queue.snooze(held[3].id, "w#3", 30, "rate")
    assert await queue.release(held[4].id, "w#4")
    assert await agree(queue, any_engine) == QueueCounts(5, 1, 2, 1)
    assert await queue.requeue([held[0].id]) == 1
    assert await queue.requeue() == 1
    assert await agree(queue, any_engine) == QueueCounts(pending=7, processing=1, completed=1)
    clock.now += timedelta(seconds=61)  # w#5's lease ran out: its row is claimable again
    assert len(await queue.claim_batch("x#1", 20, 60)) == 8
    assert await agree(queue, any_engine) == QueueCounts(processing=8, completed=1)


async def test_counts_follow_rows_changed_by_hand(
    queue: Repository, any_engine: AsyncEngine
) -> None:
    await queue.add_messages([new_message(i) for i in range(1, 4)])
    async with any_engine.begin() as conn:
        await conn.execute(text("DELETE FROM emails WHERE uid = 2"))
        await conn.execute(text("UPDATE emails SET processing_status = 'failed' WHERE uid = 3"))
    assert await agree(queue, any_engine) == QueueCounts(pending=1, failed=1)


async def test_token_totals_are_kept_with_the_usage_rows(
    queue: Repository, any_engine: AsyncEngine
) -> None:
    await queue.add_messages([new_message(1), new_message(2)])
    first = await claim_one(queue, "w#1", 60)
    assert first is not None
    await queue.record_usage(first.id, "m", TokenUsage(7, 3))
    assert await complete_one(queue, first.id, "w#1", ANSWER, TokenUsage(100, 20), "m")
    assert await queue.token_totals() == TokenUsage(107, 23)
    await queue.fold_counters()
    async with any_engine.begin() as conn:
        await conn.execute(text("DELETE FROM token_usage WHERE tokens_in = 7"))
    assert await queue.token_totals() == TokenUsage(100, 20)


@pytest.mark.parametrize(
    "sql",
    [
        # list --status failed, list --since, show, todos, the digest, status's last error
        "SELECT id FROM emails WHERE processing_status = 'failed' "
        "AND processing_status <> 'completed' ORDER BY id DESC LIMIT 50",
        "SELECT id FROM emails WHERE created_at >= '2026-01-01' "
        "ORDER BY created_at DESC, id DESC LIMIT 50",
        "SELECT id FROM emails WHERE id = 5",
        "SELECT id FROM todos WHERE done IS 0 ORDER BY due_date IS NULL, due_date LIMIT 200",
        "SELECT id FROM emails WHERE created_at >= '2026-01-01' AND created_at < '2026-01-02'",
        "SELECT id FROM emails WHERE last_error IS NOT NULL ORDER BY updated_at DESC, id DESC "
        "LIMIT 1",
        "SELECT id FROM emails WHERE processing_status = 'completed' "
        "AND completed_at < '2026-01-01' LIMIT 100",
    ],
)
async def test_the_lists_read_an_index_on_sqlite(sqlite_engine: AsyncEngine, sql: str) -> None:
    found = await plan(sqlite_engine, sql)
    assert "USING" in found and "SCAN emails\n" not in found + "\n", found


async def test_the_claim_still_walks_the_claim_index(sqlite_engine: AsyncEngine) -> None:
    sql = (
        "SELECT id FROM emails WHERE processing_status IN ('pending', 'processing') "
        "AND next_attempt_at <= '2026-01-01' ORDER BY next_attempt_at, id LIMIT 8"
    )
    found = await plan(sqlite_engine, sql)
    assert "ix_emails_claim" in found and "TEMP B-TREE" not in found, found


async def test_status_reads_of_the_queue_use_the_claim_index(sqlite_engine: AsyncEngine) -> None:
    """`waiting` (status) and `unsettled` (wait-idle), as the store writes them, read a partial
    index of the claimable rows."""
    repo = Repository(sqlite_engine)
    with selects(sqlite_engine) as seen:
        await repo.waiting()
        await repo.unsettled(include_scheduled=False)
    assert len(seen) == 2
    for statement in seen:
        # Either partial index over the claimable rows: both are as small as the active queue.
        found = await plan(sqlite_engine, statement, "'2026-01-01'")
        assert "ix_emails_claim" in found or "ix_emails_live_claim" in found, statement


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM emails WHERE processing_status = 'failed' ORDER BY id DESC LIMIT 50",
        "SELECT id FROM emails WHERE created_at >= now() ORDER BY created_at DESC, id DESC LIMIT 5",
        "SELECT id FROM emails WHERE last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
        "SELECT id FROM emails WHERE processing_status = 'completed' AND completed_at < now()",
        "SELECT id FROM todos WHERE done IS false AND due_date < now()",
    ],
)
async def test_the_lists_can_read_an_index_on_postgresql(pg_engine: AsyncEngine, sql: str) -> None:
    """With sequential scans priced out, the planner finds an index for each list."""
    async with pg_engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))
        found = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))
    assert "Index" in found, found
