"""Hourly and daily windows, and spent quotas, on a fake clock: hours pass without waiting."""

from __future__ import annotations

import asyncio

import pytest

from muninmaild.ai.budget import DAY, HOUR, PROBE_S, RateBudget
from tests.test_ai_budget import FakeTime


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def free_tier(fake: FakeTime) -> RateBudget:
    return RateBudget(
        30,
        64_000,
        requests_per_hour=900,
        requests_per_day=14_400,
        tokens_per_hour=1_000_000,
        tokens_per_day=1_000_000,
        clock=fake.clock,
        sleep=fake.sleep,
    )


async def test_tokens_per_day_refill_continuously(fake: FakeTime) -> None:
    b = RateBudget(tokens_per_day=86_400, clock=fake.clock, sleep=fake.sleep)
    await b.acquire(86_400)  # the whole day at once
    assert b.ready_in(1) == pytest.approx(1.0)  # one token a second comes back
    assert b.ready_in(3600) == pytest.approx(3600.0)
    fake.now += 600
    assert b.ready_in(600) == 0


async def test_requests_per_hour_hold_back_a_fast_stream(fake: FakeTime) -> None:
    b = RateBudget(requests_per_hour=60, clock=fake.clock, sleep=fake.sleep)
    for _ in range(60):
        await b.acquire(1)
    assert fake.sleeps == []
    await b.acquire(1)
    assert fake.waited == pytest.approx(HOUR / 60)  # one more a minute from now on


async def test_the_free_tier_spends_its_daily_tokens_in_under_half_an_hour(fake: FakeTime) -> None:
    b = free_tier(fake)
    sent = 0
    while (await b.acquire(5_000, max_wait=60.0)) is None:
        sent += 1
    # 64,000 a minute for a day of 1,000,000: the per-minute window alone would allow more.
    assert 190 <= sent <= 220
    assert fake.now - 1000.0 < 30 * 60
    shortage = b.shortage(5_000)
    assert shortage is not None and shortage.window == "tokens per day" and shortage.quota


async def test_a_wait_longer_than_max_wait_is_returned_not_waited(fake: FakeTime) -> None:
    b = RateBudget(tokens_per_day=10_000, clock=fake.clock, sleep=fake.sleep)
    assert await b.acquire(10_000) is None
    shortage = await b.acquire(5_000, max_wait=60.0)
    assert shortage is not None
    assert shortage.wait_s == pytest.approx(5_000 / (10_000 / DAY))
    assert fake.sleeps == []  # nothing waited
    assert b.ready_in(5_000) == pytest.approx(shortage.wait_s)  # and nothing taken


async def test_per_minute_waits_are_waited_in_place(fake: FakeTime) -> None:
    b = RateBudget(2, clock=fake.clock, sleep=fake.sleep)
    await b.acquire(1)
    await b.acquire(1)
    assert await b.acquire(1, max_wait=60.0) is None
    assert fake.waited == pytest.approx(60.0)


def test_a_spent_quota_holds_for_a_probe_interval_when_nothing_says_when(
    fake: FakeTime,
) -> None:
    b = free_tier(fake)
    hold = b.spent("tokens per day")
    assert hold >= PROBE_S
    assert b.quota_spent
    shortage = b.shortage(1)
    assert shortage is not None and shortage.window == "tokens per day" and shortage.quota


def test_a_spent_quota_holds_as_long_as_the_service_says(fake: FakeTime) -> None:
    b = free_tier(fake)
    assert b.spent("requests per day", told_s=5400.0) == 5400.0
    assert b.ready_in(1) == pytest.approx(5400.0)


async def test_after_the_hold_one_probe_goes_and_the_others_wait_for_its_answer(
    fake: FakeTime,
) -> None:
    b = free_tier(fake)
    b.spent("tokens per day")
    fake.now += b.ready_in(1)
    assert await b.acquire(1000, max_wait=60.0) is None  # the probe
    other = asyncio.create_task(b.acquire(1000, max_wait=60.0))
    await asyncio.sleep(0)
    assert not other.done()  # waiting for the probe's answer
    b.spent("tokens per day")  # the probe got the same 429
    b.settle(1000, 0)
    shortage = await other
    assert shortage is not None and shortage.quota and shortage.wait_s >= PROBE_S
    fake.now += b.ready_in(1)
    assert await b.acquire(1000, max_wait=60.0) is None  # the next probe, a while later
    other = asyncio.create_task(b.acquire(1000, max_wait=60.0))
    await asyncio.sleep(0)
    b.settle(1000, 900)  # it got through
    assert await other is None  # and the others go at once
    assert not b.quota_spent


async def test_a_probe_without_an_answer_holds_the_others_for_the_interval(
    fake: FakeTime,
) -> None:
    b = free_tier(fake)
    b.spent("tokens per hour")
    fake.now += b.ready_in(1)
    await b.acquire(1000)  # the probe, then a timeout: no answer
    other = asyncio.create_task(b.acquire(1000, max_wait=0.05))
    shortage = await other  # a probe that does not come back holds the others
    assert shortage is not None and shortage.wait_s == PROBE_S
    b.settle(1000, 0)
    assert b.quota_spent  # still: the next request is a probe again
    assert await b.acquire(1000) is None


def test_lift_ends_the_hold_but_the_quota_is_still_probed_first(fake: FakeTime) -> None:
    b = RateBudget(10, 1000, clock=fake.clock, sleep=fake.sleep)
    b.spent("tokens per day")
    b.lift()
    assert b.ready_in(1) == 0
    assert b.quota_spent


def test_a_quota_without_a_configured_window_still_holds(fake: FakeTime) -> None:
    b = RateBudget(clock=fake.clock, sleep=fake.sleep)  # no limits at all (a local server)
    assert b.spent("requests per hour") == PROBE_S
    assert b.ready_in(1) == pytest.approx(PROBE_S)


async def test_a_spent_window_takes_no_refunds_until_a_request_gets_through(
    fake: FakeTime,
) -> None:
    b = RateBudget(tokens_per_day=100_000, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        await b.acquire(2_000)  # four requests out when the first 429 arrives
    b.spent("tokens per day")
    for _ in range(4):
        b.settle(2_000, 0)  # their 429s: the service counted nothing, but it has no room
    assert b.ready_in(2_000) >= PROBE_S
    fake.now += PROBE_S
    shortage = b.shortage(2_000)
    assert shortage is not None and shortage.window == "tokens per day"  # still refilling


async def test_lift_refills_a_window_the_service_said_was_spent(fake: FakeTime) -> None:
    b = RateBudget(tokens_per_day=100_000, clock=fake.clock, sleep=fake.sleep)
    b.spent("tokens per day")
    b.lift()
    assert b.ready_in(50_000) == 0
