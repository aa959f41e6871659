"""The shared waiting helpers: one backoff for every retrying loop, and racing awaitables."""

from __future__ import annotations

import asyncio

import pytest

from muninmaild.waiting import backoff, first_of, wait_event


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0), (7, 100.0), (50, 100.0)],
)
def test_backoff_doubles_from_the_base_up_to_the_cap(attempt: int, expected: float) -> None:
    assert backoff(attempt, 2.0, 100.0) == expected


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.5), (0.5, 1.0), (0.999, 1.499)])
def test_jitter_spreads_the_delay_from_half_to_one_and_a_half(rand: float, factor: float) -> None:
    assert backoff(3, 1.0, 1000.0, lambda: rand) == pytest.approx(4.0 * factor)


def test_jitter_never_takes_the_delay_past_the_cap() -> None:
    assert backoff(10, 1.0, 60.0, lambda: 0.999) == 60.0


async def test_first_of_returns_the_first_result_and_cancels_the_rest() -> None:
    release = asyncio.Event()
    cancelled = asyncio.Event()

    async def never() -> str:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return "never"

    async def soon() -> str:
        await release.wait()
        return "soon"

    race = asyncio.create_task(first_of(never(), soon()))
    release.set()
    assert await race == "soon"
    assert cancelled.is_set()  # awaited before first_of returned, not merely asked to stop


async def test_first_of_raises_what_the_first_one_raised() -> None:
    async def fails() -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        await first_of(asyncio.Event().wait(), fails())


async def test_first_of_prefers_the_earlier_argument_when_both_are_done() -> None:
    async def value(v: str) -> str:
        return v

    assert await first_of(value("call"), value("abort")) == "call"


async def test_cancelling_first_of_cancels_what_it_waits_for() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def waits() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    race = asyncio.create_task(first_of(waits(), asyncio.Event().wait()))
    await started.wait()
    race.cancel()
    with pytest.raises(asyncio.CancelledError):
        await race
    assert cancelled.is_set()


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.001) is False
    event.set()
    assert await wait_event(event, 3600) is True
