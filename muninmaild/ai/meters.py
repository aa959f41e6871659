"""The windows a rate budget keeps: token buckets, the per-minute request log, and a flag for
the one request that probes a spent quota (no I/O, no clock of their own: `now` is passed in)."""

from __future__ import annotations

import asyncio
import math
from collections import deque

MINUTE = 60.0


class Bucket:
    """A token bucket that can be held at the server's figure until the server's reset."""

    def __init__(self, name: str, capacity: float, period: float, now: float) -> None:
        self.name = name
        self.period = period
        self.capacity = capacity
        self.rate = capacity / period
        self.level = capacity
        self.updated = now
        self.hold_until = now

    def refill(self, now: float) -> None:
        start = max(self.updated, self.hold_until)
        if now > start:
            self.level = min(self.capacity, self.level + (now - start) * self.rate)
        self.updated = max(self.updated, now)

    def wait_for(self, amount: float, now: float) -> float:
        # A request larger than the whole bucket goes alone once the bucket is full.
        missing = min(amount, self.capacity) - self.level
        if missing <= 0:
            return 0.0
        return max(self.hold_until - now, 0.0) + missing / self.rate

    def take(self, amount: float, now: float) -> None:
        self.level -= amount

    def lower(self, remaining: float, reset_in: float, now: float) -> None:
        if remaining < self.level:
            self.level = remaining
            self.hold_until = max(self.hold_until, now + reset_in)

    def empty(self) -> None:
        self.level = min(self.level, 0.0)


class SlidingLog:
    """At most `capacity` requests in any 60 s: a sliding log of when each one went."""

    def __init__(self, name: str, limit: float) -> None:
        self.name = name
        self.period = MINUTE
        self.capacity = limit
        self._sent: deque[float] = deque()

    def refill(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - MINUTE:
            self._sent.popleft()

    def wait_for(self, amount: float, now: float) -> float:
        if len(self._sent) + amount <= self.capacity:
            return 0.0
        return self._sent[0] + MINUTE - now

    def take(self, amount: float, now: float) -> None:
        self._sent.append(now)

    def lower(self, remaining: float, reset_in: float, now: float) -> None:
        """The server counts fewer left: hold the difference until its reset."""
        missing = int(self.capacity - len(self._sent) - remaining)
        if missing > 0:
            expires = now + reset_in - MINUTE  # these phantom entries run out at the reset
            self._sent.extend([expires] * missing)
            self._sent = deque(sorted(self._sent))


class Flag:
    """An event that can also be waited on until it is cleared."""

    def __init__(self) -> None:
        self._set = False
        self._cleared = asyncio.Event()
        self._cleared.set()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        self._cleared.clear()

    def clear(self) -> None:
        self._set = False
        self._cleared.set()

    async def wait_cleared(self, within_s: float) -> bool:
        """Wait until cleared, at most `within_s` seconds; True when it was."""
        try:
            async with asyncio.timeout(None if math.isinf(within_s) else within_s):
                await self._cleared.wait()
        except TimeoutError:
            return False
        return True


def header_number(text: str | None, ceiling: float) -> float | None:
    """A header's non-negative number, capped at `ceiling`; None for anything else."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return min(value, ceiling)
