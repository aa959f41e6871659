"""`muninctl check`'s verdict on the daemon's status: pure functions, no I/O.

The monitoring-plugins convention: a state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) and one
line `MUNINMAIL STATE: reason | perfdata`. Perfdata follows the guidelines' syntax,
`'label'=value[UOM];warn;crit;min;max`, with seconds as `s`. docs/monitoring.md explains each
rule; a field an older daemon does not send counts as absent, never as a problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from muninctl.output import duration

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
Json = dict[str, Any]


@dataclass(frozen=True)
class Thresholds:
    fetch_warning_s: float = 15 * 60.0
    fetch_critical_s: float = 60 * 60.0
    failed_warning: int = 0  # more failed messages than this is a warning


@dataclass(frozen=True)
class Verdict:
    state: int
    reason: str
    perfdata: str = ""

    def line(self) -> str:
        text = f"MUNINMAIL {NAMES[self.state]}: {self.reason}"
        return f"{text} | {self.perfdata}" if self.perfdata else text


def evaluate(status: Json, now: datetime, limits: Thresholds) -> Verdict:
    problems: list[tuple[int, str]] = []
    problems += _database(status)
    problems += _pauses(status)
    problems += [p for a in status.get("accounts", []) for p in _fetch(a, status, now, limits)]
    problems += _failed(status, limits)
    problems += _model(status)
    perfdata = " ".join(_perfdata(status, now, limits))
    if not problems:
        return Verdict(OK, _summary(status, now), perfdata)
    problems.sort(key=lambda p: -p[0])
    return Verdict(problems[0][0], "; ".join(text for _, text in problems), perfdata)


def unreachable(message: str, state: int = CRITICAL) -> Verdict:
    return Verdict(state, message)


# -- the rules ------------------------------------------------------------------------------


def _database(status: Json) -> list[tuple[int, str]]:
    database = status.get("database") or {}
    if database.get("failing"):
        return [(CRITICAL, f"database writes fail: {database.get('last_error') or 'no reason'}")]
    return []


def _pauses(status: Json) -> list[tuple[int, str]]:
    paused, queue = status.get("paused", {}), status.get("queue", {})
    found = []
    if paused.get("processor") and queue.get("pending", 0) > 0:
        found.append((WARNING, f"processor paused with {queue['pending']} pending"))
    if paused.get("fetcher"):
        found.append((WARNING, "fetcher paused: new mail is not fetched"))
    return found


def _fetch(account: Json, status: Json, now: datetime, limits: Thresholds) -> list[tuple[int, str]]:
    if status.get("paused", {}).get("fetcher"):
        return []  # the pause is the reason, and is reported itself
    age = fetch_age(account, status, now)
    if age <= limits.fetch_warning_s:
        return []
    state = CRITICAL if age > limits.fetch_critical_s else WARNING
    since = _since_text(account, age)
    error = f" ({account['last_error']})" if account.get("last_error") else ""
    return [(state, f"account {account['name']}: {since}{error}")]


def _failed(status: Json, limits: Thresholds) -> list[tuple[int, str]]:
    failed = int(status.get("queue", {}).get("failed", 0))
    if failed > limits.failed_warning:
        return [(WARNING, f"{failed} failed message(s) held (muninctl list --status failed)")]
    return []


def _model(status: Json) -> list[tuple[int, str]]:
    hold = (status.get("model") or {}).get("hold")
    if not isinstance(hold, dict):
        return []
    until = f" until {hold['until']}" if hold.get("until") else ""
    message = f": {hold['message']}" if hold.get("message") else ""
    if hold.get("reason") == "quota":
        return [(WARNING, f"model quota spent{until}{message}")]
    if hold.get("reason") == "account":
        return [(WARNING, f"the model service refuses the account{message}")]
    return []


# -- figures --------------------------------------------------------------------------------


def fetch_age(account: Json, status: Json, now: datetime) -> float:
    """Seconds since the account last fetched successfully; since the start if it never did."""
    when = account.get("last_success_at", account.get("last_fetch_at"))
    if when:
        return max((now - _parse(when)).total_seconds(), 0.0)
    return float(status.get("uptime_s", 0.0))


def _since_text(account: Json, age: float) -> str:
    if account.get("last_success_at", account.get("last_fetch_at")):
        return f"no successful fetch for {duration(age)}"
    return f"no successful fetch since the daemon started {duration(age)} ago"


def _summary(status: Json, now: datetime) -> str:
    q = status.get("queue", {})
    text = f"{q.get('pending', 0)} pending, {q.get('failed', 0)} failed"
    accounts: Sequence[Json] = status.get("accounts", [])
    if accounts:
        oldest = max(fetch_age(a, status, now) for a in accounts)
        text += f", {len(accounts)} account(s) fetched within {duration(oldest)}"
    if status.get("paused", {}).get("processor"):
        text += ", processor paused"
    return text


def _perfdata(status: Json, now: datetime, limits: Thresholds) -> list[str]:
    q, waiting = status.get("queue", {}), status.get("waiting") or {}
    out = [_perf(name, q.get(name, 0)) for name in ("pending", "processing", "completed")]
    out.append(_perf("failed", q.get("failed", 0), warn=limits.failed_warning))
    if waiting:
        out.append(_perf("due", waiting.get("due", 0)))
        out.append(_perf("oldest_pending", waiting.get("oldest_pending_s") or 0, "s"))
        out.append(_perf("oldest_due", waiting.get("oldest_due_s") or 0, "s"))
    for account in status.get("accounts", []):
        age = fetch_age(account, status, now)
        out.append(
            _perf(
                f"fetch_age_{account['name']}",
                age,
                "s",
                warn=limits.fetch_warning_s,
                crit=limits.fetch_critical_s,
            )
        )
    return out


def _perf(
    label: str,
    value: float,
    unit: str = "",
    *,
    warn: float | None = None,
    crit: float | None = None,
) -> str:
    """'label'=value[UOM];warn;crit;min;max, min 0, no max."""
    fields = [f"{_number(value)}{unit}", _number(warn), _number(crit), "0"]
    return f"'{label}'=" + ";".join(fields)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() or abs(value) >= 10 else f"{value:.1f}"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
