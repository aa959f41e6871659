"""How the daemon waits: backoff delays after failures, and racing awaitables.

Every loop that retries (the processor's claims, the completer's writes, a fetch, a message's
model call) spaces its tries with `backoff`, so they all grow and cap the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def backoff(
    attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] | None = None
) -> float:
    """Exponential backoff: attempt 1 waits `base_s`, each further one twice as long, never
    more than `cap_s`.

    With `rand` (a source of numbers in [0, 1)) the delay is spread from x0.5 to x1.5, so that
    many things that failed together do not come back together.
    """
    delay: float = base_s * 2 ** max(0, attempt - 1)
    if rand is not None:
        delay *= 0.5 + rand()
    return min(cap_s, delay)


async def first_of(*awaitables: Awaitable[T]) -> T:
    """The result of whichever awaitable finishes first (or its exception); the others are
    cancelled and awaited before this returns, so nothing is left running."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(t for t in tasks if t in done).result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Whether `event` was set within `timeout_s` seconds."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return event.is_set()
    return True
