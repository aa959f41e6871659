"""The daemon's exception tree.

    MuninError
    ├── ConfigError              the configuration is unusable: fatal before READY=1, exit 78
    ├── StoreError               the database is unusable or behind in a way we cannot fix
    ├── FetchError               a mail source failed: the fetch loop backs off and reconnects
    │   └── FetchAuthError       the server refused the credentials: a longer backoff
    └── ModelError               one model request failed; the processor decides what it means
        ├── ModelRateLimited     HTTP 429: the row is snoozed for `retry_after_s`, no attempt used
        ├── ModelUnavailable     connection error, timeout, 5xx, 408, 409: retried with backoff
        ├── ModelAnswerInvalid   not JSON, breaks the schema, cut short: retried with backoff
        ├── ModelAuthError       401/403: snoozed without an attempt, every worker holds off
        └── ModelRequestRejected 400, 404, 422 and other 4xx: the request itself is wrong; the
                                 row is held as failed

Messages are written for the person reading `muninctl show` or the journal: they say what went
wrong and, where we know it, what to do. They never contain secrets.
"""

from __future__ import annotations

from muninmaild.records import TokenUsage


class MuninError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(MuninError):
    """The configuration cannot be used; `key` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class StoreError(MuninError):
    """The database cannot be used."""


class ModelError(MuninError):
    """A model request failed. `usage` holds tokens that were spent anyway."""

    def __init__(self, message: str, usage: TokenUsage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or TokenUsage()


class ModelRateLimited(ModelError):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelUnavailable(ModelError):
    pass


class ModelAnswerInvalid(ModelError):
    pass


class ModelAuthError(ModelError):
    pass


class ModelRequestRejected(ModelError):
    pass


class FetchError(MuninError):
    """Fetching from a mail source failed; the fetch loop backs off and tries again."""


class FetchAuthError(FetchError):
    """The server refused our credentials: backed off longer, shown as its own state."""
