"""The IMAP fetcher against a real Dovecot: sync, IDLE, polling, faults, TLS, UIDVALIDITY."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.config.settings import Secret, Security
from muninmaild.errors import FetchAuthError, FetchError
from muninmaild.fetch.imap.client import ClientProtocol, FetchCommand
from muninmaild.fetch.imap.connection import ImapConnection
from muninmaild.fetch.imap.source import ImapSource
from muninmaild.fetch.imap.uid_windows import WINDOW as UID_WINDOW
from muninmaild.fetch.loop import AUTH_BACKOFF_S, FetchLoop
from muninmaild.fetch.source import MailSource, MessageStore
from muninmaild.records import QueueCounts
from muninmaild.store.repository import Repository
from tests.imap_helpers import TUNING, Probe, imap_source, row_counts
from tests.peers.dovecot import Dovecot, free_port, make_certificate, message
from tests.peers.imap_relay import ImapRelay

CPYTHON_MESSAGES = sorted((Path(__file__).parent / "data" / "cpython_email").glob("msg_*.txt"))


async def never_paused() -> bool:
    return False


def fetch_loop(source: MailSource, store: MessageStore, poll_s: float = 60.0) -> FetchLoop:
    return FetchLoop(
        source, store, on_new=lambda: None, is_paused=never_paused, poll_interval=poll_s
    )


@asynccontextmanager
async def running(loop: FetchLoop) -> AsyncIterator[None]:
    task = asyncio.create_task(loop.run())
    try:
        yield
    finally:
        loop.stop()
        await asyncio.wait_for(task, 15)


async def idling(source: ImapSource) -> None:
    await asyncio.wait_for(source.idling.wait(), 10)


# -- sync ------------------------------------------------------------------------------------------


async def test_initial_sync_of_1000_messages_changes_no_flag(
    dovecot: Dovecot, repo: Repository, sqlite_engine: AsyncEngine
) -> None:
    dovecot.deliver((message(i), i % 3 == 0) for i in range(1000))
    before = dovecot.flags()
    source = imap_source(dovecot.account(), repo)
    assert await source.sync(repo) == 1000  # how fast: bench P1
    assert await source.sync(repo) == 0
    await source.close()
    assert await row_counts(sqlite_engine) == (1000, 1000, 1000)
    assert await repo.counts() == QueueCounts(pending=1000)
    after = dovecot.flags()
    assert after == before and sum("\\Seen" in f for f in after.values()) == 334
    # A fresh connection catches up by UID and finds nothing new.
    again = imap_source(dovecot.account(), repo)
    assert await again.sync(repo) == 0
    await again.close()


async def test_an_oversize_message_gets_a_row_from_its_header_and_is_fetched_once(
    dovecot: Dovecot, repo: Repository
) -> None:
    dovecot.append([message(1, body=("x" * 76 + "\n") * 100), message(2)])
    source = imap_source(dovecot.account(max_message_size=4096), repo)
    assert await source.sync(repo) == 2
    assert await source.sync(repo) == 0
    await source.close()
    assert await repo.counts() == QueueCounts(pending=1, completed=1)
    large, small = await repo.results_for([1, 2])
    assert large["subject"] == "Message 1" and large["status"] == "completed"
    assert large["skip_reason"] is not None and "over the limit of 4096" in large["skip_reason"]
    assert small["skip_reason"] is None
    # Dovecot counts what it sent: one body (the small message) and the large one's header.
    dovecot.wait_for_log(r"Logged out .*hdr_count=1 .*body_count=1 ")


async def test_cpython_test_messages_all_get_a_row(dovecot: Dovecot, repo: Repository) -> None:
    dovecot.append(path.read_bytes() for path in CPYTHON_MESSAGES)
    source = imap_source(dovecot.account(), repo)
    assert await source.sync(repo) == len(CPYTHON_MESSAGES) == 48
    await source.close()
    assert sum((await repo.counts()).as_dict().values()) == len(CPYTHON_MESSAGES)


async def test_a_first_sync_without_uidnext_is_windowed_up_to_the_highest_uid(
    dovecot: Dovecot, repo: Repository
) -> None:
    relay = ImapRelay(dovecot.imap_port, without_uidnext=True)  # Courier's answers
    account = replace(dovecot.account(), port=relay.port)
    source = ImapSource(account, repo, "test-holder", replace(TUNING, uid_window=4))
    try:
        assert await source.sync(repo) == 0  # an empty mailbox: no highest UID
        dovecot.append([message(i) for i in range(1, 11)])
        assert await source.sync(repo) == 10
        await source.close()
    finally:
        relay.close()
    searches = [line.split(b" ", 1)[1] for line in relay.commands(rb"^UID (SEARCH|FETCH \*)")]
    # Never one search that lists every UID of the mailbox, as `UID SEARCH UID 1:*` would.
    assert searches == [
        b"FETCH * (UID)",
        b"SEARCH UID 1:*",
        b"FETCH * (UID)",
        b"SEARCH UID 1:4",
        b"SEARCH UID 5:8",
        b"SEARCH UID 9:10",
        b"SEARCH UID 11:*",
    ]


@pytest.mark.parametrize("window", [UID_WINDOW, 3], ids=["one-window", "windows-of-3"])
async def test_a_recreated_mailbox_queues_only_its_new_messages(
    dovecot: Dovecot, repo: Repository, sqlite_engine: AsyncEngine, window: int
) -> None:
    old = [message(i) for i in range(1, 6)] + [message(i, message_id=False) for i in (6, 7)]
    dovecot.create("Archive")
    dovecot.append(old, "Archive")
    account = dovecot.account(mailboxes=("Archive",))
    source = ImapSource(account, repo, "test-holder", replace(TUNING, uid_window=window, batch=2))
    assert await source.sync(repo) == 7
    first = dovecot.uidvalidity("Archive")
    new = [message(8), message(9, message_id=False), message(10)]
    dovecot.recreate("Archive", [*old[:3], new[0], *old[3:], *new[1:]])  # while connected
    assert dovecot.uidvalidity("Archive") != first
    assert await source.sync(repo) == 3
    assert await source.sync(repo) == 0
    await source.close()
    assert (await row_counts(sqlite_engine))[0] == 10
    state = await repo.sync_state("test", "Archive")
    assert state.uidvalidity == dovecot.uidvalidity("Archive") and state.highest_uid == 10
    rows = await repo.results_for(range(8, 11))
    assert sorted(r["subject"] for r in rows) == ["Message 10", "Message 8", "Message 9"]


# -- push and polling ------------------------------------------------------------------------------


async def test_a_message_appended_during_idle_is_queued_at_once(
    dovecot: Dovecot, repo: Repository
) -> None:
    dovecot.append([message(1)])
    probe = Probe(repo)
    source = imap_source(dovecot.account(), repo)
    # Polling only once an hour: mail that arrives within the minute below came by the push.
    # (How soon it comes: bench P5.)
    async with running(fetch_loop(source, probe, poll_s=3600)):
        await probe.until(1)
        await idling(source)
        assert source.idling.is_set()
        await asyncio.to_thread(dovecot.append, [message(2)])
        await probe.until(2, within_s=60)


async def test_fetch_now_ends_idle_and_syncs_on_the_same_connection(
    dovecot: Dovecot, repo: Repository
) -> None:
    dovecot.append([message(1)])
    probe = Probe(repo)
    source = imap_source(dovecot.account(), repo)
    loop = fetch_loop(source, probe)
    async with running(loop):
        await probe.until(1)
        await idling(source)
        syncs = probe.syncs
        loop.fetch_now()
        await probe.until_true(lambda: probe.syncs > syncs)
        await idling(source)
    assert dovecot.log_text().count("Login: user=<alice>") == 2  # ours, and the append's


@pytest.mark.parametrize("why", ["server-without-idle", "idle-switched-off"])
async def test_without_idle_the_mailbox_is_polled(
    dovecot_factory: Callable[..., Dovecot], repo: Repository, why: str
) -> None:
    server = dovecot_factory(idle=why != "server-without-idle")
    server.append([message(1)])
    probe = Probe(repo)
    account = server.account(idle=why != "idle-switched-off", poll_interval=0.3)
    source = imap_source(account, repo)
    async with running(fetch_loop(source, probe, poll_s=account.poll_interval)):
        await probe.until(1)
        assert not source.idling.is_set()
        await asyncio.to_thread(server.append, [message(2)])
        await probe.until(2, within_s=5)
        assert not source.idling.is_set()


async def test_several_mailboxes_and_accounts(
    dovecot_factory: Callable[..., Dovecot], repo: Repository
) -> None:
    server = dovecot_factory(users=("alice", "bob"))
    server.create("Lists")
    server.append([message(1)])
    server.append([message(2)], "Lists")
    server.append([message(3)], user="bob")
    probe = Probe(repo)
    work = imap_source(server.account(mailboxes=("INBOX", "Lists"), poll_interval=0.3), repo)
    home = imap_source(server.account(name="home", username="bob"), repo)
    async with running(fetch_loop(work, probe, poll_s=0.3)), running(fetch_loop(home, probe)):
        await probe.until(3)
        await idling(work)
        await asyncio.to_thread(server.append, [message(4)], "Lists")  # found by polling
        await probe.until(4, within_s=5)
        await asyncio.to_thread(server.append, [message(5)])  # pushed by IDLE on INBOX
        await probe.until(5, within_s=5)
    subjects = {r["subject"] for r in await repo.results_for(range(1, 6))}
    assert subjects == {f"Message {i}" for i in range(1, 6)}
    assert (await repo.sync_state("home", "INBOX")).highest_uid == 1
    assert (await repo.sync_state("test", "Lists")).highest_uid == 2


async def test_a_mailbox_that_cannot_be_opened_does_not_stop_the_others(
    dovecot: Dovecot, repo: Repository
) -> None:
    dovecot.append([message(1)])
    source = imap_source(dovecot.account(mailboxes=("Missing", "INBOX")), repo)
    with pytest.raises(FetchError, match="cannot open mailbox 'Missing'"):
        await source.sync(repo)
    assert (await repo.counts()).pending == 1
    await source.close()


async def test_each_mailbox_has_one_fetcher_across_instances(
    dovecot: Dovecot, repo: Repository
) -> None:
    dovecot.append([message(1), message(2)])
    first = imap_source(dovecot.account(), repo, holder="host-a")
    second = imap_source(dovecot.account(), repo, holder="host-b")
    results = await asyncio.gather(first.sync(repo), second.sync(repo))
    assert sorted(results) == [0, 2]
    holder, other = (first, second) if results[0] == 2 else (second, first)
    dovecot.append([message(3)])
    assert await other.sync(repo) == 0
    assert await holder.sync(repo) == 1
    await holder.close()  # gives the mailbox back
    dovecot.append([message(4)])
    assert await other.sync(repo) == 1
    await other.close()


async def test_a_big_sync_parsed_by_several_processes_is_stored_in_uid_order(
    dovecot: Dovecot, repo: Repository, sqlite_engine: AsyncEngine
) -> None:
    dovecot.deliver((message(i), False) for i in range(1, 901))
    probe = Probe(repo)
    source = imap_source(dovecot.account(), repo)
    assert TUNING.parsers > 1  # the groups really alternate between parsers
    assert await source.sync(probe) == 900
    assert probe.batches == 5
    await source.close()
    async with sqlite_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT uid, subject FROM emails ORDER BY id"))).all()
    assert [uid for uid, _ in rows] == list(range(1, 901))
    assert [subject for _, subject in rows] == [f"Message {i}" for i in range(1, 901)]
    assert (await repo.sync_state("test", "INBOX")).highest_uid == 900


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", ["dovecot-restarted", "doveadm-kick"])
async def test_a_sync_cut_short_ends_with_every_message_queued_once(
    dovecot: Dovecot, repo: Repository, sqlite_engine: AsyncEngine, cut: str
) -> None:
    dovecot.deliver((message(i), False) for i in range(1000))
    probe = Probe(repo)

    def cut_after_two_batches(batches: int) -> None:
        if batches != 2:
            return
        if cut == "dovecot-restarted":
            dovecot.stop()
        else:
            dovecot.kick()

    probe.after_batch = cut_after_two_batches
    source = imap_source(dovecot.account(), repo)
    loop = fetch_loop(source, probe)
    await loop.run_once()
    assert loop.status.state == "backoff" and 0 < probe.added < 1000, loop.status
    if cut == "dovecot-restarted":
        dovecot.start()
    await loop.run_once()
    assert loop.status.state == "idle", loop.status.last_error
    await source.close()
    assert probe.added == 1000
    assert await row_counts(sqlite_engine) == (1000, 1000, 1000)


async def test_a_connection_cut_during_idle_is_replaced(dovecot: Dovecot, repo: Repository) -> None:
    dovecot.append([message(1)])
    probe = Probe(repo)
    source = imap_source(dovecot.account(), repo)
    async with running(fetch_loop(source, probe)):
        await probe.until(1)
        await idling(source)
        syncs = probe.syncs
        await asyncio.to_thread(dovecot.kick)
        await probe.until_true(lambda: probe.syncs > syncs)  # connected again
        await idling(source)  # and in IDLE again
        await asyncio.to_thread(dovecot.append, [message(2)])
        await probe.until(2, within_s=5)


async def test_a_stalled_server_times_out_and_a_fresh_connection_follows(
    dovecot: Dovecot, repo: Repository
) -> None:
    dovecot.append([message(1)])
    source = imap_source(dovecot.account(), repo, timeout=0.5)
    assert await source.sync(repo) == 1
    [session] = dovecot.session_pids()
    os.kill(session, signal.SIGSTOP)
    try:
        dovecot.append([message(2)])
        with pytest.raises(FetchError, match=r"no answer to EXAMINE INBOX within 0\.5 s"):
            await source.sync(repo)
    finally:
        os.kill(session, signal.SIGCONT)
    assert await source.sync(repo) == 1  # on a new connection
    assert session not in dovecot.session_pids()
    await source.close()


async def test_an_unreachable_server_is_a_fetch_error(dovecot: Dovecot, repo: Repository) -> None:
    source = imap_source(dovecot.account(port=free_port()), repo)
    with pytest.raises(FetchError, match="connect failed: Connection refused") as failed:
        await source.sync(repo)
    assert not isinstance(failed.value, FetchAuthError)
    await source.close()


async def test_a_wrong_password_is_auth_failed_without_a_retry_loop(
    dovecot: Dovecot, repo: Repository
) -> None:
    account = dovecot.account(password=Secret("not-the-password"))
    source = imap_source(account, repo)
    calls: list[float] = []
    failed = asyncio.Event()

    async def counted_sync(store: MessageStore) -> int:
        calls.append(time.monotonic())
        try:
            return await ImapSource.sync(source, store)
        finally:
            failed.set()

    source.sync = counted_sync  # type: ignore[method-assign]
    loop = fetch_loop(source, repo, poll_s=0.1)
    waits: list[float] = []
    waiting = asyncio.Event()

    async def recorded_wait(seconds: float) -> None:
        waits.append(seconds)
        waiting.set()
        await FetchLoop._wait(loop, seconds)  # the real wait: the stop below ends it

    loop._wait = recorded_wait  # type: ignore[method-assign]
    async with running(loop):
        await asyncio.wait_for(waiting.wait(), 10)
        status = loop.status
        assert (status.state, len(calls)) == ("auth_failed", 1)
        # Not the 0.1 s poll: the next try is the auth backoff's, a quarter of an hour away.
        assert waits == [pytest.approx(AUTH_BACKOFF_S, rel=0.2)]
    assert status.last_error is not None and "refused" in status.last_error
    assert "not-the-password" not in status.last_error
    dovecot.wait_for_log(r"auth failed, 1 attempts")


async def test_the_password_never_reaches_a_log_or_an_error(
    dovecot: Dovecot, repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    # aioimaplib masks a password only as given; a quote or backslash changes how it is sent.
    password = 'hunter2"with\\escapes'
    source = imap_source(dovecot.account(password=Secret(password)), repo)
    # Another test may have quietened aioimaplib's logger (logs.set_level does): hear it all.
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="aioimaplib"),
        pytest.raises(FetchAuthError) as refused,
    ):
        await source.sync(repo)
    await source.close()
    assert "Sending" in caplog.text  # aioimaplib did log what it sent
    assert "hunter2" not in caplog.text and "hunter2" not in str(refused.value)


# -- what ImapConnection takes from aioimaplib (docs/dependencies.md) ------------------------------


async def test_aioimaplib_runs_our_protocol_and_our_fetch_command(dovecot: Dovecot) -> None:
    # Client.create_client and ClientProtocol.fetch are overrides: were they bypassed, the sync
    # would still work, only slower, and no other test would notice.
    dovecot.append([message(1)])
    conn = await ImapConnection.open(dovecot.account(), 5.0)
    protocol = conn._client.protocol
    assert type(protocol) is ClientProtocol
    executed: list[type] = []
    execute = protocol.execute

    async def spy(command: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(type(command))
        return await execute(command, *args, **kwargs)

    protocol.execute = spy
    await conn.examine("INBOX")
    assert set(await conn.fetch([1], "")) == {1}
    await conn.logout()
    assert FetchCommand in executed


async def test_discard_during_idle_leaves_nothing_of_aioimaplib_running(dovecot: Dovecot) -> None:
    conn = await ImapConnection.open(dovecot.account(), 5.0)
    await conn.examine("INBOX")
    await conn.start_idle()
    waiter = conn._client._idle_waiter
    assert isinstance(waiter, asyncio.TimerHandle) and conn._client.tasks
    conn.discard()
    assert waiter.cancelled()
    ours = asyncio.current_task()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while left := [task for task in asyncio.all_tasks() if task is not ours]:
        assert loop.time() < deadline, left
        await asyncio.sleep(0.01)
    assert conn._client.protocol.transport.is_closing()


# -- connection security ---------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
async def test_each_security_mode_fetches(
    dovecot: Dovecot, repo: Repository, security: Security
) -> None:
    dovecot.append([message(1), message(2)])
    source = imap_source(dovecot.account(security), repo)
    assert await source.sync(repo) == 2
    await source.close()
    # The second login is ours (the first appended the messages); on loopback Dovecot calls
    # a plain connection "secured".
    dovecot.wait_for_log(r"(?s)Login: user=<alice>.*Login: user=<alice>")
    ours = re.findall(r"Login: user=<alice>.*", dovecot.log_text())[1]
    assert ("TLS" in ours) is (security != "none"), ours


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("trust", ["system", "another-ca"])
async def test_an_untrusted_certificate_is_refused(
    dovecot: Dovecot, repo: Repository, tmp_path: Path, security: Security, trust: str
) -> None:
    ca_file = None
    if trust == "another-ca":
        ca_file = tmp_path / "other.pem"
        make_certificate(ca_file, tmp_path / "other.key")
    account = dovecot.account(security, ca_file=ca_file)
    source = imap_source(account, repo)
    with pytest.raises(FetchError, match="certificate is not trusted") as refused:
        await source.sync(repo)
    assert not isinstance(refused.value, FetchAuthError)
    await source.close()
    assert "Login: user=<alice>" not in dovecot.log_text()


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_a_certificate_for_a_name_reached_by_address_gets_a_hint_naming_that(
    dovecot: Dovecot, repo: Repository, security: Security
) -> None:
    # Dovecot with a certificate for a name only, trusted through ca_file, reached by address.
    make_certificate(dovecot.cert, dovecot.root / "key.pem", name="mail.example.test")
    dovecot.restart()
    source = imap_source(dovecot.account(security), repo)
    with pytest.raises(FetchError) as refused:
        await source.sync(repo)
    await source.close()
    words = str(refused.value)
    assert "server is the address 127.0.0.1" in words and "set server to that name" in words
    assert "ca_file" not in words.split("not trusted", 1)[1]


async def test_a_first_sync_searches_uids_a_window_at_a_time(
    dovecot: Dovecot, repo: Repository
) -> None:
    dovecot.append([message(i) for i in range(1, 11)])
    source = ImapSource(dovecot.account(), repo, "me", replace(TUNING, uid_window=3, batch=2))
    assert await source.sync(repo) == 10
    await source.close()
    assert await row_counts_uids(repo) == list(range(1, 11))
    assert (await repo.sync_state("test", "INBOX")).highest_uid == 10


async def row_counts_uids(repo: Repository) -> list[int]:
    async with repo._reader.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT uid FROM emails ORDER BY uid"))]
