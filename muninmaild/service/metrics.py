"""The daemon's metrics for Prometheus, gathered when someone asks (docs/monitoring.md).

Nothing is counted for Prometheus's sake while the daemon works: the processor, the fetchers
and the model's rate budget keep their own plain counts, and a scrape reads them together with
what `status` shows (the queue as the database counts it, pauses, the model's hold) and each
mailbox's last successful sync from the database. `prometheus_client` renders the text and is
imported on the first scrape only: a daemon nobody scrapes never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from muninmaild import __version__
from muninmaild.config.settings import AccountSettings
from muninmaild.processing.handler import ProcessorStats
from muninmaild.processing.model_calls import ModelCalls
from muninmaild.records import FetchStatus, MailboxFetch
from muninmaild.service.compose import Parts

Json = dict[str, Any]


class Budget(Protocol):
    """What a backend's rate budget counts (`ai/budget.py`); the offline backends have none."""

    waits: int
    waited_s: float


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape reports, read at one moment."""

    version: str
    status: Json  # the `status` command's answer
    processed: ProcessorStats
    model: ModelCalls
    budget: Budget | None
    fetchers: Sequence[FetchStatus]
    mailboxes: Sequence[MailboxFetch]  # every configured mailbox; `last_fetch_at` None: never


class Exporter:
    def __init__(self, parts: Parts, accounts: Sequence[AccountSettings]) -> None:
        self._parts = parts
        self._mailboxes = [(a.name, m) for a in accounts for m in a.mailboxes]

    async def render(self, status: Json) -> Json:
        """The Prometheus text exposition of this moment, as the `metrics` command answers."""
        snapshot = await self.snapshot(status)
        from muninmaild.service import exposition  # prometheus_client: on the first scrape

        return {"content_type": exposition.CONTENT_TYPE, "text": exposition.render(snapshot)}

    async def snapshot(self, status: Json) -> Snapshot:
        parts = self._parts
        accounts = sorted({account for account, _ in self._mailboxes})
        synced = {(m.account, m.mailbox): m for m in await parts.repo.mailbox_fetches(accounts)}
        mailboxes = [synced.get(key) or MailboxFetch(*key, None) for key in self._mailboxes]
        budget = getattr(parts.backend, "budget", None)
        return Snapshot(
            version=__version__,
            status=status,
            processed=parts.processor.stats,
            model=parts.processor.stats.model,
            budget=budget if _is_budget(budget) else None,
            fetchers=[f.status for f in parts.fetchers],
            mailboxes=mailboxes,
        )


def _is_budget(found: object) -> bool:
    return isinstance(getattr(found, "waits", None), int) and isinstance(
        getattr(found, "waited_s", None), float
    )
