"""What happens to a message after a failed model call: pure functions over the error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from muninmaild.errors import (
    ModelAccountError,
    ModelError,
    ModelQuotaSpent,
    ModelRateLimited,
    ModelRequestRejected,
)

# release: back to the queue as it was, attempt given back (the account or the model failed,
# not the message); snooze: back to the queue after `delay_s`, attempt given back.
Action = Literal["retry", "fail", "snooze", "release"]


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
    if isinstance(error, ModelQuotaSpent):
        # Released, not snoozed: the processor's hold keeps it waiting, and a resume that ends
        # the hold finds every message due at once.
        return Outcome("release", max(1.0, error.retry_after_s), message)
    if isinstance(error, ModelRateLimited):
        wait = max(1.0, error.retry_after_s)
        note = f"rate limited by the model service, retrying in {wait:.0f} s"
        return Outcome("snooze", wait, note)
    if isinstance(error, ModelAccountError):
        return Outcome("release", 0.0, message)
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
