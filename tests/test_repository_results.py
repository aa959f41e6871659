"""The store's side of results written back and worked through: keyword intents and their
outcomes, to-dos closed and reopened, the digest's reads and its delivery record. SQLite and
PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.records import Analysis, KeywordOutcome, Todo, TokenUsage
from muninmaild.store.repository import Repository
from tests.clock import Clock
from tests.factories import claim_oldest, complete_one, new_message

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
FLAGGED = Analysis("Ann asks.", ("urgent", "requires_response"), ())
PLAIN = Analysis("A note.", (), ())


@pytest.fixture
def clock() -> Clock[datetime]:
    return Clock(START)


@pytest.fixture
def queue(any_engine: AsyncEngine, clock: Clock[datetime]) -> Repository:
    repo = Repository(any_engine, clock)
    repo.write_keywords_for(["work"])
    return repo


async def process(queue: Repository, *analyses: Analysis) -> list[int]:
    """Claim and complete the next messages with these answers, in order; their ids."""
    ids = []
    for analysis in analyses:
        msg = await claim_oldest(queue, "w#1", 60)
        assert msg is not None
        assert await complete_one(queue, msg.id, "w#1", analysis, TokenUsage(), "m")
        ids.append(msg.id)
    return ids


# -- keywords ---------------------------------------------------------------------------------


async def test_only_flagged_messages_of_keyword_accounts_get_an_intent(queue: Repository) -> None:
    await queue.add_messages([new_message(1), new_message(2), new_message(3, account="home")])
    flagged, plain, other = await process(queue, FLAGGED, PLAIN, FLAGGED)

    targets = await queue.keyword_targets("work", "me")
    assert [(t.email_id, t.uid, t.flags) for t in targets] == [
        (flagged, 1, ("requires_response", "urgent"))
    ]
    assert await queue.keyword_targets("home", "me") == []
    assert await queue.keyword_write(plain) is None and await queue.keyword_write(other) is None
    pending = await queue.keyword_write(flagged)
    assert pending is not None and pending["state"] == "pending"
    assert await queue.keyword_writes_due(["work"]) == 1


async def test_a_written_intent_is_never_taken_again_until_a_requeue(queue: Repository) -> None:
    await queue.add_messages([new_message(1)])
    (email_id,) = await process(queue, FLAGGED)
    (target,) = await queue.keyword_targets("work", "me")
    written = KeywordOutcome(target, "written", ("munin_urgent", "$label1"))
    assert await queue.record_keyword_outcomes([written]) == 1
    assert await queue.keyword_targets("work", "me") == []
    assert await queue.keyword_writes_due(["work"]) == 0
    record = await queue.keyword_write(email_id)
    assert record is not None
    assert (record["state"], record["keywords"]) == ("written", ["munin_urgent", "$label1"])
    assert record["written_at"] == "2026-11-29T12:00:00Z"
    # A second outcome for the same intent changes nothing.
    assert await queue.record_keyword_outcomes([KeywordOutcome(target, "skipped")]) == 0

    assert await queue.requeue([email_id]) == 1
    assert await queue.keyword_write(email_id) is None
    await process(queue, FLAGGED)
    (again,) = await queue.keyword_targets("work", "me")
    assert again.email_id == email_id and again.queued_at == START


async def test_an_outcome_for_an_intent_replaced_meanwhile_is_not_stored(
    queue: Repository, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(1)])
    (email_id,) = await process(queue, FLAGGED)
    (old,) = await queue.keyword_targets("work", "me")
    clock.now = START + timedelta(minutes=1)
    await queue.requeue([email_id])
    await process(queue, FLAGGED)
    assert await queue.record_keyword_outcomes([KeywordOutcome(old, "written", ("k",))]) == 0
    record = await queue.keyword_write(email_id)
    assert record is not None and record["state"] == "pending"


async def test_a_pending_outcome_waits_and_counts_an_attempt(
    queue: Repository, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(1)])
    await process(queue, FLAGGED)
    (target,) = await queue.keyword_targets("work", "me")
    later = KeywordOutcome(target, "pending", note="refused", retry_in_s=3600)
    assert await queue.record_keyword_outcomes([later]) == 1
    assert await queue.keyword_targets("work", "me") == []
    assert await queue.keyword_writes_due(["work"]) == 0
    clock.now = START + timedelta(hours=1)
    (again,) = await queue.keyword_targets("work", "me")
    assert again.attempts == 1
    record = await queue.keyword_write(target.email_id)
    assert record is not None and (record["state"], record["note"]) == ("pending", "refused")


async def test_a_mailbox_another_live_instance_fetches_is_left_to_it(queue: Repository) -> None:
    await queue.add_messages([new_message(1), new_message(2, mailbox="Lists")])
    await process(queue, FLAGGED, FLAGGED)
    assert await queue.acquire_fetch_lease("work", "INBOX", "other", 60)
    assert [t.mailbox for t in await queue.keyword_targets("work", "me")] == ["Lists"]
    assert len(await queue.keyword_targets("work", "other")) == 2


# -- to-dos -----------------------------------------------------------------------------------

TODOS = Analysis(
    "Ann asks.",
    (),
    (
        Todo("Pay the invoice", "high", date(2026, 11, 20)),
        Todo("Read the minutes", "low", None),
        Todo("Book the room", "medium", date(2026, 12, 10)),
    ),
)


async def test_todos_have_ids_and_close_and_reopen(
    queue: Repository, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(1)])
    (email_id,) = await process(queue, TODOS)
    today = date(2026, 11, 29)
    listed = await queue.todo_list(today)
    assert [t["task"] for t in listed] == ["Pay the invoice", "Book the room", "Read the minutes"]
    assert [t["overdue"] for t in listed] == [True, False, False]
    assert {t["id"] for t in listed} == {email_id} and {t["account"] for t in listed} == {"work"}
    pay, book, read = (t["todo_id"] for t in listed)

    assert await queue.set_todos_done([pay, read], True) == (2, [])
    assert await queue.set_todos_done([pay], True) == (0, [])  # already closed
    assert [t["todo_id"] for t in await queue.todo_list(today)] == [book]
    everything = await queue.todo_list(today, include_done=True)
    assert [(t["todo_id"], t["done"], t["overdue"]) for t in everything] == [
        (pay, True, False),
        (book, False, False),
        (read, True, False),
    ]
    assert everything[0]["done_at"] == "2026-11-29T12:00:00Z"
    assert await queue.todo_list(today, overdue=True) == []

    assert await queue.set_todos_done([pay], False) == (1, [])
    (overdue,) = await queue.todo_list(today, overdue=True)
    assert overdue["todo_id"] == pay and overdue["done_at"] is None
    detail = await queue.message_detail(email_id)
    assert detail is not None
    assert [t["done"] for t in detail["todos"]] == [False, True, False]


async def test_unknown_todo_ids_change_nothing(queue: Repository) -> None:
    await queue.add_messages([new_message(1)])
    await process(queue, TODOS)
    first = (await queue.todo_list(date(2026, 11, 29)))[0]["todo_id"]
    assert await queue.set_todos_done([first, 9999], True) == (0, [9999])
    assert not any(t["done"] for t in await queue.todo_list(date(2026, 11, 29), include_done=True))


async def test_todos_of_one_account(queue: Repository) -> None:
    await queue.add_messages([new_message(1), new_message(2, account="home")])
    await process(queue, TODOS, TODOS)
    home = await queue.todo_list(date(2026, 11, 29), account="home")
    assert len(home) == 3 and {t["account"] for t in home} == {"home"}


# -- the digest -------------------------------------------------------------------------------


async def test_digest_messages_are_those_queued_in_the_period(
    queue: Repository, clock: Clock[datetime]
) -> None:
    await queue.add_messages([new_message(1, headers={"list-id": "<news.example.com>"})])
    clock.now = START + timedelta(hours=2)
    await queue.add_messages([new_message(2), new_message(3, account="home")])
    await process(queue, FLAGGED)

    found = await queue.digest_messages(START, START + timedelta(hours=3))
    assert [m["subject"] for m in found] == ["Message 1", "Message 2", "Message 3"]
    assert found[0]["headers"] == {"list-id": "<news.example.com>"}
    assert found[0]["summary"] == "Ann asks." and found[0]["flags"] == [
        "requires_response",
        "urgent",
    ]
    later = await queue.digest_messages(START + timedelta(hours=1), START + timedelta(hours=3))
    assert [m["subject"] for m in later] == ["Message 2", "Message 3"]
    home = await queue.digest_messages(START, START + timedelta(hours=3), "home")
    assert [m["subject"] for m in home] == ["Message 3"]


async def test_one_digest_per_account_and_period(queue: Repository, clock: Clock[datetime]) -> None:
    first, made = await queue.begin_digest("work", "INBOX", "24h/2026-11-29", "<d1@x>")
    assert made and first.state == "appending" and first.delivered_at is None
    again, made_again = await queue.begin_digest("work", "INBOX", "24h/2026-11-29", "<d2@x>")
    assert not made_again and again == first
    clock.now = START + timedelta(minutes=1)
    done = await queue.digest_delivered(first.id)
    assert done == replace(first, state="delivered", delivered_at=clock.now)
    other, made_other = await queue.begin_digest("home", "INBOX", "24h/2026-11-29", "<d3@x>")
    assert made_other and other.id != first.id
