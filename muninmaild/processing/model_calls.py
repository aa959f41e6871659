"""What this process's model calls did: outcomes, latency and tokens, counted in plain Python.

The handler records every call here; the metrics (service/metrics.py) read these counts when
they are asked for, so nothing of Prometheus is imported or kept unless someone scrapes.
Counts start at zero with the process, as Prometheus counters do.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field

from muninmaild.errors import (
    ModelAnswerInvalid,
    ModelAuthError,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from muninmaild.records import TokenUsage

# Seconds. The offline backend answers in well under 10 ms; a hosted model in 0.5 to 30 s.
LATENCY_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

# Every outcome a call can have, so each is reported (as 0) before it first happens.
OUTCOMES = (
    "ok",
    "rate_limited",  # HTTP 429
    "unavailable",  # connection errors, timeouts, 5xx
    "invalid_answer",
    "auth_error",  # the service refused the key (or the account)
    "rejected",  # the service refused the request itself
    "error",  # anything else: a bug of ours, in the journal
    "cancelled",  # the lease was lost or the drain deadline passed meanwhile
)

_BY_TYPE: tuple[tuple[type[BaseException], str], ...] = (
    (ModelRateLimited, "rate_limited"),
    (ModelUnavailable, "unavailable"),
    (ModelAnswerInvalid, "invalid_answer"),
    (ModelAuthError, "auth_error"),
    (ModelRequestRejected, "rejected"),
    (asyncio.CancelledError, "cancelled"),
)


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    return next((name for kind, name in _BY_TYPE if isinstance(error, kind)), "error")


@dataclass
class ModelCalls:
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    # Latency of the calls that ended with an answer or an error (not cancelled ones):
    # bucket i counts calls of at most LATENCY_BUCKETS[i] seconds, the last one the rest.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    seconds: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0

    def record(self, error: BaseException | None, seconds: float, usage: TokenUsage) -> None:
        outcome = outcome_of(error)
        self.outcomes[outcome] += 1
        self.tokens_in += usage.tokens_in
        self.tokens_out += usage.tokens_out
        if outcome != "cancelled":
            self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.seconds += seconds

    @property
    def timed(self) -> int:
        """How many calls the latency counts cover."""
        return sum(self.buckets)
