"""Typed settings: what `config.load()` produces and every part of the daemon reads.

Plain frozen dataclasses with no I/O, so tests can build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Security = Literal["tls", "starttls", "none"]
SourceKind = Literal["imap", "maildir"]
BackendName = Literal["cerebras", "rules", "noop", "openai"]
StructuredOutput = Literal["json_schema", "json_object", "prompt"]
STRUCTURED_OUTPUTS: tuple[StructuredOutput, ...] = ("json_schema", "json_object", "prompt")
REASONING_EFFORTS = ("none", "low", "medium", "high", "omit")
# What `ai.skip` may name: mail the headers decide, answered offline (mail/headers.py).
SKIP_KINDS = ("bulk", "automated")


@dataclass(frozen=True)
class FlagSpec:
    """A flag the model may set. `keywords` drive the offline rules backend; `keyword` is the
    IMAP keyword written for it (accounts with `write_keywords`), `munin_<name>` when unset."""

    name: str
    description: str
    keywords: tuple[str, ...] = ()
    keyword: str | None = None

    @property
    def imap_keyword(self) -> str:
        return self.keyword or f"munin_{self.name}"


DEFAULT_FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec(
        "requires_response",
        "The sender expects an answer or a decision from the recipient.",
    ),
    FlagSpec(
        "urgent",
        "Something must happen soon: a deadline within days, an overdue payment, an outage.",
    ),
    FlagSpec(
        "meeting_request",
        "The message proposes, schedules or moves a meeting or call.",
    ),
)


class Secret:
    """A secret string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class DaemonSettings:
    state_dir: Path = Path("/var/lib/muninmail")
    control_socket: Path = Path("/run/muninmail/control.sock")
    socket_group: str = "muninmail"
    log_level: str = "info"
    drain_timeout: float = 20.0
    control_max_connections: int = 64
    control_idle_timeout: float = 60.0
    # How long a mailbox stays with a fetcher that stopped renewing (several daemons, one database).
    fetch_lease_seconds: float = 120.0
    heartbeat_seconds: float = 5.0  # seconds a control connection may wait between requests


def mask_url(url: str) -> str:
    """The database URL with its password replaced, for logs and --check-config."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":********@", 1)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:////var/lib/muninmail/muninmail.db"
    retention_days: int = 0  # 0 keeps results forever


@dataclass(frozen=True)
class AccountSettings:
    name: str
    source: SourceKind = "imap"
    path: Path | None = None  # maildir only
    server: str = ""
    port: int = 993
    security: Security = "tls"
    ca_file: Path | None = None
    username: str = ""
    password: Secret | None = None
    mailboxes: tuple[str, ...] = ("INBOX",)
    idle: bool = True
    poll_interval: float = 300.0
    max_message_size: int = 25 * 1024 * 1024
    write_keywords: bool = False  # flags become IMAP keywords on the message (docs/keywords.md)
    # False: the model sees the headers the prompt uses, the subject and attachment names only.
    send_body: bool = True
    # What the first sync of a mailbox sends to the model: mail of the last "14d" (days) or
    # "2w" (weeks), "all", or "none"; older mail gets its row, completed without the model.
    backfill: str = "14d"

    @property
    def backfill_window(self) -> timedelta | None:
        """How far back the first sync goes; None: all mail (`backfill_window` below)."""
        return backfill_window(self.backfill)


BACKFILL_PATTERN = r"all|none|[0-9]{1,5}[dw]"


def backfill_window(text: str) -> timedelta | None:
    """`backfill`'s value as a window: None for "all", zero for "none", else days or weeks."""
    if text == "all":
        return None
    if text == "none":
        return timedelta(0)
    days = int(text[:-1]) * (7 if text.endswith("w") else 1)
    return timedelta(days=days)


@dataclass(frozen=True)
class ProcessorSettings:
    concurrency: int = 4
    max_attempts: int = 5
    lease_seconds: float = 120.0
    retry_base_seconds: float = 240.0
    retry_max_seconds: float = 3600.0
    poll_interval: float = 2.0


@dataclass(frozen=True)
class AISettings:
    backend: BackendName = "rules"
    model: str = "gpt-oss-120b"
    base_url: str = "https://api.cerebras.ai"
    api_key: Secret | None = None
    # Rate limits, 0 for none: the free tier of gpt-oss-120b on Cerebras unless configured
    # (the `openai` backend has none unless configured).
    requests_per_minute: int = 30
    tokens_per_minute: int = 64000
    timeout: float = 60.0
    max_input_chars: int = 12000
    max_completion_tokens: int = 1024
    flags: tuple[FlagSpec, ...] = DEFAULT_FLAGS
    requests_per_hour: int = 900
    requests_per_day: int = 14400
    tokens_per_hour: int = 1_000_000
    tokens_per_day: int = 1_000_000
    # None: "low" for models known to take it (gpt-oss), not sent to others; "omit": never sent.
    reasoning_effort: str | None = None
    structured_output: StructuredOutput = "json_schema"  # the `openai` backend's first choice
    language: str = "English"  # of summaries and to-dos; "auto": each mail's own language
    # Mail the headers decide ("bulk", "automated"), answered by the offline rules, not the model.
    skip: tuple[str, ...] = ()
    # An earlier answer to exactly the same request is used again (processing/shortcuts.py);
    # kept at most `cache_days` days (and within `database.retention_days`), `cache_entries`.
    cache: bool = True
    cache_days: int = 7
    cache_entries: int = 20000

    def effort_for_model(self) -> str | None:
        """The `reasoning_effort` to send with a request, or None to leave it out."""
        if self.reasoning_effort == "omit":
            return None
        if self.reasoning_effort is not None:
            return self.reasoning_effort
        return "low" if takes_reasoning_effort(self.model) else None


def takes_reasoning_effort(model: str) -> bool:
    """Models documented to take `reasoning_effort` (GPT-OSS reasons at "medium" by default)."""
    return "gpt-oss" in model.lower()


@dataclass(frozen=True)
class MetricsSettings:
    """The Prometheus listener: off unless `listen` names an address (docs/monitoring.md)."""

    listen: str = ""  # "127.0.0.1:9464", "[::1]:9464", or a port alone (then on 127.0.0.1)

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, or None when the listener is off."""
        return parse_listen(self.listen) if self.listen else None


LOOPBACK = "127.0.0.1"


def parse_listen(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `port` to (host, port); ValueError for anything else."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "", text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port with a port from 1 to 65535")
    if any(c.isspace() for c in host) or "[" in host or "]" in host:
        raise ValueError(f"{text!r} does not name a host")
    return host or LOOPBACK, int(port)


@dataclass(frozen=True)
class DigestSettings:
    """Where `muninctl digest --deliver` puts the digest: an IMAP account's mailbox."""

    account: str | None = None
    mailbox: str = "INBOX"


@dataclass(frozen=True)
class Settings:
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    accounts: tuple[AccountSettings, ...] = ()
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    ai: AISettings = field(default_factory=AISettings)
    source_path: Path | None = None  # the file it was read from, if any
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)

    def secrets(self) -> list[str]:
        """Every secret value, so the log filter can scrub them."""
        found = [a.password.reveal() for a in self.accounts if a.password]
        if self.ai.api_key:
            found.append(self.ai.api_key.reveal())
        db_password = urlsplit(self.database.url).password
        if db_password:
            found.append(db_password)
        return [s for s in found if s]
