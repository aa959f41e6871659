"""The answer cache in the store: kept with the results, found by key and age, bounded, shared
by instances that race to store the same answer, dropped by a requeue."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.records import Analysis, Todo, TokenUsage
from muninmaild.store.answer_cache import decode_analysis, encode_analysis
from muninmaild.store.repository import Completion, Repository
from tests.clock import Clock
from tests.factories import new_message

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
ANSWER = Analysis(
    "Ann wants the Q4 figures by Friday.",
    ("requires_response",),
    (Todo("Send Ann the Q4 figures", "high", date(2026, 12, 4)), Todo("Reply", "low")),
)
KEY = "a" * 64


async def answered(
    repo: Repository,
    email_id: int,
    origin: str = "model",
    key: str | None = KEY,
    analysis: Analysis = ANSWER,
) -> set[int]:
    """Claim message `email_id` and store an answer for it as the completer does."""
    # The claim takes the newest first: the others it took go back at once.
    claimed = await repo.claim_batch(f"t#{email_id}", 1000, 60)
    (msg,) = [m for m in claimed if m.id == email_id]
    for other in claimed:
        if other.id != email_id:
            assert await repo.release(other.id, other.token)
    usage = TokenUsage(900, 80) if origin == "model" else TokenUsage()
    completion = Completion(
        email_id, msg.token, analysis, usage, "gpt-oss-120b", origin=origin, cache_key=key
    )
    return await repo.complete_many([completion])


async def test_a_model_answer_is_kept_under_its_key_and_found_again(
    any_engine: AsyncEngine,
) -> None:
    clock = Clock(T0)
    repo = Repository(any_engine, clock)
    await repo.add_messages([new_message(1)])
    assert await repo.cached_answer(KEY, T0 - timedelta(days=7)) is None
    assert await answered(repo, 1) == {1}
    found = await repo.cached_answer(KEY, T0 - timedelta(days=7))
    assert found is not None
    assert found.analysis == ANSWER
    assert (found.model, found.usage, found.created_at) == ("gpt-oss-120b", TokenUsage(900, 80), T0)
    assert await repo.cached_answer("b" * 64, T0 - timedelta(days=7)) is None
    assert await repo.answer_cache_size() == 1


async def test_an_answer_older_than_the_limit_is_not_found(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    await answered(repo, 1)
    now = datetime.now(UTC)
    assert await repo.cached_answer(KEY, now - timedelta(minutes=1)) is not None
    assert await repo.cached_answer(KEY, now + timedelta(seconds=1)) is None


async def test_only_the_model_s_answers_are_kept(repo: Repository) -> None:
    """An answer from the cache is not stored again; a skipped one has no key."""
    await repo.add_messages([new_message(1), new_message(2), new_message(3)])
    await answered(repo, 1, origin="cache")
    await answered(repo, 2, origin="skipped", key=None)
    await answered(repo, 3, origin="model", key=None)  # the cache is off
    assert await repo.answer_cache_size() == 0


async def test_two_instances_storing_the_same_answer_at_once_both_succeed(
    any_engine: AsyncEngine,
) -> None:
    """Two daemons that asked the same request at the same moment: one answer is kept."""
    one, two = Repository(any_engine), Repository(any_engine)
    await one.add_messages([new_message(1), new_message(2)])
    (a,) = await one.claim_batch("one#1", 1, 60)
    (b,) = await two.claim_batch("two#1", 1, 60)
    other = Analysis("Another wording.", (), ())
    usage = TokenUsage(9, 1)
    done = await asyncio.gather(
        one.complete_many(
            [Completion(a.id, a.token, ANSWER, usage, "m", None, "model", None, KEY)]
        ),
        two.complete_many([Completion(b.id, b.token, other, usage, "m", None, "model", None, KEY)]),
    )
    assert list(done) == [{a.id}, {b.id}]
    assert await one.answer_cache_size() == 1
    found = await two.cached_answer(KEY, T0 - timedelta(days=1))
    assert found is not None and found.analysis in (ANSWER, other)
    # Both messages have their own results, whichever answer the cache kept.
    assert {m["summary"] for m in await one.results_for([a.id, b.id])} == {
        ANSWER.summary,
        other.summary,
    }


async def test_the_same_key_twice_in_one_batch_is_kept_once(repo: Repository) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    claimed = await repo.claim_batch("t#1", 2, 60)
    batch = [
        Completion(m.id, m.token, ANSWER, TokenUsage(5, 1), "m", origin="model", cache_key=KEY)
        for m in claimed
    ]
    assert await repo.complete_many(batch) == {1, 2}
    assert await repo.answer_cache_size() == 1


async def test_pruning_drops_old_answers_and_the_oldest_beyond_the_count(
    any_engine: AsyncEngine,
) -> None:
    clock = Clock(T0 - timedelta(days=30))
    repo = Repository(any_engine, clock)
    await repo.add_messages([new_message(n) for n in range(1, 7)])
    for n in range(1, 7):  # one answer a day, the newest today
        clock.now = T0 - timedelta(days=6 - n)
        await answered(repo, n, key=f"{n:064d}")
    clock.now = T0
    assert await repo.prune_answer_cache(T0 - timedelta(days=10)) == 0
    assert await repo.prune_answer_cache(T0 - timedelta(days=3, hours=1)) == 2  # days 5 and 4
    assert await repo.answer_cache_size() == 4
    assert await repo.prune_answer_cache(T0 - timedelta(days=30), keep=2) == 2
    assert await repo.cached_answer(f"{6:064d}", T0 - timedelta(days=30)) is not None
    assert await repo.cached_answer(f"{5:064d}", T0 - timedelta(days=30)) is not None
    assert await repo.cached_answer(f"{4:064d}", T0 - timedelta(days=30)) is None
    assert await repo.prune_answer_cache(T0 - timedelta(days=30), keep=5) == 0
    assert await repo.answer_cache_size() == 2


async def test_a_requeue_drops_the_cached_answer_so_the_model_is_asked_again(
    repo: Repository,
) -> None:
    await repo.add_messages([new_message(1), new_message(2), new_message(3)])
    await answered(repo, 1, key=KEY)
    await answered(repo, 2, origin="cache", key=KEY)
    await answered(repo, 3, key="c" * 64)
    assert await repo.requeue([2]) == 1  # a message answered from the cache: the entry goes
    assert await repo.cached_answer(KEY, T0 - timedelta(days=30)) is None
    assert await repo.cached_answer("c" * 64, T0 - timedelta(days=30)) is not None
    assert await repo.requeue(None) == 0  # no failed messages: nothing dropped
    assert await repo.answer_cache_size() == 1


async def test_today_s_answers_are_counted_by_origin(any_engine: AsyncEngine) -> None:
    clock = Clock(T0 - timedelta(days=1))
    repo = Repository(any_engine, clock)
    await repo.add_messages([new_message(n) for n in range(1, 6)])
    await answered(repo, 1)  # yesterday
    clock.now = T0
    await answered(repo, 2, key="d" * 64)
    await answered(repo, 3, origin="cache")
    await answered(repo, 4, origin="skipped", key=None)
    await answered(repo, 5, origin="skipped", key=None)
    midnight = T0.replace(hour=0)
    assert await repo.answers_since(midnight) == {"model": 1, "cache": 1, "skipped": 2}
    async with any_engine.begin() as conn:  # results stored before the origin was recorded
        await conn.execute(text("UPDATE results SET origin = NULL WHERE email_id = 5"))
    assert await repo.answers_since(midnight) == {"model": 1, "cache": 1, "skipped": 1}


async def test_show_and_list_say_where_the_answer_came_from(repo: Repository) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    await answered(repo, 2, origin="cache")
    (msg,) = await repo.claim_batch("t#1", 1, 60)
    note = "bulk: List-Id"
    skipped = Completion(1, msg.token, ANSWER, TokenUsage(), "rules", None, "skipped", note)
    await repo.complete_many([skipped])
    shown = await repo.message_detail(1)
    assert shown is not None
    assert (shown["origin"], shown["origin_note"], shown["sent"]) == ("skipped", note, None)
    assert shown["tokens"] == {"in": 0, "out": 0} and shown["model"] == "rules"
    listed = await repo.list_messages(details=True)
    assert [(m["id"], m["origin"], m["origin_note"]) for m in listed] == [
        (2, "cache", None),
        (1, "skipped", note),
    ]
    assert "origin" not in (await repo.list_messages())[0]  # only with details


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[]",
        '{"summary": "s", "flags": []}',
        '{"summary": "s", "flags": [], "todos": [{"task": "t", "priority": "soon"}]}',
        '{"summary": "s", "flags": [], "todos": [{"task": "t", "priority": "low", "due": "x"}]}',
    ],
)
def test_a_damaged_entry_reads_as_no_answer(stored: str) -> None:
    assert decode_analysis(stored) is None


def test_answers_round_trip_through_their_json() -> None:
    assert decode_analysis(encode_analysis(ANSWER)) == ANSWER
    plain = Analysis("Kurz: Grüße aus Zürich.", (), ())
    assert decode_analysis(encode_analysis(plain)) == plain
