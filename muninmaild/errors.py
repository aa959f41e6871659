"""The daemon's exception tree.

    MuninError
    ├── ConfigError              the configuration is unusable: fatal before READY=1, exit 78
    ├── StoreError               the database is unusable or behind in a way we cannot fix
    ├── FetchError               a mail source failed: the fetch loop backs off and reconnects
    │   └── FetchAuthError       the server refused the credentials: a longer backoff
    └── ModelError               one model request failed; the processor decides what it means
        ├── ModelRateLimited     HTTP 429: the row is snoozed for `retry_after_s`, no attempt used
        │   └── ModelQuotaSpent  an hourly or daily quota is spent: processing is held until
        │                        the window has room again, no attempt used
        ├── ModelUnavailable     connection error, timeout, 5xx, 408, 409: retried
        ├── ModelAnswerInvalid   not JSON, breaks the schema, cut short: retried with backoff
        ├── ModelAccountError    401/402/403, or 404 for the model: about the account or the
        │   │                    model, not the message; processing is held, the row released
        │   └── ModelAuthError   401/403: the key is wrong, revoked or not allowed
        └── ModelRequestRejected 400: the request itself is wrong; the row is held as failed

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


class ModelQuotaSpent(ModelRateLimited):
    """`window` ("tokens per day") has no room for `retry_after_s` seconds; `known` says
    whether the service said so, or the time is our own estimate."""

    def __init__(self, message: str, retry_after_s: float, window: str, known: bool) -> None:
        super().__init__(message, retry_after_s)
        self.window = window
        self.known = known


class ModelUnavailable(ModelError):
    pass


class ModelAnswerInvalid(ModelError):
    pass


class ModelAccountError(ModelError):
    """Every request would fail the same way until a person acts (or the service recovers)."""


class ModelAuthError(ModelAccountError):
    pass


class ModelRequestRejected(ModelError):
    pass


class FetchError(MuninError):
    """Fetching from a mail source failed; the fetch loop backs off and tries again."""


class FetchAuthError(FetchError):
    """The server refused our credentials: backed off longer, shown as its own state."""
