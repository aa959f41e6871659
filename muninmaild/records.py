"""Records that cross between the fetchers, the processor and the store (no SQLAlchemy here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from muninmaild.protocol import STATUSES


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMail:
    """A parsed message. Every field has a value even for badly broken mail.

    `headers` keeps the headers that matter for triage (lower-case names; `KEPT_HEADERS` in
    `mail/headers.py`). `body_text` is the whole readable body (HTML turned into
    text), not yet trimmed for the model. `defects` are short readable descriptions.
    """

    message_id: str | None
    subject: str
    from_addr: str
    to_addrs: str
    cc_addrs: str
    date: datetime | None
    headers: dict[str, str] = field(default_factory=dict)
    body_text: str = ""
    body_was_html: bool = False
    attachments: tuple[Attachment, ...] = ()
    has_calendar: bool = False
    defects: tuple[str, ...] = ()
    size: int = 0


Priority = Literal["low", "medium", "high"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class Todo:
    task: str
    priority: Priority
    due: date | None = None


@dataclass(frozen=True)
class Analysis:
    summary: str
    flags: tuple[str, ...]
    todos: tuple[Todo, ...]


# The skip reason of mail the first sync leaves out (an account's `backfill`): the row is
# completed without the model, and `requeue --skipped` finds it by this exact text.
BACKFILL_NOTE = "older than the backfill window"


@dataclass(frozen=True)
class NewMessage:
    """A fetched message ready to be queued.

    Identity is (account, mailbox, uidvalidity, uid). A Maildir has no UIDs, so its source hands
    out its own and keeps the file's unique name in `source_key`. `skip_reason` marks a message
    the model is not asked about (too large, say): it still gets a row, already completed.
    """

    account: str
    mailbox: str
    uidvalidity: int
    uid: int
    mail: ParsedMail
    source_key: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class TokenUsage:
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class CachedAnswer:
    """An earlier model answer to the same request (`answer_cache`), and what that request cost."""

    analysis: Analysis
    model: str
    usage: TokenUsage
    created_at: datetime


@dataclass(frozen=True)
class SyncAdvance:
    """The mailbox position to store in the same transaction as the messages it covers."""

    account: str
    mailbox: str
    uidvalidity: int | None
    highest_uid: int
    # The first sync's end: UIDs up to it are weighed against the backfill window; None keeps
    # what is stored (only a first sync, or one after a UIDVALIDITY change, sets it).
    backfill_uid: int | None = None


@dataclass(frozen=True)
class SyncState:
    uidvalidity: int | None = None
    highest_uid: int = 0
    backfill_uid: int = 0  # UIDs up to this one are weighed against the backfill window


MessageKey = tuple[datetime | None, str, str, int]  # date, sender, subject, size


@dataclass(frozen=True)
class KnownMessages:
    """What a mailbox already holds, to recognise its messages after a UIDVALIDITY change.

    By Message-ID; a message without one by its date, sender, subject and size.
    """

    message_ids: frozenset[str] = frozenset()
    keys: frozenset[MessageKey] = frozenset()

    def knows(self, mail: ParsedMail, size: int) -> bool:
        if mail.message_id:
            return mail.message_id in self.message_ids
        return (mail.date, mail.from_addr, mail.subject, size) in self.keys


@dataclass(frozen=True)
class ClaimedMessage:
    """A row this worker holds; `token` fences every later write to it."""

    id: int
    token: str
    attempts: int
    account: str
    subject: str
    from_addr: str
    to_addrs: str
    sent_at: datetime | None
    body_text: str
    headers: dict[str, str] = field(default_factory=dict)
    attachment_names: tuple[str, ...] = ()
    has_calendar: bool = False


@dataclass
class FetchStatus:
    """What `status` shows for an account."""

    account: str
    state: str = "starting"  # starting, syncing, idle, backoff, auth_failed, paused, stopped
    last_fetch_at: datetime | None = None
    last_error: str | None = None
    caught_up: bool = False
    queued: int = 0
    last_success_at: datetime | None = None  # the last sync that succeeded (this process)
    errors: int = 0  # syncs that failed since this process started
    backfill: str = "all"  # the account's backfill window, as configured


@dataclass(frozen=True)
class QueueCounts:
    pending: int = 0
    processing: int = 0
    completed: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in STATUSES}

    def status_line(self) -> str:
        """ASCII only: sd_notify drops a STATUS= it cannot encode as Latin-1."""
        return ", ".join(f"{s} {n}" for s, n in self.as_dict().items())


@dataclass(frozen=True)
class Waiting:
    """The pending messages the processor has yet to take: how many are due, since when."""

    due: int = 0  # pending and due now (not waiting for a later retry)
    oldest_pending_at: datetime | None = None  # when the oldest pending message was queued
    oldest_due_at: datetime | None = None  # since when the longest-waiting due one has been due


@dataclass(frozen=True)
class MailboxFetch:
    """A mailbox's last successful sync, by whichever instance holds it."""

    account: str
    mailbox: str
    last_fetch_at: datetime | None


