"""The daemon binary with an IMAP account against Dovecot: it starts, queues, and logs out."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon_proc import finish, start, stop, write_config
from tests.peers.dovecot import PASSWORD, USER, Dovecot, message
from tests.peers.imap_relay import ImapRelay

pytestmark = pytest.mark.integration  # starts the daemon as a process (tests/kinds.py)


def imap_config(path: Path, state: Path, dovecot: Dovecot) -> Path:
    account = f"""
[[accounts]]
name = "mail"
source = "imap"
server = "127.0.0.1"
port = {dovecot.imap_port}
security = "starttls"
ca_file = "{dovecot.cert}"
username = "{USER}"
password = "{PASSWORD}"
poll_interval = 60
"""
    return write_config(path, state, maildir=None, extra=account)


def completed(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            sql = "SELECT COUNT(*) FROM emails WHERE processing_status = 'completed'"
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


def wait_until(condition: Callable[[], bool], within_s: float = 20.0) -> None:
    """Another process's progress can only be polled."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_daemon_fetches_pushed_mail_and_logs_out_on_stop(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    dovecot.append([message(i) for i in range(1, 4)])
    db = tmp_path / "muninmail.db"
    proc = start(imap_config(tmp_path / "m.toml", tmp_path, dovecot))
    try:
        wait_until(lambda: completed(db) == 3)
        dovecot.wait_for_log(r"Login: user=<alice>.*TLS")  # the daemon's, over STARTTLS
        dovecot.append([message(4)])
        wait_until(lambda: completed(db) == 4, within_s=10)  # pushed: the poll is 60 s away
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    # Three logins (two appends and the daemon's) all ended with LOGOUT.
    dovecot.wait_for_log(r"(?s)(imap\(alice\).*Disconnected: Logged out.*){3}")
    assert not re.search(r"imap\(alice\).*Connection closed", dovecot.log_text())
    assert PASSWORD not in err


def test_once_fetches_an_imap_account_and_reports(dovecot: Dovecot, tmp_path: Path) -> None:
    dovecot.append([message(i) for i in range(1, 3)])
    code, out, err = finish(start(imap_config(tmp_path / "m.toml", tmp_path, dovecot), "--once"))
    assert code == 0, err
    assert "mail: 2 new message(s) queued" in out
    assert completed(tmp_path / "muninmail.db") == 2


@pytest.mark.parametrize("expunge_one", [False, True], ids=["one-more", "same-count"])
def test_mail_between_the_sync_and_idle_is_queued_without_a_poll_when_the_server_gives_no_uidnext(
    dovecot: Dovecot, tmp_path: Path, expunge_one: bool
) -> None:
    dovecot.append([message(i) for i in range(1, 3)])
    relay = ImapRelay(dovecot.imap_port, without_uidnext=True)  # Courier's answers
    # The second EXAMINE is the one before IDLE: kept back until the new mail is in.
    reached, go = relay.pause_at(rb"^EXAMINE ", nth=2)
    account = f"""
[[accounts]]
name = "mail"
source = "imap"
server = "127.0.0.1"
port = {relay.port}
security = "none"
username = "{USER}"
password = "{PASSWORD}"
poll_interval = 3600
"""
    db = tmp_path / "muninmail.db"
    proc = start(write_config(tmp_path / "m.toml", tmp_path, maildir=None, extra=account))
    try:
        assert reached.wait(30)
        assert queued(db) == 2
        if expunge_one:  # the count stays as the sync saw it: only a search by UID tells
            dovecot.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "uid", "1")
        dovecot.append([message(3)])
        go.set()
        wait_until(lambda: queued(db) == 3, within_s=15)  # the poll is an hour away
    finally:
        go.set()
        code, _, err = stop(proc)
        relay.close()
    assert code == 0, err
    assert not relay.commands(rb"UIDNEXT")


def queued(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0
