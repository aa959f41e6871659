"""The composition root: the daemon's parts built from settings and an engine, with no I/O.

Nothing here connects or reads: the engine is opened by the caller, the backend's client
and the IMAP connections are made lazily by the parts themselves.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.ai.base import Backend
from muninmaild.ai.factory import make_backend
from muninmaild.config.settings import AccountSettings, Settings
from muninmaild.errors import ConfigError
from muninmaild.fetch.backfill import Backfill
from muninmaild.fetch.loop import FetchLoop
from muninmaild.fetch.maildir import MaildirSource
from muninmaild.fetch.source import MailSource
from muninmaild.processing.processor import Processor
from muninmaild.processing.retention import Retention
from muninmaild.processing.shortcuts import shortcuts_for
from muninmaild.redact import Redactor
from muninmaild.store.repository import Repository

if TYPE_CHECKING:  # aioimaplib loads only when an account needs it
    from muninmaild.writeback.digest import DigestDelivery
    from muninmaild.writeback.keywords import KeywordWriter


@dataclass
class Parts:
    repo: Repository
    backend: Backend
    processor: Processor
    fetchers: list[FetchLoop]
    instance_id: str
    retention: Retention
    keywords: KeywordWriter | None = None  # accounts with write_keywords
    digest: DigestDelivery | None = None  # [digest] account


def instance_id() -> str:
    """Unique per process start, so claim tokens of a restarted daemon never collide."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def make_source(
    account: AccountSettings,
    index: int,
    repo: Repository,
    holder: str,
    fetch_lease_s: float = 120.0,
) -> MailSource:
    if account.source == "maildir":
        assert account.path is not None  # the config loader insists on it
        leases = (repo, holder, fetch_lease_s)
        return MaildirSource(
            account.name,
            account.path,
            account.mailboxes,
            account.max_message_size,
            leases,
            Backfill(account.backfill_window),
        )
    if not account.server:
        raise ConfigError(f"accounts[{index}].server", 'an IMAP account needs server = "..."')
    from muninmaild.fetch.imap.source import (
        ImapSource,  # aioimaplib loads only when an account needs it
        ImapTuning,
    )

    return ImapSource(account, repo, holder, tuning=ImapTuning(lease_ttl=fetch_lease_s))


def build(settings: Settings, engine: AsyncEngine, redact: Redactor, *, once: bool) -> Parts:
    repo = Repository(engine)
    me = instance_id()
    lease_s = settings.daemon.fetch_lease_seconds
    sources = [make_source(a, i, repo, me, lease_s) for i, a in enumerate(settings.accounts)]
    backend = make_backend(settings.ai)
    private = {a.name for a in settings.accounts if not a.send_body}
    processor = Processor(
        repo,
        backend,
        settings.processor,
        settings.ai,
        me,
        once=once,
        redact=redact,
        send_body=lambda account: account not in private,
        shortcuts=shortcuts_for(
            settings.ai, repo, backend, retention_days=settings.database.retention_days
        ),
    )

    async def fetcher_paused() -> bool:
        return (await repo.paused())["fetcher"]

    fetchers = [
        FetchLoop(
            source,
            repo,
            on_new=processor.wake,
            is_paused=fetcher_paused,
            poll_interval=account.poll_interval,
            once=once,
            redact=redact,
        )
        for source, account in zip(sources, settings.accounts, strict=True)
    ]
    for fetcher, account in zip(fetchers, settings.accounts, strict=True):
        fetcher.status.backfill = account.backfill
    retention = Retention(repo, settings.database.retention_days)
    parts = Parts(repo, backend, processor, fetchers, me, retention)
    parts.keywords = keyword_writer(settings, repo, me, redact, once=once)
    parts.digest = digest_delivery(settings, repo)
    return parts


def keyword_writer(
    settings: Settings, repo: Repository, holder: str, redact: Redactor, *, once: bool
) -> KeywordWriter | None:
    """The loop writing flags back as IMAP keywords, if an account asks for it."""
    writing = [a.name for a in settings.accounts if a.write_keywords]
    repo.write_keywords_for(writing)
    if not writing:
        return None
    from muninmaild.writeback.keywords import KeywordWriter

    return KeywordWriter(
        repo,
        settings.accounts,
        settings.ai.flags,
        holder,
        once=once,
        poll_s=settings.processor.poll_interval,
        redact=redact,
    )


def digest_delivery(settings: Settings, repo: Repository) -> DigestDelivery | None:
    name = settings.digest.account
    if name is None:
        return None
    from muninmaild.writeback.digest import DigestDelivery

    account = next(a for a in settings.accounts if a.name == name)  # the loader checked it
    return DigestDelivery(repo, settings.digest, account)
