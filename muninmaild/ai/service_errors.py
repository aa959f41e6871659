"""What a service's error answer means, for both HTTP backends (no client library here).

A 429 is a per-minute limit to wait out, or an hourly or daily quota that is spent. 401, 402,
403 and 404 are about the account or the model, never about one message.

Cerebras says which window in the message ("Tokens per day limit exceeded - too many tokens
processed.", type `too_many_tokens_error`) and sends no `retry-after` for a daily quota; only
`x-ratelimit-*-requests-day` and `-tokens-minute` headers are documented.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from muninmaild.ai.budget import RateBudget, Shortage
from muninmaild.errors import (
    ModelAccountError,
    ModelAuthError,
    ModelError,
    ModelQuotaSpent,
    ModelRateLimited,
)

SERVER_MESSAGE_MAX_CHARS = 300
DEFAULT_RETRY_AFTER_S = 60.0
MAX_RETRY_AFTER_S = 86400.0
_WINDOW = re.compile(r"\b(requests|tokens) per (minute|hour|day)\b", re.IGNORECASE)


def server_message(body: object, fallback: str) -> str:
    """The server's own words, from an OpenAI- or Cerebras-style error body."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        body = inner if isinstance(inner, Mapping | str) else body.get("message", body)
        if isinstance(body, Mapping):
            body = body.get("message", "")
    text = body if isinstance(body, str) and body.strip() else fallback
    text = " ".join(str(text).split())
    if len(text) > SERVER_MESSAGE_MAX_CHARS:
        text = text[: SERVER_MESSAGE_MAX_CHARS - 3] + "..."
    return text or "no details given"


def error_param(body: object) -> str:
    """The `param` an error body names ("model" for an unknown model), or ""."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        found = inner if isinstance(inner, Mapping) else body
        param = found.get("param")
        return param if isinstance(param, str) else ""
    return ""


def account_error(status: int, said: str, param: str, model: str) -> ModelError | None:
    """401, 402, 403 and 404 are about the account or the model, never one message."""
    if status in {401, 403}:
        return ModelAuthError(
            f"the model service refused the API key (HTTP {status}): {said}; check ai.api_key_file"
        )
    if status == 402:
        return ModelAccountError(
            f"the model service wants payment (HTTP 402): {said}; check the account's billing"
        )
    if status == 404:
        about_model = param == "model" or "model" in said.lower()
        hint = f"check ai.model ({model!r})" if about_model else "check ai.base_url and ai.model"
        return ModelAccountError(f"the model service does not know it (HTTP 404): {said}; {hint}")
    return None


def rate_limit_error(budget: RateBudget, said: str, headers: Mapping[str, str]) -> ModelRateLimited:
    """The error for a 429 whose server said `said`; the budget pauses or holds accordingly."""
    lower = {name.lower(): value for name, value in headers.items()}
    window = quota_window(said, lower)
    if window is not None:
        told = _retry_after_header(lower, time.time())
        if told is None:
            told = _seconds(lower.get(f"x-ratelimit-reset-{window.replace(' per ', '-')}"))
        hold = budget.spent(window, told)
        return quota_error(Shortage(hold, window, True), known=told is not None, said=said)
    delay = retry_after_seconds(lower)
    budget.pause_until(delay)
    return ModelRateLimited(
        f"the model service is rate limiting us (HTTP 429): {said}; trying again in {delay:.0f} s",
        retry_after_s=delay,
    )


def quota_window(said: str, headers: Mapping[str, str]) -> str | None:
    """ "tokens per day" and the like when a 429 is about an hourly or daily quota, else None."""
    named = _WINDOW.search(said)
    if named:
        kind, period = named.group(1).lower(), named.group(2).lower()
        return None if period == "minute" else f"{kind} per {period}"
    for window in ("requests-day", "tokens-day", "requests-hour", "tokens-hour"):
        if _seconds(headers.get(f"x-ratelimit-remaining-{window}")) == 0:
            return window.replace("-", " per ")
    return None


def quota_error(shortage: Shortage, *, known: bool, said: str = "") -> ModelQuotaSpent:
    """The error for a request that cannot go for `shortage.wait_s` seconds."""
    until = datetime.now().astimezone() + timedelta(seconds=shortage.wait_s)
    when = until.strftime("%H:%M" if shortage.wait_s < 43200 else "%Y-%m-%d %H:%M")
    reason = f" ({said.rstrip('.')})" if said else ""
    message = f"model quota spent until {when}: {shortage.window}{reason}"
    return ModelQuotaSpent(message, shortage.wait_s, shortage.window, known)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float:
    """How long a 429 asks us to wait: `retry-after` (seconds or an HTTP date), else the
    `x-ratelimit-reset-*` of an exhausted limit, else any minute reset, else 60 s."""
    lower = {name.lower(): value for name, value in headers.items()}
    delay = _retry_after_header(lower, time.time() if now is None else now)
    if delay is None:
        delay = _reset_header(lower)
    if delay is None:
        delay = DEFAULT_RETRY_AFTER_S
    return min(max(delay, 1.0), MAX_RETRY_AFTER_S)


def _retry_after_header(headers: Mapping[str, str], now: float) -> float | None:
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    text = headers.get("retry-after", "").strip()
    seconds = _seconds(text)
    if seconds is not None or not text:
        return seconds
    try:
        return parsedate_to_datetime(text).timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _reset_header(headers: Mapping[str, str]) -> float | None:
    windows = ("tokens-minute", "requests-minute", "requests-day", "tokens-day")
    resets = {w: _seconds(headers.get(f"x-ratelimit-reset-{w}")) for w in windows}
    exhausted = [
        reset
        for window, reset in resets.items()
        if reset is not None and _seconds(headers.get(f"x-ratelimit-remaining-{window}")) == 0
    ]
    if exhausted:
        return max(exhausted)
    minute = [reset for window, reset in resets.items() if reset is not None and "minute" in window]
    return max(minute) if minute else None


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None
