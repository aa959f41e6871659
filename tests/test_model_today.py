"""Today's model figures for `status`: requests and tokens since midnight UTC, and the limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from muninmaild.ai.budget import RateBudget
from muninmaild.control import views
from muninmaild.records import TokenUsage
from muninmaild.store.repository import Repository
from tests.factories import new_message


async def test_requests_and_tokens_since_midnight(repo: Repository) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    await repo.record_usage(1, "m", TokenUsage(100, 20))
    await repo.record_usage(2, "m", TokenUsage(50, 5))
    await repo.record_usage(2, "m", TokenUsage())  # nothing spent: not a request that counts
    assert await repo.usage_since(views.start_of_day()) == (2, 175)
    assert await repo.usage_since(datetime.now(UTC) + timedelta(minutes=1)) == (0, 0)


def test_start_of_day_is_midnight_utc() -> None:
    now = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    assert views.start_of_day(now) == datetime(2026, 11, 29, tzinfo=UTC)


def test_today_names_the_daily_limits_or_none() -> None:
    budget = RateBudget(30, requests_per_day=14_400, tokens_per_day=1_000_000)
    assert views.today((3, 900), budget) == {
        "requests": 3,
        "tokens": 900,
        "requests_limit": 14_400,
        "tokens_limit": 1_000_000,
    }
    unlimited = {"requests": 0, "tokens": 0, "requests_limit": None, "tokens_limit": None}
    assert views.today((0, 0), RateBudget()) == unlimited
    assert views.today((0, 0), None) == unlimited
