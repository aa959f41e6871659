"""Fetch leases (one fetcher per mailbox) and what UIDVALIDITY recovery reads, on both databases."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.fetch.lease import MailboxLeases
from muninmaild.store.repository import Repository
from tests.clock import Clock
from tests.factories import new_message
from tests.query_plans import plan, selects

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


async def test_a_lease_is_taken_renewed_refused_and_taken_over(any_engine: AsyncEngine) -> None:
    clock = Clock(T0)
    repo = Repository(any_engine, clock)
    assert await repo.acquire_fetch_lease("work", "INBOX", "a", 60)
    assert await repo.acquire_fetch_lease("work", "INBOX", "a", 60)  # renewed
    assert not await repo.acquire_fetch_lease("work", "INBOX", "b", 60)
    assert await repo.acquire_fetch_lease("work", "Archive", "b", 60)  # another mailbox
    assert await repo.acquire_fetch_lease("home", "INBOX", "b", 60)  # another account
    clock.now += timedelta(seconds=59)
    assert not await repo.acquire_fetch_lease("work", "INBOX", "b", 60)
    clock.now += timedelta(seconds=2)  # a's lease has run out
    assert await repo.acquire_fetch_lease("work", "INBOX", "b", 60)
    assert not await repo.acquire_fetch_lease("work", "INBOX", "a", 60)


async def test_only_the_holder_releases(any_engine: AsyncEngine) -> None:
    repo = Repository(any_engine)
    assert await repo.acquire_fetch_lease("work", "INBOX", "a", 600)
    await repo.release_fetch_lease("work", "INBOX", "b")
    assert not await repo.acquire_fetch_lease("work", "INBOX", "b", 600)
    await repo.release_fetch_lease("work", "INBOX", "a")
    assert await repo.acquire_fetch_lease("work", "INBOX", "b", 600)


async def test_concurrent_takers_get_one_lease(any_engine: AsyncEngine) -> None:
    repo = Repository(any_engine)
    takers = [repo.acquire_fetch_lease("work", "INBOX", f"holder{i}", 600) for i in range(8)]
    assert sorted(await asyncio.gather(*takers)) == [False] * 7 + [True]


async def test_mailbox_leases_renew_when_due_and_notice_a_loss(any_engine: AsyncEngine) -> None:
    db_clock, ticks = Clock(T0), [0.0]
    repo = Repository(any_engine, db_clock)
    leases = MailboxLeases(repo, "work", "a", 30, clock=lambda: ticks[0])

    def advance(seconds: float) -> None:
        db_clock.now += timedelta(seconds=seconds)
        ticks[0] += seconds

    assert await leases.acquire("INBOX") and leases.holds("INBOX")
    advance(11)  # a third of the TTL: renewed, now until 41 s
    await leases.renew_due()
    advance(25)
    assert not await repo.acquire_fetch_lease("work", "INBOX", "b", 30)
    advance(40)  # never renewed meanwhile: it ran out and b takes it
    assert await repo.acquire_fetch_lease("work", "INBOX", "b", 30)
    await leases.renew_due()
    assert not leases.holds("INBOX")
    await leases.release_all()
    assert not await repo.acquire_fetch_lease("work", "INBOX", "a", 30)  # b's lease stands


async def test_known_messages_by_message_id_or_by_date_sender_subject_size(
    any_engine: AsyncEngine,
) -> None:
    repo = Repository(any_engine)
    with_id = new_message(1, message_id="<a@example.com>")
    without = new_message(2, message_id=None)
    elsewhere = new_message(3, mailbox="Archive", message_id="<b@example.com>")
    await repo.add_messages([with_id, without, elsewhere])
    asked = ["<a@example.com>", "<b@example.com>", "<c@example.com>"]
    known = await repo.known_messages("work", "INBOX", asked, {without.mail.size})
    assert known.message_ids == {"<a@example.com>"}  # only what was asked, of this mailbox
    assert known.knows(with_id.mail, 0)  # the size only counts without a Message-ID
    assert known.knows(without.mail, without.mail.size)
    assert not known.knows(without.mail, without.mail.size + 1)
    assert not known.knows(replace(without.mail, subject="Other"), without.mail.size)
    assert not known.knows(elsewhere.mail, 0)
    assert without.mail.date is not None
    elsewhere_in_time = without.mail.date.astimezone(timezone(timedelta(hours=2)))
    assert known.knows(replace(without.mail, date=elsewhere_in_time), without.mail.size)
    # Messages without a Message-ID are looked for by the sizes asked about.
    other_size = await repo.known_messages("work", "INBOX", [], {without.mail.size + 1})
    assert not other_size.keys and not other_size.message_ids


async def test_the_questions_of_a_rescan_each_read_an_index_on_sqlite(
    sqlite_engine: AsyncEngine,
) -> None:
    """Asked once per batch of headers: a walk over the whole mailbox in each would make a
    rescan of a big mailbox quadratic."""
    repo = Repository(sqlite_engine)
    with selects(sqlite_engine) as seen:
        await repo.known_messages("work", "INBOX", ["<a@example.com>", "<b@example.com>"], {10, 20})
    assert len(seen) == 2
    plans = [await plan(sqlite_engine, statement) for statement in seen]
    assert "ix_emails_message_id" in plans[0], plans[0]
    assert "ix_emails_without_message_id" in plans[1], plans[1]
