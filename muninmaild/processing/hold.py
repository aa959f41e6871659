"""Why the processor claims nothing for now, and until when.

Three reasons hold every worker, not one message:

    account     401, 402, 403, or 404 for the model: every request would fail the same way.
                Held for a long backoff (`ACCOUNT_HOLD_S` doubling up to `ACCOUNT_HOLD_MAX_S`),
                said once in the journal at error priority; `muninctl resume`, `muninctl
                reload` and SIGHUP end it at once.
    quota       an hourly or daily quota is spent: held until the window has room again.
    rate_limit  a per-minute limit answered 429: held for its retry delay.

The messages themselves stay as they were (an account hold) or wait for the hold's end without
using an attempt (quota, rate limit): see `retry.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from muninmaild.protocol import iso

log = logging.getLogger("muninmaild.processing.processor")

Reason = Literal["account", "quota", "rate_limit"]
ACCOUNT_HOLD_S = 600.0
ACCOUNT_HOLD_MAX_S = 7200.0


@dataclass(frozen=True)
class HoldView:
    reason: Reason
    message: str
    until: datetime  # UTC

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "until": iso(self.until) or ""}

    def line(self) -> str:
        """For STATUS= (ASCII is forced there)."""
        until = self.until.astimezone().strftime("%H:%M")
        if self.reason == "quota":
            return f"model quota spent until {until}"
        return f"model held until {until}: {self.message}"


class Hold:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._reason: Reason | None = None
        self._message = ""
        self._until = 0.0
        self._until_wall = wall()
        self._account_streak = 0  # account holds since the last answer, or the last resume
        self._reported = False  # the account's trouble is in the journal at error priority

    def active(self) -> HoldView | None:
        if self._reason is None or self._clock() >= self._until:
            return None
        return HoldView(self._reason, self._message, self._until_wall)

    def remaining(self) -> float:
        return max(0.0, self._until - self._clock()) if self.active() else 0.0

    def account(self, message: str) -> float:
        """Every request fails for the account or the model: hold for a long backoff."""
        current = self.active()
        if current is not None and current.reason == "account":
            return self.remaining()  # the workers that asked at the same time
        seconds = min(ACCOUNT_HOLD_S * 2.0**self._account_streak, ACCOUNT_HOLD_MAX_S)
        self._account_streak += 1
        if self._set("account", seconds, message):
            if not self._reported:  # once, until the model answers again
                log.error("processing held for %.0f min: %s", seconds / 60, message)
                self._reported = True
            else:
                log.warning("still held for %.0f min: %s", seconds / 60, message)
        return seconds

    def quota(self, seconds: float, message: str) -> None:
        if self._set("quota", seconds, message):
            log.warning("processing held: %s", message)

    def rate_limit(self, seconds: float, message: str) -> None:
        self._set("rate_limit", seconds, message)

    def answered(self) -> None:
        """The model answered: whatever held the account is over."""
        self._account_streak = 0
        self._reported = False

    def clear(self, why: str) -> bool:
        """Try again now (resume, reload); True when a hold was lifted. The backoff starts
        afresh; the journal is not told again until the model has answered."""
        held = self.active()
        self._reason = None
        self._account_streak = 0
        if held is None:
            return False
        log.info("processing hold lifted (%s): trying the model again", why)
        return True

    def _set(self, reason: Reason, seconds: float, message: str) -> bool:
        """Hold for `seconds` unless a longer hold stands; True when this starts a hold or
        changes its reason (worth a journal line), False when it only extends one."""
        now = self._clock()
        current = self.active()
        if current is not None and self._until >= now + seconds:
            return False
        self._reason, self._message = reason, message
        self._until = now + seconds
        self._until_wall = self._wall() + timedelta(seconds=seconds)
        return current is None or current.reason != reason
