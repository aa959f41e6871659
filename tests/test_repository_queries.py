"""The control socket's queries (list, show, todos, wait-idle, status) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.records import Analysis, Todo, TokenUsage
from muninmaild.store.repository import Repository
from tests.clock import Clock
from tests.factories import claim_one, complete_one, new_message

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock[datetime]:
    return Clock(START)


@pytest.fixture
def queue(any_engine: AsyncEngine, clock: Clock[datetime]) -> Repository:
    return Repository(any_engine, clock)


async def complete_next(queue: Repository, analysis: Analysis, usage: TokenUsage) -> int:
    msg = await claim_one(queue, "w#1", 60)
    assert msg is not None
    assert await complete_one(queue, msg.id, "w#1", analysis, usage, "m-1")
    return msg.id


async def test_list_is_newest_first_with_flags_and_filters(
    queue: Repository, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(1), new_message(2)])
    clock.now = START + timedelta(hours=2)
    await queue.add_messages([new_message(3)])
    done = await complete_next(queue, Analysis("s", ("urgent", "x"), ()), TokenUsage())

    everything = await queue.list_messages()
    assert [m["id"] for m in everything] == sorted((m["id"] for m in everything), reverse=True)
    assert len(everything) == 3
    first_done = next(m for m in everything if m["id"] == done)
    assert sorted(first_done["flags"]) == ["urgent", "x"]
    assert first_done["status"] == "completed"

    pending = await queue.list_messages(status="pending")
    assert {m["subject"] for m in pending} == {"Message 1", "Message 2"}
    recent = await queue.list_messages(since=START + timedelta(hours=1))
    assert [m["subject"] for m in recent] == ["Message 3"]
    assert len(await queue.list_messages(limit=1)) == 1
    assert await queue.list_messages(status="failed") == []


async def test_message_detail_has_headers_results_and_tokens(queue: Repository) -> None:
    msg = new_message(1, headers={"list-id": "<news.example.com>"})
    await queue.add_messages([msg])
    todos = (Todo("Send it", "high", date(2026, 12, 1)), Todo("Read it", "low", None))
    email_id = await complete_next(
        queue, Analysis("Ann asks.", ("requires_response",), todos), TokenUsage(100, 20)
    )
    await queue.record_usage(email_id, "m-1", TokenUsage(5, 1))

    detail = await queue.message_detail(email_id)
    assert detail is not None
    assert detail["subject"] == "Message 1" and detail["headers"] == {
        "list-id": "<news.example.com>"
    }
    assert detail["summary"] == "Ann asks." and detail["model"] == "m-1"
    assert detail["flags"] == ["requires_response"]
    assert [t.pop("done") for t in detail["todos"]] == [False, False]
    first = detail["todos"][0]["todo_id"]
    assert detail["todos"] == [
        {"task": "Send it", "priority": "high", "due": "2026-12-01", "todo_id": first},
        {"task": "Read it", "priority": "low", "due": None, "todo_id": first + 1},
    ]
    assert (detail["tokens"]["in"], detail["tokens"]["out"]) == (105, 21)
    assert detail["attempts"] == 1 and detail["status"] == "completed"
    assert await queue.message_detail(email_id + 100) is None


async def test_message_detail_of_an_unprocessed_message(queue: Repository) -> None:
    await queue.add_messages([new_message(1)])
    (row,) = await queue.list_messages()
    detail = await queue.message_detail(row["id"])
    assert detail is not None
    assert (detail["summary"], detail["flags"], detail["todos"]) == (None, [], [])
    assert detail["tokens"] == {"in": 0, "out": 0}


async def test_open_todos_dated_first_then_by_priority(
    queue: Repository, any_engine: AsyncEngine
) -> None:
    await queue.add_messages([new_message(1), new_message(2)])
    first = await complete_next(
        queue,
        Analysis("a", (), (Todo("later", "low", date(2026, 12, 9)), Todo("whenever", "low"))),
        TokenUsage(),
    )
    await complete_next(
        queue,
        Analysis("b", (), (Todo("soon", "low", date(2026, 12, 1)), Todo("important", "high"))),
        TokenUsage(),
    )
    todos = await queue.open_todos()
    assert [t["task"] for t in todos] == ["soon", "later", "important", "whenever"]
    assert todos[1]["id"] == first and todos[1]["due"] == "2026-12-09"
    assert todos[1]["subject"] == "Message 2"  # newest first
    async with any_engine.begin() as conn:
        await conn.execute(text("UPDATE todos SET done = true WHERE task = 'soon'"))
    assert [t["task"] for t in await queue.open_todos(limit=2)] == ["later", "important"]


async def test_unsettled_counts_scheduled_retries_unless_asked_not_to(
    queue: Repository, clock: Clock[datetime]
) -> None:
    assert await queue.unsettled() == 0
    await queue.add_messages([new_message(1), new_message(2)])
    msg = await claim_one(queue, "w#1", 60)
    assert msg is not None
    assert await queue.unsettled() == 2
    await queue.retry(msg.id, "w#1", "model down", 600)
    assert await queue.unsettled() == 2
    assert await queue.unsettled(include_scheduled=False) == 1
    clock.now = START + timedelta(seconds=601)
    assert await queue.unsettled(include_scheduled=False) == 2


async def test_last_error_is_the_newest_one(queue: Repository, clock: Clock[datetime]) -> None:
    assert await queue.last_error() is None
    await queue.add_messages([new_message(1), new_message(2)])
    for reason in ("first reason", "second reason"):
        clock.now += timedelta(seconds=10)
        msg = await claim_one(queue, "w#1", 60)
        assert msg is not None
        await queue.fail(msg.id, "w#1", reason)
    last = await queue.last_error()
    assert last is not None and last.message == "second reason" and last.at == clock.now
