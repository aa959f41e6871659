"""How long the backlog will take (control/backlog.py) and the progress line of `wait-idle`
(muninctl/progress.py): pure functions over a status, with the time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninctl import progress
from muninctl.commands.status import backlog_line
from muninmaild.ai.budget import Limits
from muninmaild.control import backlog
from muninmaild.control.backlog import Pace
from muninmaild.records import Analysis, TokenUsage
from muninmaild.store.repository import Repository
from muninmaild.store.requeue import PACE_KEPT
from tests.clock import Clock
from tests.factories import claim_one, complete_one, new_message

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("pace", "per_minute"),
    [
        (Pace(0, None), None),
        (Pace(1, ago(30)), None),  # one answer is no pace
        (Pace(60, ago(60)), 60.0),
        (Pace(600, ago(600)), 60.0),
        (Pace(5, ago(1)), 30.0),  # quick answers are spread over at least 10 s
        (Pace(60, ago(300)), 12.0),  # a drain that stopped: the pace falls
    ],
)
def test_the_pace_is_answers_since_the_first_of_the_window(
    pace: Pace, per_minute: float | None
) -> None:
    assert backlog.per_minute(pace, NOW) == per_minute


FREE_TIER = Limits(30, 900, 14_400, 64_000, 1_000_000, 1_000_000)


@pytest.mark.parametrize(
    ("limits", "today", "per_minute"),
    [
        (None, (0, 0), None),
        (Limits(), (10, 5000), None),
        (Limits(requests_per_minute=30), (0, 0), 30.0),
        (FREE_TIER, (0, 0), 10.0),  # 14,400 a day: 10 a minute, whatever the minute allows
        # 1,000,000 tokens a day at 1,000 a request: 1,000 requests a day, 0.69 a minute.
        (FREE_TIER, (100, 100_000), 1_000_000 / 1440 / 1000),
        (Limits(tokens_per_hour=60_000), (10, 10_000), 1.0),
    ],
)
def test_the_budget_pace_is_what_every_window_sustains(
    limits: Limits | None, today: tuple[int, int], per_minute: float | None
) -> None:
    found = backlog.budget_per_minute(limits, today)
    assert found == pytest.approx(per_minute) if per_minute else found is None


def estimate(messages: int, pace: float | None, budget: float | None, **kw: Any) -> Any:
    options: dict[str, Any] = {"paused": False, "held_until": None, "now": NOW} | kw
    return backlog.estimate(messages, pace, budget, **options)


def test_the_estimate_takes_the_slower_of_pace_and_budget() -> None:
    by_pace = estimate(600, 60.0, 100.0)
    assert (by_pace["limited_by"], by_pace["eta_s"]) == ("pace", 600)
    assert by_pace["done_at"] == "2026-12-03T12:10:00Z"
    by_budget = estimate(600, 60.0, 10.0)
    assert (by_budget["limited_by"], by_budget["eta_s"]) == ("budget", 3600)
    # Nothing measured yet: the budget alone; neither: no estimate.
    assert estimate(20, None, 10.0)["eta_s"] == 120
    assert estimate(20, None, None) | {"messages": 20} == {
        "messages": 20,
        "pace_per_min": None,
        "budget_per_min": None,
        "limited_by": None,
        "eta_s": None,
        "done_at": None,
    }


def test_a_spent_quota_adds_its_wait_and_a_pause_has_no_estimate() -> None:
    held = estimate(60, 60.0, None, held_until=NOW + timedelta(minutes=30))
    assert held["eta_s"] == 1800 + 60
    paused = estimate(60, 60.0, None, paused=True)
    assert (paused["limited_by"], paused["eta_s"]) == ("paused", None)
    assert estimate(0, None, None)["eta_s"] == 0


async def test_the_pace_counts_answers_of_every_instance_since_a_time(repo: Repository) -> None:
    await repo.add_messages([new_message(n) for n in (1, 2, 3)])
    for _ in range(2):
        held = await claim_one(repo, "t", 60)
        assert held is not None
        await complete_one(repo, held.id, "t", Analysis("s", (), ()), TokenUsage(), "m")
    count, first = await repo.answer_pace(datetime.now(UTC) - timedelta(minutes=10))
    assert count == 2 and first is not None and first.tzinfo is not None
    assert (await repo.answer_pace(datetime.now(UTC) + timedelta(seconds=1)))[0] == 0


async def test_a_requeue_leaves_the_pace_as_it_was_until_its_answers_age_out(
    any_engine: AsyncEngine,
) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    repo = Repository(any_engine, clock=clock)
    await repo.add_messages([new_message(n) for n in range(1, 7)])
    for _ in range(6):
        held = await claim_one(repo, "t", 60)
        assert held is not None
        await complete_one(repo, held.id, "t", Analysis("s", (), ()), TokenUsage(), "m")
        clock.advance(30)
    ten_minutes_ago = clock.now - timedelta(minutes=10)
    before = await repo.answer_pace(ten_minutes_ago)
    assert before == (6, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    # Sent through the model again: their answers are gone, the pace still counts them.
    assert await repo.requeue([1, 2, 3, 4]) == 4
    assert await repo.answer_pace(ten_minutes_ago) == before
    # Answered again: the new answers count beside the removed ones, once each.
    held = await claim_one(repo, "t", 60)
    assert held is not None
    await complete_one(repo, held.id, "t", Analysis("s", (), ()), TokenUsage(), "m")
    assert (await repo.answer_pace(ten_minutes_ago))[0] == 7
    # Only what was stored since the time asked about counts, removed or not.
    assert (await repo.answer_pace(datetime(2026, 12, 1, 9, 1, 30, tzinfo=UTC)))[0] == 4
    # The note of removed answers outlives the window the pace looks back over, then goes.
    assert PACE_KEPT.total_seconds() >= backlog.PACE_WINDOW_S
    clock.advance(2 * 3600)
    assert await repo.requeue([5]) == 1
    assert await repo.answer_pace(clock.now - timedelta(minutes=10)) == (0, None)
    async with any_engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM pace_removed"))).scalar() == 0


async def test_answers_of_one_second_removed_by_two_requeues_add_up(
    any_engine: AsyncEngine,
) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    repo = Repository(any_engine, clock=clock)
    await repo.add_messages([new_message(n) for n in (1, 2, 3)])
    for _ in range(3):  # all three in the same second
        held = await claim_one(repo, "t", 60)
        assert held is not None
        await complete_one(repo, held.id, "t", Analysis("s", (), ()), TokenUsage(), "m")
    clock.advance(60)
    assert await repo.requeue([1]) == 1
    assert await repo.requeue([2, 3]) == 2
    assert await repo.answer_pace(clock.now - timedelta(minutes=10)) == (
        3,
        clock.now - timedelta(seconds=60),
    )


def status(completed: int, left: int, **b: Any) -> dict[str, Any]:
    queue = {"pending": left, "processing": 0, "completed": completed, "failed": 0}
    return {"queue": queue, "backlog": {"messages": left} | b}


def test_the_progress_line_says_done_of_total_pace_and_time_left() -> None:
    line = progress.line(status(130, 90, pace_per_min=30.0, eta_s=180), done_before=100)
    assert line == "30 of 120 done, 30/min, about 3m 00s left"
    assert progress.line(status(100, 50, limited_by="paused"), 100) == (
        "0 of 50 done, processor paused"
    )
    assert (
        progress.line(status(150, 0, pace_per_min=12.5, eta_s=0), 100) == "50 of 50 done, 12.5/min"
    )


def test_status_says_when_the_backlog_will_be_done() -> None:
    found = estimate(600, 60.0, 10.0)
    assert backlog_line(found).startswith("600 message(s) to process, done in about 1h 00m (")
    assert backlog_line(found).endswith("at the model budget's pace of 10/min)")
    assert backlog_line(estimate(0, None, None)) == "none"
    assert backlog_line(estimate(5, None, None)).endswith("no pace measured yet")
    assert backlog_line(estimate(5, 1.0, None, paused=True)).endswith("the processor is paused")
