"""The requests- and tokens-per-minute budget, on a fake clock."""

from __future__ import annotations

import asyncio
import math

import pytest

from muninmaild.ai.budget import RateBudget


class FakeTime:
    """A clock that moves only when the budget sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    @property
    def waited(self) -> float:
        return sum(self.sleeps)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def budget(fake: FakeTime, rpm: int = 1000, tpm: int = 60_000) -> RateBudget:
    return RateBudget(rpm, tpm, clock=fake.clock, sleep=fake.sleep)


async def test_requests_within_the_budget_go_at_once(fake: FakeTime) -> None:
    b = budget(fake, rpm=3, tpm=1000)
    for _ in range(3):
        await b.acquire(300)
    assert fake.sleeps == []


async def test_requests_per_minute_wait_for_the_oldest_to_leave_the_minute(
    fake: FakeTime,
) -> None:
    b = budget(fake, rpm=2)
    await b.acquire(1)
    await b.acquire(1)
    await b.acquire(1)
    assert fake.waited == pytest.approx(60.0)  # the third goes when the first is a minute old


async def test_never_more_requests_than_the_budget_in_any_minute(fake: FakeTime) -> None:
    b = budget(fake, rpm=60)
    sent: list[float] = []
    for _ in range(200):
        await b.acquire(1)
        sent.append(fake.now)
    busiest = max(sum(1 for t in sent if start <= t < start + 60) for start in sent)
    assert busiest == 60


async def test_tokens_per_minute_refill_at_limit_over_sixty(fake: FakeTime) -> None:
    b = budget(fake, tpm=600)  # 10 tokens a second
    await b.acquire(600)
    await b.acquire(100)
    assert fake.waited == pytest.approx(10.0)


async def test_a_request_larger_than_the_minute_goes_alone_when_full(fake: FakeTime) -> None:
    b = budget(fake, tpm=100)
    await b.acquire(500)
    assert fake.sleeps == []
    await b.acquire(10)  # pays for the overdraft first: 410 tokens at 100/60 a second
    assert fake.waited == pytest.approx(410 * 60 / 100)


async def test_a_large_request_waits_until_the_bucket_is_full_not_forever(fake: FakeTime) -> None:
    b = budget(fake, tpm=100)
    await b.acquire(50)
    await asyncio.wait_for(b.acquire(10_000), timeout=5)
    assert fake.waited == pytest.approx(30.0)


async def test_settle_gives_back_what_was_over_estimated(fake: FakeTime) -> None:
    b = budget(fake, tpm=600)
    await b.acquire(600)
    b.settle(estimated=600, actual=100)
    await b.acquire(500)
    assert fake.sleeps == []


async def test_settle_charges_what_was_under_estimated(fake: FakeTime) -> None:
    b = budget(fake, tpm=600)
    await b.acquire(100)
    b.settle(estimated=100, actual=400)
    assert b.ready_in(200) == 0
    assert b.ready_in(201) == pytest.approx(0.1)


async def test_settle_never_overfills(fake: FakeTime) -> None:
    b = budget(fake, tpm=600)
    b.settle(estimated=5000, actual=0)
    await b.acquire(600)
    assert fake.sleeps == []
    assert b.ready_in(1) == pytest.approx(0.1)


async def test_server_reporting_less_lowers_ours_until_its_reset(fake: FakeTime) -> None:
    b = budget(fake, tpm=60_000)  # 1,000 tokens a second
    b.observe_headers(
        {"x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "12.5"}
    )
    await b.acquire(1000)
    assert fake.waited == pytest.approx(12.5 + 1.0)


async def test_server_reporting_more_is_not_taken(fake: FakeTime) -> None:
    b = budget(fake, tpm=600)
    await b.acquire(600)
    b.observe_headers(
        {"x-ratelimit-remaining-tokens-minute": "600", "x-ratelimit-reset-tokens-minute": "1"}
    )
    assert b.ready_in(600) == pytest.approx(60.0)


def test_lowered_budget_within_its_remaining_still_goes(fake: FakeTime) -> None:
    b = budget(fake, tpm=60_000)
    b.observe_headers(
        {"x-ratelimit-remaining-tokens-minute": "5000", "x-ratelimit-reset-tokens-minute": "40"}
    )
    assert b.ready_in(5000) == 0
    assert b.ready_in(6000) == pytest.approx(40 + 1.0)


def test_header_names_are_case_insensitive(fake: FakeTime) -> None:
    b = budget(fake, tpm=60_000)
    b.observe_headers(
        {"X-RateLimit-Remaining-Tokens-Minute": "0", "X-RateLimit-Reset-Tokens-Minute": "5"}
    )
    assert b.ready_in(1) > 5


def test_missing_reset_holds_for_a_minute(fake: FakeTime) -> None:
    b = budget(fake, tpm=60_000)
    b.observe_headers({"x-ratelimit-remaining-tokens-minute": "0"})
    assert b.ready_in(1) == pytest.approx(60.001)


@pytest.mark.parametrize("garbage", ["", "abc", "-5", "nan", "inf", "1e400", "0x10", "½"])
def test_garbage_values_are_ignored(fake: FakeTime, garbage: str) -> None:
    b = budget(fake, rpm=10, tpm=1000)
    b.observe_headers(
        {
            "x-ratelimit-remaining-tokens-minute": garbage,
            "x-ratelimit-remaining-requests-minute": garbage,
            "x-ratelimit-remaining-requests-day": garbage,
            "x-ratelimit-reset-requests-day": "100",
        }
    )
    assert b.ready_in(1000) == 0


def test_garbage_reset_falls_back_to_a_minute(fake: FakeTime) -> None:
    b = budget(fake, tpm=60_000)
    b.observe_headers(
        {"x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "soon"}
    )
    assert 60 <= b.ready_in(1) <= 61


def test_absurd_minute_reset_is_capped_at_a_minute(fake: FakeTime) -> None:
    b = budget(fake, tpm=60_000)
    b.observe_headers(
        {"x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "99999"}
    )
    assert b.ready_in(1) <= 61


async def test_requests_minute_headers_lower_the_request_bucket(fake: FakeTime) -> None:
    b = budget(fake, rpm=30)  # one request every two seconds
    b.observe_headers(
        {"x-ratelimit-remaining-requests-minute": "0", "x-ratelimit-reset-requests-minute": "20"}
    )
    await b.acquire(1)
    assert fake.waited == pytest.approx(20.0)  # the server's reset


async def test_spent_daily_quota_holds_requests_until_the_daily_reset(fake: FakeTime) -> None:
    b = budget(fake)
    b.observe_headers(
        {"x-ratelimit-remaining-requests-day": "1", "x-ratelimit-reset-requests-day": "3600"}
    )
    await b.acquire(1)  # the last one today
    assert fake.sleeps == []
    await b.acquire(1)
    assert fake.waited == pytest.approx(3600.0)
    await b.acquire(1)  # a new day: free again until the server says otherwise
    assert fake.waited == pytest.approx(3600.0)


def test_an_older_answer_does_not_raise_the_daily_count(fake: FakeTime) -> None:
    b = budget(fake)
    b.observe_headers(
        {"x-ratelimit-remaining-requests-day": "0", "x-ratelimit-reset-requests-day": "3600"}
    )
    b.observe_headers(
        {"x-ratelimit-remaining-requests-day": "5", "x-ratelimit-reset-requests-day": "3599"}
    )
    assert b.ready_in(1) == pytest.approx(3600.0)


async def test_pause_lets_nothing_through(fake: FakeTime) -> None:
    b = budget(fake)
    b.pause_until(7.5)
    b.pause_until(2.0)  # a shorter pause does not shorten the longer one
    await b.acquire(1)
    assert fake.waited == pytest.approx(7.5)


@pytest.mark.parametrize("delay", [0.0, -3.0, math.nan, math.inf])
def test_pointless_pauses_are_ignored(fake: FakeTime, delay: float) -> None:
    b = budget(fake)
    b.pause_until(delay)
    assert b.ready_in(1) == 0


async def test_waiters_are_served_in_order(fake: FakeTime) -> None:
    b = budget(fake, rpm=1)
    served: list[tuple[int, float]] = []

    async def ask(number: int) -> None:
        await b.acquire(1)
        served.append((number, fake.now))

    await asyncio.gather(*(ask(n) for n in range(4)))
    assert [n for n, _ in served] == [0, 1, 2, 3]
    assert [t - 1000.0 for _, t in served] == pytest.approx([0, 60, 120, 180])


async def test_a_cancelled_waiter_takes_nothing(fake: FakeTime) -> None:
    gate, waiting = asyncio.Event(), asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        waiting.set()
        await gate.wait()

    b = RateBudget(1, 1000, clock=fake.clock, sleep=slow_sleep)
    await b.acquire(1)
    waiter = asyncio.create_task(b.acquire(1))
    await asyncio.wait_for(waiting.wait(), 10)  # the waiter waits for its turn
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    fake.now += 60
    assert b.ready_in(1000) == 0


def test_limits_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateBudget(-1, 100)
    with pytest.raises(ValueError, match="positive"):
        RateBudget(10, tokens_per_day=-1)


def test_a_limit_of_zero_is_no_limit(fake: FakeTime) -> None:
    b = RateBudget(0, 0, clock=fake.clock, sleep=fake.sleep)
    assert b.ready_in(10**9) == 0


async def test_real_clock_and_sleep() -> None:
    """Built without a clock, the budget waits on the real one until the pause is over."""
    b = RateBudget(1000, 60_000)
    b.pause_until(0.02)
    assert 0.0 < b.ready_in(1) <= 0.02
    await asyncio.wait_for(b.acquire(1), 10)
    assert b.ready_in(1) == 0  # the real clock has passed the pause
