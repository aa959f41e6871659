"""What happens to a message after a failed model call: pure functions over the error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from muninmaild.errors import (
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelRequestRejected,
)

AUTH_HOLD_S = 300.0
Action = Literal["retry", "fail", "snooze"]


@dataclass(frozen=True)
class Outcome:
    action: Action
    delay_s: float
    message: str


def decide(
    error: BaseException,
    attempts: int,
    max_attempts: int,
    delay_for: Callable[[int], float],
) -> Outcome:
    """What to do with a message whose model call raised `error` on attempt `attempts`;
    `delay_for(attempt)` is the backoff before a retry."""
    message = describe(error)
    if isinstance(error, ModelRateLimited):
        wait = max(1.0, error.retry_after_s)
        note = f"rate limited by the model service, retrying in {wait:.0f} s"
        return Outcome("snooze", wait, note)
    if isinstance(error, ModelAuthError):
        return Outcome("snooze", AUTH_HOLD_S, message)
    if isinstance(error, ModelRequestRejected):
        return Outcome("fail", 0.0, message)
    if attempts >= max_attempts:
        return Outcome("fail", 0.0, f"gave up after {attempts} attempts: {message}")
    return Outcome("retry", delay_for(attempts), message)


def describe(error: BaseException) -> str:
    """A readable reason; our own errors already read well, others name their type."""
    if isinstance(error, ModelError):
        return str(error) or type(error).__name__
    detail = str(error)
    return f"internal error ({type(error).__name__}{': ' + detail if detail else ''})"
