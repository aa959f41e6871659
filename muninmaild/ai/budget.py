"""The model service's rate limits, kept in this process: requests and tokens per minute, hour
and day.

Every window refills continuously, as the service's does: a token bucket whose capacity is the
window's limit, refilled at limit/window a second. Only requests per minute use a sliding log
instead, so that a fresh start cannot send almost twice the limit within one minute. A limit of
0 is no limit. The server's `x-ratelimit-*` headers correct the minute windows and the daily
request count: when it says fewer remain than we think, we take its word until its reset.

A 429 for a per-minute limit pauses everything for its retry delay. A 429 saying that an hourly
or daily quota is spent (`spent()`) empties that window and holds every request until the window
has room again, never less than `probe_s`: nothing reports when such a quota refills, so we ask
again at most once every `probe_s`, one request at a time, until one gets through.

Time is injected (`clock`, `sleep`), so hours and days pass in tests without waiting.
Concurrency is not limited here (the processor's workers are); waiters are served in order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from muninmaild.ai.meters import MINUTE, Bucket, Flag, SlidingLog, header_number
from muninmaild.config.settings import AISettings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

HOUR = 3600.0
DAY = 86400.0
PERIODS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
# How often a spent quota is asked again when nothing says when it has room.
PROBE_S = 300.0
# Never sleep for less: a wait computed as 1e-12 s would spin.
_MIN_WAIT = 0.001


@dataclass(frozen=True)
class Limits:
    """The six documented windows; 0 is no limit."""

    requests_per_minute: int = 0
    requests_per_hour: int = 0
    requests_per_day: int = 0
    tokens_per_minute: int = 0
    tokens_per_hour: int = 0
    tokens_per_day: int = 0


@dataclass(frozen=True)
class Shortage:
    """A request cannot go for `wait_s` seconds because of `window` ("tokens per day")."""

    wait_s: float
    window: str
    quota: bool  # an hourly or daily window (or a spent quota), not a per-minute one


Meter = Bucket | SlidingLog


class RateBudget:
    """Waits until a request and its tokens fit in every configured window."""

    def __init__(
        self,
        requests_per_minute: int = 0,
        tokens_per_minute: int = 0,
        *,
        requests_per_hour: int = 0,
        requests_per_day: int = 0,
        tokens_per_hour: int = 0,
        tokens_per_day: int = 0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        probe_s: float = PROBE_S,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.probe_s = probe_s
        now = clock()
        self.limits = Limits(
            requests_per_minute,
            requests_per_hour,
            requests_per_day,
            tokens_per_minute,
            tokens_per_hour,
            tokens_per_day,
        )
        self._requests: dict[str, Meter] = {}
        self._tokens: dict[str, Bucket] = {}
        for period, (requests, tokens) in {
            "minute": (requests_per_minute, tokens_per_minute),
            "hour": (requests_per_hour, tokens_per_hour),
            "day": (requests_per_day, tokens_per_day),
        }.items():
            if requests < 0 or tokens < 0:
                raise ValueError("rate limits must be positive, or 0 for none")
            if requests:
                name = f"requests per {period}"
                if period == "minute":
                    self._requests[period] = SlidingLog(name, float(requests))
                else:
                    self._requests[period] = Bucket(name, requests, PERIODS[period], now)
            if tokens:
                name = f"tokens per {period}"
                self._tokens[period] = Bucket(name, tokens, PERIODS[period], now)
        self._paused_until = now
        self._pause_reason = "the model service's rate limit"
        self._probing = False  # a spent quota: one request at a time until one gets through
        self._probe_out = Flag()  # set while that one request is out
        self._emptied: set[str] = set()  # windows the service said are spent
        self._typical = 1000  # tokens of the latest request: what the next one may need
        self._day_remaining: float | None = None
        self._day_reset_at = now
        self._lock = asyncio.Lock()
        # Requests that had to wait for the budget, and how long they waited (for the metrics).
        self.waits = 0
        self.waited_s = 0.0

    async def acquire(self, tokens: int, max_wait: float = math.inf) -> Shortage | None:
        """Wait until one request and `tokens` tokens fit, then take them. A wait longer than
        `max_wait` is not waited: the shortage is returned and nothing is taken. While a probe
        of a spent quota is out, wait for its answer (at most `max_wait`)."""
        started = self._clock()
        waited = self._lock.locked()  # only a request waiting for the budget holds the lock
        async with self._lock:
            while True:
                if self._probe_out.is_set():
                    waited = True
                    if not await self._probe_out.wait_cleared(max_wait):
                        return Shortage(self.probe_s, self._pause_reason, True)
                    continue
                delay = self.ready_in(tokens)
                if delay <= 0:
                    break
                if delay > max_wait:
                    return self.shortage(tokens)
                waited = True
                await self._sleep(max(delay, _MIN_WAIT))
            self._take(tokens)
        if waited:  # counted for the metrics: requests that had to wait for the budget
            self.waits += 1
            self.waited_s += self._clock() - started
        return None

    def ready_in(self, tokens: int) -> float:
        """Seconds until a request of `tokens` tokens could go (0 when it could go now)."""
        found = self.shortage(tokens)
        return 0.0 if found is None else found.wait_s

    def shortage(self, tokens: int) -> Shortage | None:
        """What keeps a request of `tokens` tokens from going now, and for how long."""
        now = self._refill()
        waits = [
            Shortage(self._paused_until - now, self._pause_reason, self._probing),
            Shortage(self._day_wait(now), "requests per day", True),
        ]
        for meters, amount in ((self._requests, 1), (self._tokens, max(tokens, 0))):
            for period, meter in meters.items():
                waits.append(Shortage(meter.wait_for(amount, now), meter.name, period != "minute"))
        longest = max(waits, key=lambda s: s.wait_s)
        return longest if longest.wait_s > 0 else None

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the tokens taken for a request once its real size is known (0: it got no
        answer, or an error answer)."""
        now = self._refill()
        for bucket in self._tokens.values():
            if bucket.name not in self._emptied:  # the service's word is the level there
                bucket.level = min(bucket.capacity, bucket.level + estimated - max(actual, 0))
        if self._probing and actual > 0:
            self._end_probe(now)
        self._probe_out.clear()  # whatever became of it, the probe is back

    def answered(self) -> None:
        """A request got an answer: a spent quota has room again."""
        if self._probing:
            self._end_probe(self._clock())

    def pause_until(self, delay_s: float, reason: str | None = None) -> None:
        """Let nothing through for `delay_s` seconds (after a 429)."""
        if math.isfinite(delay_s) and delay_s > 0:
            until = self._clock() + delay_s
            if until > self._paused_until:
                self._paused_until = until
                self._pause_reason = reason or "the model service's rate limit"

    def spent(self, window: str, told_s: float | None = None) -> float:
        """The service says the quota `window` ("tokens per day") is spent: hold every request
        until it has room again (`told_s` when the service said so), or at least `probe_s`.
        Returns the hold in seconds."""
        now = self._refill()
        meter = self._meter(window)
        if isinstance(meter, Bucket):
            meter.empty()
            self._emptied.add(meter.name)
        if told_s is not None and math.isfinite(told_s) and told_s > 0:
            hold = told_s
        else:
            amount = 1 if window.startswith("requests") else self._typical
            refill = meter.wait_for(amount, now) if meter is not None else 0.0
            hold = max(self.probe_s, refill)
        self._probing = True
        self._paused_until = max(self._paused_until, now + hold)
        self._pause_reason = window
        return hold

    def lift(self) -> None:
        """End a pause or a quota's hold: a person says to try again now. A spent quota is
        still asked by one request first, as if it had room again."""
        now = self._refill()
        self._paused_until = min(self._paused_until, now)
        for bucket in self._buckets():
            if bucket.name in self._emptied:
                bucket.level = bucket.capacity
        self._emptied.clear()

    @property
    def quota_spent(self) -> bool:
        """An hourly or daily quota was spent and no request has got through since."""
        return self._probing

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Take the server's view of what remains from its `x-ratelimit-*` headers."""
        lower = {name.lower(): value for name, value in headers.items()}
        now = self._refill()
        if "minute" in self._tokens:
            self._observe_meter(self._tokens["minute"], lower, "tokens-minute", now)
        if "minute" in self._requests:
            self._observe_meter(self._requests["minute"], lower, "requests-minute", now)
        self._observe_day(lower, now)

    def _buckets(self) -> list[Bucket]:
        meters = [*self._requests.values(), *self._tokens.values()]
        return [meter for meter in meters if isinstance(meter, Bucket)]

    def _meter(self, window: str) -> Meter | None:
        kind, _, period = window.partition(" per ")
        meters: Mapping[str, Meter] = self._requests if kind == "requests" else self._tokens
        return meters.get(period)

    def _end_probe(self, now: float) -> None:
        self._probing = False
        self._emptied.clear()
        self._probe_out.clear()
        self._paused_until = min(self._paused_until, now)

    def _refill(self) -> float:
        now = self._clock()
        for meters in (self._requests, self._tokens):
            for meter in meters.values():
                meter.refill(now)
        return now

    def _take(self, tokens: int) -> None:
        now = self._clock()
        self._typical = max(tokens, 1)
        for meter in self._requests.values():
            meter.take(1, now)
        for bucket in self._tokens.values():
            bucket.take(max(tokens, 0), now)
        if self._day_remaining is not None:
            self._day_remaining -= 1
        if self._probing:
            self._probe_out.set()  # one request tries the spent quota; the others wait for it

    def _day_wait(self, now: float) -> float:
        if self._day_remaining is None:
            return 0.0
        if now >= self._day_reset_at:
            self._day_remaining = None  # a new day: unknown until the server says again
            return 0.0
        return 0.0 if self._day_remaining >= 1 else self._day_reset_at - now

    def _observe_meter(
        self, meter: Meter, headers: Mapping[str, str], window: str, now: float
    ) -> None:
        remaining = header_number(headers.get(f"x-ratelimit-remaining-{window}"), meter.capacity)
        reset_in = header_number(headers.get(f"x-ratelimit-reset-{window}"), MINUTE)
        if remaining is not None:
            meter.lower(remaining, MINUTE if reset_in is None else reset_in, now)

    def _observe_day(self, headers: Mapping[str, str], now: float) -> None:
        remaining = header_number(headers.get("x-ratelimit-remaining-requests-day"), math.inf)
        reset_in = header_number(headers.get("x-ratelimit-reset-requests-day"), DAY)
        if remaining is None or reset_in is None:
            return
        known = math.inf if self._day_remaining is None else self._day_remaining
        # Answers can arrive out of order: within one day keep the lowest count seen.
        new_day = now + reset_in > self._day_reset_at + MINUTE
        if new_day or remaining < known:
            self._day_remaining = remaining
            self._day_reset_at = now + reset_in


def budget_for(settings: AISettings) -> RateBudget:
    """The budget of the windows `settings` configures (0: that window has no limit)."""
    return RateBudget(
        settings.requests_per_minute,
        settings.tokens_per_minute,
        requests_per_hour=settings.requests_per_hour,
        requests_per_day=settings.requests_per_day,
        tokens_per_hour=settings.tokens_per_hour,
        tokens_per_day=settings.tokens_per_day,
    )