@dataclass(frozen=True)
class LastError:
    """The most recent error stored on a message, for `status`."""

    email_id: int
    at: datetime
    message: str


# -- instances sharing one database ----------------------------------------------------------


@dataclass(frozen=True)
class InstanceInfo:
    id: str
    host: str
    pid: int
    version: str
    boot_id: str | None = None  # the kernel's boot id when it started (None: not known)


@dataclass(frozen=True)
class InstanceView:
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    alive: bool
    stopped: bool


@dataclass(frozen=True)
class MailboxHolder:
    account: str
    mailbox: str
    holder: str
    expires_at: datetime


@dataclass(frozen=True)
class ClusterView:
    instances: tuple[InstanceView, ...]
    mailboxes: tuple[MailboxHolder, ...]


@dataclass(frozen=True)
class ReloadOutcome:
    refused: str | None = None  # why the file was not taken, secrets masked
    restart_needed: tuple[str, ...] = ()  # sections that changed but apply only at a start


# -- results written back to the mailbox -------------------------------------------------------


@dataclass(frozen=True)
class KeywordTarget:
    """A message whose flags are due to be written as IMAP keywords.

    `queued_at` is when the intent was recorded: the outcome is stored only on that same intent,
    so a message requeued meanwhile is not marked with keywords of its old results.
    """

    email_id: int
    account: str
    mailbox: str
    uidvalidity: int
    uid: int
    flags: tuple[str, ...]
    queued_at: datetime
    attempts: int = 0


KeywordState = Literal["pending", "written", "skipped"]


@dataclass(frozen=True)
class KeywordOutcome:
    """What became of one target: written (or found already set), skipped for good, or left
    pending with a note and a time to look again."""

    target: KeywordTarget
    state: KeywordState
    keywords: tuple[str, ...] = ()
    note: str | None = None
    retry_in_s: float = 0.0


@dataclass(frozen=True)
class DigestRecord:
    """A digest delivery: `appending` from before the APPEND until it is known to be there."""

    id: int
    account: str
    mailbox: str
    period: str
    message_id: str
    state: str
    created_at: datetime
    delivered_at: datetime | None


@dataclass
class KeywordStatus:
    """What `status` shows of an account's keywords written back."""

    state: str = "idle"  # idle, writing, backoff, auth_failed, stopped
    written: int = 0  # messages this process wrote keywords to
    last_written_at: datetime | None = None
    last_error: str | None = None
    refused: dict[str, str] = field(default_factory=dict)  # mailbox -> why


@dataclass
class RetentionStatus:
    """What retention (`database.retention_days`) last did in this process."""

    days: int = 0  # 0: off
    last_run_at: datetime | None = None
    removed: int = 0  # by the last pass
    removed_total: int = 0  # since this process started

    def record(self, at: datetime, removed: int) -> None:
        self.last_run_at = at
        self.removed = removed
        self.removed_total += removed
