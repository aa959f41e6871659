"""The schema. Migrations in `store/migrations` must produce exactly this (a test compares).

`emails` keeps the column names of the earlier Celery-based service (`processing_status`,
`subject`, `created_at`, `updated_at`) so its monitoring SQL works as written. One column,
`next_attempt_at`, says when a row may next be claimed: for a `pending` row that is after its
backoff, for a `processing` row it is the end of the lease. So one partial index serves both
kinds of claim (new work and the expired leases of crashed workers) in order, without a sort.
There is deliberately no full index led by `processing_status`: SQLite's planner would prefer it
for the claim and sort every time. `ix_emails_active` is partial (the rows not completed), which
SQLite uses only for queries that name its condition (`ACTIVE`), never for the claim.

The counts of each status are not counted from `emails` but kept in `counters` by triggers
(migration 0007), so that `status` costs the same at any size.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from muninmaild.protocol import STATUSES

Id = BigInteger().with_variant(Integer(), "sqlite")
CLAIMABLE = "processing_status IN ('pending', 'processing')"
ACTIVE = "processing_status <> 'completed'"  # the condition of ix_emails_active, as written
COMPLETED = "processing_status = 'completed'"  # the condition of ix_emails_completed_at
WITHOUT_MESSAGE_ID = "message_id IS NULL"  # the condition of ix_emails_without_message_id


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python on both databases (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    pass


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (
        UniqueConstraint("account", "mailbox", "uidvalidity", "uid", name="uq_emails_identity"),
        CheckConstraint(f"processing_status IN ({_quoted(STATUSES)})", name="ck_emails_status"),
        # Partial on both databases, as migration 0001 creates it. No postgresql_where here:
        # naming a dialect's option imports that dialect, a measurable part of every SQLite
        # daemon's start-up; these models never create tables (the migrations do).
        Index("ix_emails_claim", "next_attempt_at", "id", sqlite_where=text(CLAIMABLE)),
        # The claim's order: live mail first, then newest first (migration 0009).
        Index(
            "ix_emails_live_claim", "live", "id", "next_attempt_at", sqlite_where=text(CLAIMABLE)
        ),
        Index("ix_emails_message_id", "account", "message_id"),
        # A rescan recognising messages without a Message-ID by their size (0010).
        Index(
            "ix_emails_without_message_id",
            "account",
            "mailbox",
            "size",
            sqlite_where=text(WITHOUT_MESSAGE_ID),
        ),
        # A Maildir file is queued once, even by two fetchers racing for its folder.
        Index("uq_emails_source_key", "account", "mailbox", "source_key", unique=True),
        Index("ix_emails_updated_at", "updated_at"),
        # `list --status` of the rows not completed, newest first (0007).
        Index("ix_emails_active", "processing_status", "id", sqlite_where=text(ACTIVE)),
        Index("ix_emails_created_at", "created_at"),  # `list --since`, the digest
        Index("ix_emails_completed_at", "completed_at", sqlite_where=text(COMPLETED)),  # retention
        # The newest error for `status`, without walking every row that has none.
        Index(
            "ix_emails_last_error",
            "updated_at",
            "id",
            sqlite_where=text("last_error IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    source_key: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text, default="")
    from_addr: Mapped[str] = mapped_column(Text, default="")
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(Integer, default=0)
    headers: Mapped[str] = mapped_column(Text, default="{}")  # JSON object
    body_text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    defects: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    has_calendar: Mapped[bool] = mapped_column(Boolean, default=False)
    processing_status: Mapped[str] = mapped_column(String(16), default="pending")
    # Arrived after its mailbox's first sync was done: claimed before any backlog.
    live: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    skip_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MailboxState(Base):
    """Where each mailbox's sync stands: UIDVALIDITY and the highest UID queued."""

    __tablename__ = "mailbox_state"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    highest_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    caught_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a sync ran to its end
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The backfill window (0008): UIDs up to `backfill_uid` were there at the first sync and
    # are weighed against it; `backfill_skipped` is how many it left out, less those requeued.
    backfill_uid: Mapped[int] = mapped_column(BigInteger, server_default="0")
    backfill_skipped: Mapped[int] = mapped_column(Integer, server_default="0")


class FetchLease(Base):
    """Which instance fetches a mailbox: one holder per (account, mailbox) until `expires_at`.

    Several daemons may share the database; the holder renews its lease while it fetches and
    waits for mail, and another instance takes the mailbox over once the lease has run out.
    """

    __tablename__ = "fetch_leases"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


ORIGINS = ("model", "cache", "skipped")


