"""The queue's statements, on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.records import Analysis, QueueCounts, SyncAdvance, Todo, TokenUsage
from muninmaild.store.repository import Completion, Repository
from tests.clock import Clock
from tests.factories import claim_one, complete_one, new_message

ANSWER = Analysis(
    summary="Ann asks for the report.",
    flags=("requires_response",),
    todos=(Todo("Send the report", "high", None), Todo("Book the room", "low", None)),
)


@pytest.fixture
def clock() -> Clock[datetime]:
    return Clock(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))


@pytest.fixture
def queue(any_engine: AsyncEngine, clock: Clock[datetime]) -> Repository:
    return Repository(any_engine, clock)


async def test_add_messages_ignores_known_identities(queue: Repository) -> None:
    assert await queue.add_messages([new_message(1), new_message(2)]) == 2
    assert await queue.add_messages([new_message(2), new_message(3)]) == 1
    assert await queue.counts() == QueueCounts(pending=3)


async def test_same_message_id_in_another_mailbox_is_completed_without_processing(
    queue: Repository,
) -> None:
    await queue.add_messages([new_message(1, message_id="<same@example.com>")])
    dup = new_message(7, mailbox="Archive", message_id="<same@example.com>")
    assert await queue.add_messages([dup]) == 1
    assert await queue.counts() == QueueCounts(pending=1, completed=1)


async def test_copies_of_one_message_id_in_one_batch_point_at_the_first(
    queue: Repository,
) -> None:
    same = "<thrice@example.com>"
    batch = [new_message(uid, message_id=same) for uid in (4, 5, 6)] + [new_message(7)]
    assert await queue.add_messages(batch) == 4
    assert await queue.counts() == QueueCounts(pending=2, completed=2)
    assert {m.id for m in await queue.claim_batch("w#1", 5, 60)} == {1, 2}
    async with queue._reader.connect() as conn:
        skips = await conn.execute(text("SELECT skip_reason FROM emails WHERE uid IN (5, 6)"))
        assert [r[0] for r in skips] == ["same Message-ID as message 1"] * 2


async def test_a_large_mixed_batch_is_queued_in_several_statements(queue: Repository) -> None:
    # More rows than one INSERT carries, skipped and pending rows (different columns) mixed.
    batch = [
        new_message(uid, skip_reason="over the limit" if uid % 7 == 0 else None)
        for uid in range(1, 1202)
    ]
    assert await queue.add_messages(batch) == 1201
    assert await queue.add_messages(batch[1100:]) == 0
    skipped = len([u for u in range(1, 1202) if u % 7 == 0])
    assert await queue.counts() == QueueCounts(pending=1201 - skipped, completed=skipped)


async def test_skipped_message_gets_a_completed_row(queue: Repository) -> None:
    await queue.add_messages([new_message(1, skip_reason="larger than 25 MB")])
    assert await queue.counts() == QueueCounts(completed=1)
    assert await claim_one(queue, "w#1", 60) is None


async def test_sync_state_is_saved_with_the_batch(queue: Repository) -> None:
    advance = SyncAdvance("work", "INBOX", 42, 9)
    await queue.add_messages([new_message(9)], advance)
    state = await queue.sync_state("work", "INBOX")
    assert (state.uidvalidity, state.highest_uid) == (42, 9)


async def test_claim_takes_newest_due_row_and_counts_an_attempt(queue: Repository) -> None:
    await queue.add_messages([new_message(1), new_message(2)])
    first = await claim_one(queue, "w#1", 60)
    assert first is not None
    assert (first.subject, first.attempts, first.token) == ("Message 2", 1, "w#1")
    assert await queue.counts() == QueueCounts(pending=1, processing=1)


async def test_claim_returns_none_when_nothing_is_due(queue: Repository) -> None:
    assert await claim_one(queue, "w#1", 60) is None


async def test_expired_lease_is_claimed_again(queue: Repository, clock: Clock[datetime]) -> None:
    await queue.add_messages([new_message(1)])
    crashed = await claim_one(queue, "dead#1", 60)
    assert crashed is not None
    assert await claim_one(queue, "w#2", 60) is None
    clock.advance(61)
    again = await claim_one(queue, "w#2", 60)
    assert again is not None and again.id == crashed.id and again.attempts == 2


async def test_renew_keeps_the_lease(queue: Repository, clock: Clock[datetime]) -> None:
    await queue.add_messages([new_message(1)])
    held = await claim_one(queue, "w#1", 60)
    assert held is not None
    clock.advance(50)
    assert await queue.renew(held.id, "w#1", 60)
    clock.advance(50)
    assert await claim_one(queue, "w#2", 60) is None


async def test_complete_writes_results_once_in_the_same_transaction(
    queue: Repository, any_engine: AsyncEngine
) -> None:
    await queue.add_messages([new_message(1)])
    held = await claim_one(queue, "w#1", 60)
    assert held is not None
    assert await complete_one(queue, held.id, "w#1", ANSWER, TokenUsage(100, 20), "m")
    assert not await complete_one(queue, held.id, "w#1", ANSWER, TokenUsage(100, 20), "m")
    async with any_engine.connect() as conn:
        todos = (await conn.execute(text("SELECT COUNT(*) FROM todos"))).scalar_one()
        flags = (await conn.execute(text("SELECT flag FROM email_flags"))).scalars().all()
    assert (todos, flags) == (2, ["requires_response"])
    assert await queue.token_totals() == TokenUsage(100, 20)
    [row] = await queue.results_for([held.id])
    assert row["summary"] == ANSWER.summary and row["todos"][0] == {
        "task": "Send the report",
        "priority": "high",
        "due": None,
        "todo_id": row["todos"][0]["todo_id"],
        "done": False,
    }


async def test_worker_that_lost_its_lease_cannot_complete(
    queue: Repository, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(1)])
    slow = await claim_one(queue, "slow#1", 60)
    assert slow is not None
    clock.advance(61)
    fast = await claim_one(queue, "fast#1", 60)
    assert fast is not None
    assert not await complete_one(queue, slow.id, "slow#1", ANSWER, TokenUsage(), "m")
    assert not await queue.renew(slow.id, "slow#1", 60)
    assert await complete_one(queue, fast.id, "fast#1", ANSWER, TokenUsage(), "m")
    [row] = await queue.results_for([fast.id])
    assert len(row["todos"]) == 2


async def test_retry_waits_and_keeps_the_error(queue: Repository, clock: Clock[datetime]) -> None:
    await queue.add_messages([new_message(1)])
    held = await claim_one(queue, "w#1", 60)
    assert held is not None
    assert await queue.retry(held.id, "w#1", "the model service did not answer", 300)
    assert await claim_one(queue, "w#2", 60) is None
    assert await queue.next_due_in() == pytest.approx(300)
    clock.advance(301)
    again = await claim_one(queue, "w#2", 60)
    assert again is not None and again.attempts == 2
    [row] = await queue.results_for([held.id])
    assert row["last_error"] == "the model service did not answer"


async def test_snooze_and_release_use_no_attempt(queue: Repository, clock: Clock[datetime]) -> None:
    await queue.add_messages([new_message(1)])
    held = await claim_one(queue, "w#1", 60)
    assert held is not None
    assert await queue.snooze(held.id, "w#1", 30, "rate limited")
    clock.advance(31)
    again = await claim_one(queue, "w#2", 60)
    assert again is not None and again.attempts == 1
    assert await queue.release(again.id, "w#2")
    third = await claim_one(queue, "w#3", 60)
    assert third is not None and third.attempts == 1


async def test_failed_rows_are_held_until_requeued(queue: Repository) -> None:
    await queue.add_messages([new_message(1), new_message(2)])
    for _ in range(2):
        held = await claim_one(queue, "w#1", 60)
        assert held is not None
        await queue.fail(held.id, "w#1", "the model's answer breaks the schema")
    assert await claim_one(queue, "w#2", 60) is None
    assert await queue.counts() == QueueCounts(failed=2)
    assert await queue.requeue() == 2
    again = await claim_one(queue, "w#3", 60)
    assert again is not None and again.attempts == 1


async def test_requeue_by_id_skips_rows_being_processed(queue: Repository) -> None:
    await queue.add_messages([new_message(1)])
    held = await claim_one(queue, "w#1", 60)
    assert held is not None
    assert await queue.requeue([held.id]) == 0


async def test_pause_is_stored(queue: Repository) -> None:
    assert await queue.paused() == {"fetcher": False, "processor": False}
    await queue.set_paused("processor", True)
    await queue.set_paused("processor", True)
    assert await queue.paused() == {"fetcher": False, "processor": True}
    await queue.set_paused("processor", False)
    assert await queue.paused() == {"fetcher": False, "processor": False}


async def test_claim_batch_takes_due_rows_once_newest_first(queue: Repository) -> None:
    await queue.add_messages([new_message(i) for i in range(1, 8)])
    first = await queue.claim_batch("a#1", 3, 60)
    second = await queue.claim_batch("b#1", 10, 60)
    assert [m.id for m in first] == [7, 6, 5]
    assert [m.id for m in second] == [4, 3, 2, 1]
    assert {m.token for m in first} == {"a#1"}
    assert await queue.claim_batch("c#1", 5, 60) == []


async def test_complete_many_fences_each_row_by_its_token(
    queue: Repository, any_engine: AsyncEngine, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(i) for i in range(1, 4)])
    held = await queue.claim_batch("a#1", 3, 60)
    clock.advance(61)
    [taken] = await queue.claim_batch("b#1", 1, 60)  # row 3's lease ran out
    items = [Completion(m.id, m.token, ANSWER, TokenUsage(1, 1), "m") for m in held]
    assert await queue.complete_many(items) == {1, 2}
    assert await complete_one(queue, taken.id, "b#1", ANSWER, TokenUsage(1, 1), "m")
    async with any_engine.connect() as conn:
        per_email = (
            await conn.execute(text("SELECT email_id, COUNT(*) FROM todos GROUP BY email_id"))
        ).all()
    assert sorted(per_email) == [(1, 2), (2, 2), (3, 2)]


async def test_requeued_completed_message_gets_one_set_of_results(
    queue: Repository, any_engine: AsyncEngine
) -> None:
    await queue.add_messages([new_message(1)])
    for n in range(2):
        held = await claim_one(queue, f"w#{n}", 60)
        assert held is not None
        assert await complete_one(queue, held.id, held.token, ANSWER, TokenUsage(), "m")
        assert await queue.requeue([held.id]) == 1
    async with any_engine.connect() as conn:
        todos = (await conn.execute(text("SELECT COUNT(*) FROM todos"))).scalar_one()
    assert todos == 0  # requeued again at the end: the old results are gone until re-done


async def test_reads_do_not_wait_for_a_writer_on_sqlite(
    sqlite_engine: AsyncEngine, sqlite_url: str
) -> None:
    import sqlite3

    queue = Repository(sqlite_engine)
    await queue.add_messages([new_message(1)])
    other = sqlite3.connect(sqlite_url.split("///", 1)[1], isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        counts = await asyncio.wait_for(queue.counts(), 2)
        paused = await asyncio.wait_for(queue.paused(), 2)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert counts == QueueCounts(pending=1)
    assert paused == {"fetcher": False, "processor": False}


async def test_mailbox_position_never_moves_back_within_one_uidvalidity(
    queue: Repository,
) -> None:
    await queue.add_messages([new_message(9)], SyncAdvance("work", "INBOX", 7, 9))
    await queue.add_messages([new_message(5)], SyncAdvance("work", "INBOX", 7, 5))
    assert (await queue.sync_state("work", "INBOX")).highest_uid == 9
    await queue.add_messages([], SyncAdvance("work", "INBOX", 8, 3))  # mailbox recreated
    state = await queue.sync_state("work", "INBOX")
    assert (state.uidvalidity, state.highest_uid) == (8, 3)


async def test_a_maildir_file_is_queued_once_even_by_racing_fetchers(queue: Repository) -> None:
    first = new_message(1)
    racing = new_message(2, message_id=None)
    same_file = [
        type(first)(**{**first.__dict__, "source_key": "100.a.host"}),
        type(racing)(**{**racing.__dict__, "source_key": "100.a.host"}),
    ]
    assert await queue.add_messages(same_file[:1]) == 1
    assert await queue.add_messages(same_file[1:]) == 0
    assert await queue.counts() == QueueCounts(pending=1)


async def test_live_mail_is_claimed_before_any_backlog_then_newest_first(
    queue: Repository,
) -> None:
    await queue.add_messages([new_message(u) for u in (1, 2, 3)])  # INBOX's first sync
    await queue.mailbox_synced("work", "INBOX")
    await queue.add_messages([new_message(4)])  # arrived after INBOX caught up: live
    await queue.add_messages([new_message(u, mailbox="Archive") for u in (1, 2)])  # backlog
    claimed = await queue.claim_batch("w#1", 10, 60)
    assert [(m.subject, m.id) for m in claimed] == [
        ("Message 4", 4),
        ("Message 2", 6),
        ("Message 1", 5),
        ("Message 3", 3),
        ("Message 2", 2),
        ("Message 1", 1),
    ]


async def test_a_recreated_mailbox_is_backlog_until_its_rescan_is_stored(
    queue: Repository,
) -> None:
    await queue.add_messages([new_message(1)], SyncAdvance("work", "INBOX", 1, 1))
    await queue.mailbox_synced("work", "INBOX")
    await queue.add_messages([replace(new_message(5), uidvalidity=2)])  # during the rescan
    await queue.add_messages([new_message(2)])  # live
    claimed = await queue.claim_batch("w#1", 10, 60)
    assert [m.id for m in claimed] == [3, 2, 1]  # the rescan's message is backlog
