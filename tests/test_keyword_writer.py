"""The keyword writer against a real Dovecot, in process: one pass at a time, the clock injected.

Messages are fetched by the real IMAP fetcher into a SQLite queue and completed with flags as
the processor would; the writer then writes their keywords, and a second client (imaplib)
reads the mailbox to see what the server keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from muninmaild.config.settings import AccountSettings, FlagSpec
from muninmaild.records import Analysis, TokenUsage
from muninmaild.store.repository import Repository
from muninmaild.writeback import keywords
from muninmaild.writeback.keywords import KeywordWriter
from tests.clock import Clock
from tests.factories import claim_oldest, claim_one, complete_one
from tests.imap_helpers import imap_source
from tests.peers.dovecot import Dovecot, message

FLAGS = (
    FlagSpec("requires_response", "reply"),
    FlagSpec("urgent", "urgent", keyword="$label1"),
    FlagSpec("meeting_request", "meeting"),
)
REPLY = Analysis("Ann asks.", ("requires_response",), ())
URGENT = Analysis("Pay now.", ("urgent", "requires_response"), ())
PLAIN = Analysis("A note.", (), ())


async def fetch_and_process(
    dovecot: Dovecot, repo: Repository, account: AccountSettings, *answers: Analysis
) -> list[int]:
    """Fetch what is new, and complete the new messages with `answers`, in UID order."""
    source = imap_source(account, repo)
    try:
        await source.sync(repo)
    finally:
        await source.close()
    ids = []
    for answer in answers:
        msg = await claim_oldest(repo, "w#1", 60)
        assert msg is not None
        assert await complete_one(repo, msg.id, "w#1", answer, TokenUsage(), "m")
        ids.append(msg.id)
    return ids


@pytest.fixture
def account(dovecot: Dovecot) -> AccountSettings:
    return dovecot.account(write_keywords=True)


@pytest.fixture
def writer_for(
    repo: Repository, account: AccountSettings
) -> Callable[..., tuple[KeywordWriter, Clock[float]]]:
    def make(*accounts: AccountSettings) -> tuple[KeywordWriter, Clock[float]]:
        clock = Clock(1000.0)
        repo.write_keywords_for([a.name for a in accounts or (account,)])
        writer = KeywordWriter(
            repo, accounts or (account,), FLAGS, "me", once=True, timeout_s=5.0, clock=clock
        )
        return writer, clock

    return make


async def test_keywords_land_on_the_flagged_messages_only_and_seen_stays(
    dovecot: Dovecot, repo: Repository, account: AccountSettings, writer_for: Callable[..., Any]
) -> None:
    writer, _ = writer_for()
    dovecot.append([message(1), message(3)], seen=True)
    dovecot.append([message(2)])
    before = dovecot.flags()
    await fetch_and_process(dovecot, repo, account, URGENT, PLAIN, REPLY)
    await writer.run()

    after = dovecot.flags()
    added = {uid: after[uid] - before[uid] for uid in after}
    assert added == {
        1: {"$label1", "munin_requires_response"},
        2: set(),
        3: {"munin_requires_response"},
    }
    assert {u for u, f in after.items() if "\\Seen" in f} == {1, 2}  # as appended
    status = writer.status["test"]
    assert (status.written, status.refused, status.state) == (2, {}, "stopped")
    assert await repo.keyword_targets("test", "me") == []


async def test_a_refusing_mailbox_gets_nothing_and_is_reported_once(
    dovecot_factory: Callable[..., Dovecot],
    repo: Repository,
    writer_for: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dovecot = dovecot_factory(acl=True)
    dovecot.create("Shared")
    dovecot.refuse_keywords("Shared")
    account = dovecot.account(write_keywords=True, mailboxes=("Shared",))
    writer, _ = writer_for(account)
    dovecot.append([message(1), message(2)], "Shared")
    before = dovecot.flags("Shared")
    (email_id, _) = await fetch_and_process(dovecot, repo, account, URGENT, REPLY)
    caplog.set_level(logging.WARNING, "muninmaild.writeback.keywords")

    await writer.run_once()
    assert dovecot.flags("Shared") == before
    reason = writer.status["test"].refused["Shared"]
    assert "PERMANENTFLAGS \\Seen, without \\*" in reason
    assert "$label1, munin_requires_response not written" in reason
    record = await repo.keyword_write(email_id)
    assert record is not None and record["state"] == "pending"
    assert "PERMANENTFLAGS \\Seen, without \\*): $label1, munin" in record["note"]
    assert await repo.keyword_targets("test", "me") == []  # asked again only later

    dovecot.append([message(3)], "Shared")  # new work for the same mailbox: no new warning
    await fetch_and_process(dovecot, repo, account, REPLY)
    await writer.run_once()
    warnings = [r for r in caplog.records if "keywords not written" in r.getMessage()]
    assert len(warnings) == 1 and "test/Shared" in warnings[0].getMessage()
    assert dovecot.flags("Shared") == before | {3: frozenset()}
    await writer.run()


async def test_a_connection_fault_backs_off_and_the_write_follows_once(
    dovecot: Dovecot, repo: Repository, account: AccountSettings, writer_for: Callable[..., Any]
) -> None:
    writer, clock = writer_for()
    dovecot.append([message(1)])
    (email_id,) = await fetch_and_process(dovecot, repo, account, REPLY)
    dovecot.stop()
    await writer.run_once()
    status = writer.status["test"]
    assert status.state == "backoff" and "127.0.0.1" in (status.last_error or "")
    dovecot.start()
    await writer.run_once()  # still backing off: nothing tried
    assert status.state == "backoff"
    clock.now += 60
    await writer.run_once()
    assert (status.state, status.last_error, status.written) == ("idle", None, 1)
    assert "munin_requires_response" in dovecot.flags()[1]
    record = await repo.keyword_write(email_id)
    assert record is not None and record["state"] == "written"
    await writer.run()


async def test_a_keyword_the_user_removed_stays_removed(
    dovecot: Dovecot, repo: Repository, account: AccountSettings, writer_for: Callable[..., Any]
) -> None:
    writer, _ = writer_for()
    dovecot.append([message(1)])
    await fetch_and_process(dovecot, repo, account, REPLY)
    await writer.run_once()
    with dovecot.client() as imap:  # the user removes it in their mail client
        imap.select("INBOX")
        imap.uid("STORE", "1", "-FLAGS.SILENT", "(munin_requires_response)")
    dovecot.append([message(2)])
    await fetch_and_process(dovecot, repo, account, URGENT)
    await writer.run_once()
    flags = dovecot.flags()
    assert "munin_requires_response" not in flags[1]
    assert {"$label1", "munin_requires_response"} <= flags[2]
    await writer.run()


async def test_a_message_of_a_recreated_mailbox_is_skipped_and_says_why(
    dovecot: Dovecot, repo: Repository, writer_for: Callable[..., Any]
) -> None:
    dovecot.create("Work")
    account = dovecot.account(write_keywords=True, mailboxes=("Work",))
    writer, _ = writer_for(account)
    dovecot.append([message(1)], "Work")
    source = imap_source(account, repo)
    try:
        await source.sync(repo)
    finally:
        await source.close()
    dovecot.recreate("Work", [message(9)])  # UID 1 is now another message
    msg = await claim_one(repo, "w#1", 60)
    assert msg is not None
    await complete_one(repo, msg.id, "w#1", REPLY, TokenUsage(), "m")
    await writer.run()
    record = await repo.keyword_write(msg.id)
    assert record is not None and record["state"] == "skipped"
    assert "the mailbox was recreated" in record["note"]
    assert dovecot.flags("Work") == {1: frozenset()}


async def test_a_backlog_larger_than_a_pass_is_written_without_waiting(
    dovecot: Dovecot,
    repo: Repository,
    account: AccountSettings,
    writer_for: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keywords, "PASS_LIMIT", 2)
    writer, _ = writer_for()
    dovecot.append([message(n) for n in range(1, 6)])
    await fetch_and_process(dovecot, repo, account, *[REPLY] * 5)
    await writer.run()  # run-once: passes follow each other while a pass was full
    assert writer.status["test"].written == 5
    assert all("munin_requires_response" in f for f in dovecot.flags().values())
