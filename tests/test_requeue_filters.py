"""Requeue by filter in the store, on SQLite and PostgreSQL: every condition given must hold, a
row being processed is never taken, ids of any number are bound in bounded parts, and mail the
backfill window left out loses its note and leaves its mailbox's count."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.protocol import RequeueFilter
from muninmaild.records import BACKFILL_NOTE, Analysis, SyncAdvance, TokenUsage
from muninmaild.store import requeue
from muninmaild.store.repository import Repository
from tests.factories import claim_oldest, complete_one, new_message


def day(n: int) -> datetime:
    return datetime(2026, 11, n, 9, tzinfo=UTC)


@pytest.fixture
def queue(any_engine: AsyncEngine) -> Repository:
    return Repository(any_engine)


async def fill(queue: Repository) -> None:
    """Six messages: work 1-4 dated Nov 1-4 (1 and 2 left out by the backfill window), home 5-6
    dated Nov 5-6."""
    old = [new_message(n, date=day(n), skip_reason=BACKFILL_NOTE) for n in (1, 2)]
    rest = [new_message(n, date=day(n)) for n in (3, 4)]
    await queue.add_messages(old + rest, SyncAdvance("work", "INBOX", 1, 4, 4))
    await queue.add_messages([new_message(n, "home", date=day(n)) for n in (5, 6)])


async def finish(queue: Repository, flags: tuple[str, ...]) -> int:
    """Claim the oldest due row and complete it with `flags`; its id."""
    held = await claim_oldest(queue, "t", 60)
    assert held is not None
    analysis = Analysis("s", flags, ())
    assert await complete_one(queue, held.id, "t", analysis, TokenUsage(), "m")
    return held.id


async def test_every_condition_given_must_hold(queue: Repository) -> None:
    await fill(queue)
    assert await finish(queue, ("urgent",)) == 3
    assert await finish(queue, ()) == 4
    cases = {
        RequeueFilter(skipped=True): 2,
        RequeueFilter(skipped=True, since=day(2)): 1,
        RequeueFilter(account="home"): 2,
        RequeueFilter(account="work", status="completed"): 4,
        RequeueFilter(status="pending"): 2,
        RequeueFilter(flag="urgent"): 1,
        RequeueFilter(flag="urgent", account="home"): 0,
        RequeueFilter(since=day(3), until=day(6)): 3,
        RequeueFilter(ids=(1, 3, 5, 99), status="completed"): 2,
    }
    for chosen, count in cases.items():
        assert await queue.count_requeue(chosen) == count, chosen


async def test_requeue_of_left_out_mail_clears_its_note_and_count(queue: Repository) -> None:
    await fill(queue)
    assert await queue.backfill_left_out() == {"work": 2}
    assert await queue.requeue_matching(RequeueFilter(skipped=True, until=day(2))) == 1
    assert await queue.backfill_left_out() == {"work": 1}
    (first,) = await queue.results_for([1])
    assert (first["status"], first["skip_reason"]) == ("pending", None)
    assert await queue.count_requeue(RequeueFilter(skipped=True)) == 1


async def test_a_row_being_processed_is_never_requeued(queue: Repository) -> None:
    await fill(queue)
    held = await claim_oldest(queue, "t", 60)  # work's 3
    assert held is not None
    assert await queue.count_requeue(RequeueFilter(account="work")) == 3
    assert await queue.requeue_matching(RequeueFilter(ids=(held.id,))) == 0
    assert await queue.requeue_matching(RequeueFilter(account="work")) == 3
    (row,) = await queue.results_for([held.id])
    assert row["status"] == "processing"


async def test_many_ids_and_rows_go_in_bounded_batches(
    queue: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requeue, "BATCH", 4)
    await queue.add_messages([new_message(n, date=day(1)) for n in range(1, 12)])
    ids = tuple(range(1, 41))  # ten parts of four: no statement binds more than a part
    assert await queue.count_requeue(RequeueFilter(ids=ids)) == 11
    assert await queue.requeue_matching(RequeueFilter(ids=ids)) == 11
    assert await queue.requeue_matching(RequeueFilter(status="pending")) == 11
    assert await queue.requeue() == 0  # the failed ones: none
