"""How long the backlog will take: the pace measured over a recent window and the model's
budget, as `status` shows them (pure functions; docs/protocol.md).

The pace is the answers stored by every instance over the last `PACE_WINDOW_S` seconds, divided
by the time since the first of them (at least `MIN_SPAN_S`, so two quick answers are no pace),
so a drain that stopped shows its pace falling. The budget's pace is what its windows sustain
as they refill (the per-minute, hourly and daily request and token limits, tokens per request
taken from today's average); a quota that is spent adds the wait until it has room. The
estimate uses the smaller of the two; with neither known there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from muninmaild.ai.budget import Limits
from muninmaild.protocol import iso

PACE_WINDOW_S = 600.0
MIN_SPAN_S = 10.0
Json = dict[str, Any]


@dataclass(frozen=True)
class Pace:
    """Answers stored since the window's start, and when the first of them was."""

    answers: int
    first_at: datetime | None


def per_minute(pace: Pace, now: datetime) -> float | None:
    """Messages a minute at the measured pace; None when too little was measured."""
    if pace.answers < 2 or pace.first_at is None:
        return None
    span = max((now - pace.first_at).total_seconds(), MIN_SPAN_S)
    return pace.answers * 60.0 / span


def budget_per_minute(limits: Limits | None, today: tuple[int, int]) -> float | None:
    """Model requests a minute the budget sustains; None when it sets no limit."""
    if limits is None:
        return None
    requests = _smallest(
        limits.requests_per_minute, limits.requests_per_hour / 60, limits.requests_per_day / 1440
    )
    tokens = _smallest(
        limits.tokens_per_minute, limits.tokens_per_hour / 60, limits.tokens_per_day / 1440
    )
    used_requests, used_tokens = today
    if tokens is not None and used_requests and used_tokens:
        by_tokens = tokens / (used_tokens / used_requests)
        requests = by_tokens if requests is None else min(requests, by_tokens)
    return requests


def _smallest(*limits: float) -> float | None:
    found = [x for x in limits if x > 0]
    return min(found) if found else None


def estimate(
    messages: int,
    pace: float | None,
    budget: float | None,
    *,
    paused: bool,
    held_until: datetime | None,
    now: datetime,
) -> Json:
    """`status`'s `backlog`: what is left, the paces, and when it will be done."""
    rate, limited_by = _rate(pace, budget)
    if paused:
        limited_by = "paused"
    eta_s = None
    if messages == 0:
        eta_s = 0.0
    elif rate and not paused:
        wait = max((held_until - now).total_seconds(), 0.0) if held_until else 0.0
        eta_s = wait + messages / rate * 60.0
    return {
        "messages": messages,
        "pace_per_min": _round(pace),
        "budget_per_min": _round(budget),
        "limited_by": limited_by,
        "eta_s": None if eta_s is None else round(eta_s),
        "done_at": None if eta_s is None else iso(now + timedelta(seconds=eta_s)),
    }


def _rate(pace: float | None, budget: float | None) -> tuple[float | None, str | None]:
    if pace is not None and (budget is None or pace <= budget):
        return pace, "pace"
    if budget is not None:
        return budget, "budget"
    return None, None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