class Result(Base):
    __tablename__ = "results"
    # Today's answers by origin, for `status` (0006).
    __table_args__ = (Index("ix_results_created_at", "created_at"),)

    email_id: Mapped[int] = mapped_column(
        Id, ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    summary: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Whether the body went to the model (false: `send_body = false`); NULL before 0005.
    sent_body: Mapped[bool | None] = mapped_column(Boolean)
    # Where the answer came from (ORIGINS: the model, the answer cache, or the offline rules
    # because `ai.skip` decided so) and why, in words; NULL before 0006.
    origin: Mapped[str | None] = mapped_column(String(16))
    origin_note: Mapped[str | None] = mapped_column(Text)
    # The key of the answer in `answer_cache` (ai/request_key.py), so that a requeue can drop it.
    cache_key: Mapped[str | None] = mapped_column(String(64))


class EmailFlag(Base):
    __tablename__ = "email_flags"

    email_id: Mapped[int] = mapped_column(
        Id, ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    flag: Mapped[str] = mapped_column(String(40), primary_key=True)


class TodoRow(Base):
    __tablename__ = "todos"
    __table_args__ = (
        Index("ix_todos_email_id", "email_id"),
        Index("ix_todos_open", "done", "due_date"),  # the open to-dos by date (0007)
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    email_id: Mapped[int] = mapped_column(Id, ForeignKey("emails.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(8))
    due_date: Mapped[date | None] = mapped_column(Date)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TokenUsageRow(Base):
    """Every model request's tokens, failed ones too: they were paid for."""

    __tablename__ = "token_usage"
    __table_args__ = (
        Index("ix_token_usage_email_id", "email_id"),
        Index("ix_token_usage_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    email_id: Mapped[int | None] = mapped_column(Id, ForeignKey("emails.id", ondelete="SET NULL"))
    model: Mapped[str] = mapped_column(String(128))
    tokens_in: Mapped[int] = mapped_column(Integer)
    tokens_out: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PauseState(Base):
    """`fetcher` and `processor` pauses, in the database so every instance and restart sees them."""

    __tablename__ = "pause_state"

    component: Mapped[str] = mapped_column(String(16), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Instance(Base):
    """A daemon sharing this database: registered at start, its heartbeat renewed while alive."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # /proc/sys/kernel/random/boot_id when it started: with the host and the pid, it tells an
    # instance of this machine's current boot whose process is gone (crashed) (0007).
    boot_id: Mapped[str | None] = mapped_column(String(64))


KEYWORD_STATES = ("pending", "written", "skipped")


class KeywordWrite(Base):
    """A message's flags as IMAP keywords on the server: to write, written, or given up on.

    The row is made with the message's results (accounts with `write_keywords`), so the intent
    survives a restart; once `written` it is never written again, even if the user removes the
    keyword; a requeue deletes the row along with the results.
    """

    __tablename__ = "keyword_writes"
    __table_args__ = (
        CheckConstraint(f"state IN ({_quoted(KEYWORD_STATES)})", name="ck_keyword_writes_state"),
        Index("ix_keyword_writes_due", "next_attempt_at", sqlite_where=text("state = 'pending'")),
    )

    email_id: Mapped[int] = mapped_column(
        Id, ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")
    keywords: Mapped[str] = mapped_column(Text, default="")  # space-separated, as written
    note: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    written_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


DIGEST_STATES = ("appending", "delivered")


class DigestDelivery(Base):
    """One digest appended to a mailbox: at most one per target account and period.

    The row is written before the APPEND (`appending`, with the digest's Message-ID) and marked
    `delivered` after it, so a delivery cut short is recognised in the mailbox, not repeated.
    """

    __tablename__ = "digests"
    __table_args__ = (
        UniqueConstraint("account", "period", name="uq_digests_period"),
        CheckConstraint(f"state IN ({_quoted(DIGEST_STATES)})", name="ck_digests_state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str] = mapped_column(String(255))
    period: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="appending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnswerCacheEntry(Base):
    """A model answer kept for a request seen again (processing/shortcuts.py).

    `key` is the hash of the whole request (ai/request_key.py); `answer` the answer's JSON
    (summary, flags, to-dos); the tokens are what the request that made it cost. Shared by every
    instance; bounded by age (`created_at`) and by count, both pruned by the oldest first.
    """

    __tablename__ = "answer_cache"
    __table_args__ = (Index("ix_answer_cache_created_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(128))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


COUNTED = (*STATUSES, "tokens_in", "tokens_out")


class PaceRemoved(Base):
    """Answers a requeue removed, per second they were stored in (0010): the pace adds them."""

    __tablename__ = "pace_removed"

    second: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    answers: Mapped[int] = mapped_column(Integer)


class Counter(Base):
    """A count kept by triggers (0007): rows of each `processing_status`, the token totals."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class CounterDelta(Base):
    """A change to a `Counter` not yet folded into it (PostgreSQL: one row per statement)."""

    __tablename__ = "counter_deltas"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32))
    delta: Mapped[int] = mapped_column(BigInteger)
