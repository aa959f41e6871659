"""A requests-per-minute and tokens-per-minute budget for one process.

Requests: at most the limit in any 60 s (a sliding log). Tokens: a token bucket (capacity =
the per-minute limit, refilled at limit/60 a second). The server's `x-ratelimit-*` headers
correct both: when it says fewer remain than we think, we take its word until its reset time,
since its window is the one that answers 429. A 429 pauses everything for its retry delay, and
a spent daily request quota holds requests until the daily reset.

Concurrency is not limited here (the processor's workers are); waiters are served in order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

_MINUTE = 60.0
_DAY = 86400.0
# Never sleep for less: a wait computed as 1e-12 s would spin.
_MIN_WAIT = 0.001


class _Bucket:
    """A token bucket that can be held at the server's figure until the server's reset."""

    def __init__(self, capacity: float, now: float) -> None:
        self.capacity = capacity
        self.rate = capacity / _MINUTE
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

    def lower(self, remaining: float, reset_in: float, now: float) -> None:
        if remaining < self.level:
            self.level = remaining
            self.hold_until = max(self.hold_until, now + reset_in)


class _Window:
    """At most `limit` requests in any 60 s: a sliding log of when each one went.

    A bucket that starts full lets a whole minute's budget through at once and then refills,
    so a fresh start could send almost twice the limit within one minute; a log cannot.
    """

    def __init__(self, limit: float) -> None:
        self.capacity = limit
        self._sent: deque[float] = deque()

    def refill(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - _MINUTE:
            self._sent.popleft()

    def wait_for(self, amount: float, now: float) -> float:
        if len(self._sent) + amount <= self.capacity:
            return 0.0
        return self._sent[0] + _MINUTE - now

    def take(self, now: float) -> None:
        self._sent.append(now)

    def lower(self, remaining: float, reset_in: float, now: float) -> None:
        """The server counts fewer left: hold the difference until its reset."""
        missing = int(self.capacity - len(self._sent) - remaining)
        if missing > 0:
            expires = now + reset_in - _MINUTE  # these phantom entries run out at the reset
            self._sent.extend([expires] * missing)
            self._sent = deque(sorted(self._sent))


class RateBudget:
    """Waits until a request and its tokens fit in the per-minute limits."""

    def __init__(
        self,
        requests_per_minute: int,
        tokens_per_minute: int,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if requests_per_minute <= 0 or tokens_per_minute <= 0:
            raise ValueError("requests_per_minute and tokens_per_minute must be positive")
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._requests = _Window(float(requests_per_minute))
        self._tokens = _Bucket(float(tokens_per_minute), now)
        self._paused_until = now
        self._day_remaining: float | None = None
        self._day_reset_at = now
        self._lock = asyncio.Lock()
        # Requests that had to wait for the budget, and how long they waited (for the metrics).
        self.waits = 0
        self.waited_s = 0.0

    async def acquire(self, tokens: int) -> None:
        """Wait until one request and `tokens` tokens fit, then take them."""
        started = self._clock()
        waited = self._lock.locked()  # only a request sleeping for the budget holds the lock
        async with self._lock:
            while (delay := self.ready_in(tokens)) > 0:
                waited = True
                await self._sleep(max(delay, _MIN_WAIT))
            self._take(tokens)
        if waited:
            self.waits += 1
            self.waited_s += self._clock() - started

    def ready_in(self, tokens: int) -> float:
        """Seconds until a request of `tokens` tokens could go (0 when it could go now)."""
        now = self._refill()
        waits = [
            self._paused_until - now,
            self._day_wait(now),
            self._requests.wait_for(1, now),
            self._tokens.wait_for(max(tokens, 0), now),
        ]
        return max(0.0, *waits)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the tokens taken for a request once its real size is known."""
        self._refill()
        tokens = self._tokens
        tokens.level = min(tokens.capacity, tokens.level + estimated - max(actual, 0))

    def pause_until(self, delay_s: float) -> None:
        """Let nothing through for `delay_s` seconds (after a 429)."""
        if math.isfinite(delay_s) and delay_s > 0:
            self._paused_until = max(self._paused_until, self._clock() + delay_s)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Take the server's view of what remains from its `x-ratelimit-*` headers."""
        lower = {name.lower(): value for name, value in headers.items()}
        now = self._refill()
        self._observe_bucket(self._tokens, lower, "tokens-minute", now)
        self._observe_bucket(self._requests, lower, "requests-minute", now)
        self._observe_day(lower, now)

    def _refill(self) -> float:
        now = self._clock()
        self._requests.refill(now)
        self._tokens.refill(now)
        return now

    def _take(self, tokens: int) -> None:
        self._requests.take(self._clock())
        self._tokens.level -= max(tokens, 0)
        if self._day_remaining is not None:
            self._day_remaining -= 1

    def _day_wait(self, now: float) -> float:
        if self._day_remaining is None:
            return 0.0
        if now >= self._day_reset_at:
            self._day_remaining = None  # a new day: unknown until the server says again
            return 0.0
        return 0.0 if self._day_remaining >= 1 else self._day_reset_at - now

    def _observe_bucket(
        self, bucket: _Bucket | _Window, headers: Mapping[str, str], window: str, now: float
    ) -> None:
        remaining = _number(headers.get(f"x-ratelimit-remaining-{window}"), bucket.capacity)
        reset_in = _number(headers.get(f"x-ratelimit-reset-{window}"), _MINUTE)
        if remaining is not None:
            bucket.lower(remaining, _MINUTE if reset_in is None else reset_in, now)

    def _observe_day(self, headers: Mapping[str, str], now: float) -> None:
        remaining = _number(headers.get("x-ratelimit-remaining-requests-day"), math.inf)
        reset_in = _number(headers.get("x-ratelimit-reset-requests-day"), _DAY)
        if remaining is None or reset_in is None:
            return
        known = math.inf if self._day_remaining is None else self._day_remaining
        # Answers can arrive out of order: within one day keep the lowest count seen.
        new_day = now + reset_in > self._day_reset_at + _MINUTE
        if new_day or remaining < known:
            self._day_remaining = remaining
            self._day_reset_at = now + reset_in


def _number(text: str | None, ceiling: float) -> float | None:
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
