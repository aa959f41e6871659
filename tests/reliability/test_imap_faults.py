"""Scenario 2, IMAP server faults: every message is queued exactly once, whatever the server does.

One daemon, one real Dovecot. During the initial sync of 3,000 messages Dovecot is restarted
and the connection is cut (`doveadm kick`); once the daemon waits in IDLE its connection is cut
and Dovecot restarted again, with new mail arriving meanwhile; then the mailbox's UIDVALIDITY is
reset (Dovecot's index removed), with more new mail. Polling is a minute away throughout, so
each recovery is the daemon's own reconnect. At the end the rows are exactly the messages
delivered: no message missing, none twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers.dovecot import PASSWORD, USER, Dovecot, message
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import Daemon, imap_account, query, wait_until, write_config

INITIAL = 3000
LATER = 100  # messages delivered after each fault once the initial sync is done


def rows(db: Path) -> int:
    try:
        return int(query(db, "SELECT COUNT(*) FROM emails")[0][0])
    except Exception:  # the schema is not there yet
        return 0


def deliver(dovecot: Dovecot, first: int, count: int) -> None:
    dovecot.deliver((message(n), False) for n in range(first, first + count))


def cut_when(db: Path, at_least: int, cut: str, dovecot: Dovecot) -> int:
    """Cut the daemon's connection once `at_least` rows are queued; the rows at the cut."""
    wait_until(lambda: rows(db) >= at_least, 60, f"{at_least} rows queued")
    dovecot.restart() if cut == "restart" else dovecot.kick()
    return rows(db)


def in_idle(daemon: Daemon, dovecot: Dovecot) -> None:
    """Until the daemon has caught up and its connection is in IDLE, as Dovecot sees it."""

    def waiting() -> bool:
        account = daemon.call("status")["accounts"][0]
        return bool(account["state"] == "idle" and account["caught_up"])

    wait_until(waiting, 60, "the fetcher waiting for mail")
    wait_until(lambda: dovecot.idling() == 1, 30, "the daemon's connection in IDLE")


def fetcher_state(daemon: Daemon) -> str:
    return str(daemon.call("status")["accounts"][0]["state"])


def connections(daemon: Daemon) -> int:
    return daemon.log_text().count(": connected to ")


def reset_uidvalidity(dovecot: Dovecot) -> None:
    """With Dovecot stopped: without its index and uidlist the mailbox gets a new UIDVALIDITY."""
    box = dovecot.root / "mail" / USER
    for path in [box / "dovecot-uidlist", *box.glob("dovecot.index*")]:
        path.unlink()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_restarts_cuts_and_a_uidvalidity_reset_queue_each_message_once(
    dovecot: Dovecot, tmp_path: Path, daemons: StartDaemon
) -> None:
    deliver(dovecot, 1, INITIAL)
    config = write_config(tmp_path, accounts=[imap_account(dovecot)])
    db = tmp_path / "muninmail.db"
    daemon = daemons(tmp_path, config).start()

    def explain() -> str:
        return f"daemon log:\n{daemon.log_tail()}\nDovecot log:\n{dovecot.log_text()[-3000:]}"

    # The initial sync, cut twice: a restart, then a kick of the new connection.
    first = cut_when(db, 300, "restart", dovecot)
    second = cut_when(db, first + 600, "kick", dovecot)
    assert 0 < first < second < INITIAL, (first, second)
    wait_until(lambda: rows(db) == INITIAL, 60, "the initial sync", explain)

    # In IDLE: the connection cut, then the server restarted; new mail each time.
    in_idle(daemon, dovecot)
    connects = connections(daemon)
    dovecot.kick()
    wait_until(lambda: connections(daemon) > connects, 10, "a new connection after the cut")
    deliver(dovecot, INITIAL + 1, LATER)
    wait_until(lambda: rows(db) == INITIAL + LATER, 30, "mail after the cut in IDLE", explain)
    in_idle(daemon, dovecot)
    dovecot.stop()
    deliver(dovecot, INITIAL + LATER + 1, LATER)
    wait_until(lambda: fetcher_state(daemon) == "backoff", 30, "the daemon to find it gone")
    dovecot.start()
    wait_until(lambda: rows(db) == INITIAL + 2 * LATER, 60, "mail after the restart", explain)

    # A new UIDVALIDITY: the old messages are recognised, only the new ones are queued.
    in_idle(daemon, dovecot)
    before = dovecot.uidvalidity()
    dovecot.stop()
    reset_uidvalidity(dovecot)
    deliver(dovecot, INITIAL + 2 * LATER + 1, LATER)
    dovecot.start()
    assert dovecot.uidvalidity() != before
    total = INITIAL + 3 * LATER
    wait_until(lambda: rows(db) == total, 60, "mail after the UIDVALIDITY reset", explain)

    daemon.call("fetch-now")
    daemon.wait_idle(within_s=60)
    status = daemon.call("status")
    assert [(a["state"], a["last_error"]) for a in status["accounts"]] == [("idle", None)]
    assert status["queue"]["completed"] == total
    assert daemon.stop() == 0, daemon.log_tail()

    identities = "COUNT(DISTINCT uidvalidity || ':' || uid)"
    assert query(db, f"SELECT COUNT(*), COUNT(DISTINCT message_id), {identities} FROM emails") == [
        (total, total, total)
    ]
    # Message n is in the queue for every n delivered: none missing, none twice.
    expected = {f"<msg{n}@example.com>" for n in range(1, total + 1)}
    assert {row[0] for row in query(db, "SELECT message_id FROM emails")} == expected
    log = daemon.log_text()
    assert log.count("fetch failed") >= 3, log[-5000:]  # the faults did reach the daemon
    assert "UIDVALIDITY changed" in log
    assert PASSWORD not in log
