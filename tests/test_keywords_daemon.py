"""Flags written back as IMAP keywords, through the real binary, against a real Dovecot.

The daemon runs the offline rules backend; what it flagged is read back with `muninctl --json
list`, and what the server keeps with a second client (imaplib). Faults the server does not
make by itself (an answer that never comes, a connection cut at a command) come from a relay
between the daemon and Dovecot (tests/peers/imap_relay.py), which also counts every STORE.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_proc import clean_env
from tests.peers.dovecot import Dovecot
from tests.peers.imap_relay import ImapRelay
from tests.reliability.harness import Daemon, query, wait_until, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

KEYWORDS = {
    "requires_response": "munin_requires_response",
    "urgent": "$label1",  # configured below, as Thunderbird's "Important" tag
    "meeting_request": "munin_meeting_request",
}


def mail(n: int, subject: str, body: str, *headers: str) -> bytes:
    head = [
        f"From: Sender {n} <sender{n}@example.com>",
        "To: robin@example.com",
        f"Subject: {subject}",
        "Date: Thu, 03 Dec 2026 08:00:00 +0000",
        f"Message-ID: <kw{n}@example.com>",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


MAIL = [
    mail(1, "Payment overdue", "URGENT: the invoice is overdue. Please pay today."),
    mail(2, "Question", "Could you please send me the report by Friday?"),
    mail(3, "Meeting", "Can we meet on Thursday at 14:00 to go through the plan?"),
    mail(4, "We moved", "We moved to a new house last month. All the best!"),
    mail(5, "Issue 12", "This week's news, nothing to do.", "List-Id: <news.example.org>"),
]


def account(port: int, *, mailboxes: str = '["INBOX"]') -> str:
    return (
        f'[[accounts]]\nname = "mail"\nsource = "imap"\nserver = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\nusername = "alice"\npassword = "secret"\npoll_interval = 60\n'
        f"mailboxes = {mailboxes}\nwrite_keywords = true\n"
    )


def config(state: Path, port: int, **options: str) -> Path:
    path = write_config(state, accounts=[account(port, **options)], ai={"backend": "rules"})
    path.write_text(path.read_text() + '\n[ai.flags.urgent]\nkeyword = "$label1"\n')
    return path


def flagged(daemon: Daemon, mailbox: str = "INBOX") -> dict[int, frozenset[str]]:
    """The keywords each message should get, by UID, from what the daemon flagged."""
    listed = daemon.ctl("--json", "list", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    out = {}
    for line in listed.stdout.splitlines():
        m = json.loads(line)
        if m["mailbox"] == mailbox:
            detail = json.loads(daemon.ctl("--json", "show", str(m["id"])).stdout)
            out[detail["uid"]] = frozenset(KEYWORDS[f] for f in m["flags"])
    return out


def added(before: dict[int, frozenset[str]], after: dict[int, frozenset[str]]) -> dict[int, Any]:
    return {uid: after[uid] - before.get(uid, frozenset()) for uid in after}


def stored_uids(relay: ImapRelay) -> Counter[int]:
    """How often each UID was in a STORE the daemon sent."""
    counts: Counter[int] = Counter()
    for line in relay.commands(rb"^UID STORE "):
        for part in line.split()[2].decode().split(","):
            low, _, high = part.partition(":")
            counts.update(range(int(low), int(high or low) + 1))
    return counts


StartDaemon = Callable[..., Daemon]


@pytest.fixture
def daemons() -> Iterator[StartDaemon]:
    """Makes `Daemon`s (not started); every one still running at the end is killed."""
    made: list[Daemon] = []

    def make(state: Path, config: Path) -> Daemon:
        made.append(Daemon(state, config))
        return made[-1]

    yield make
    for daemon in made:
        daemon.kill()


@pytest.fixture
def relay(dovecot: Dovecot) -> Iterator[ImapRelay]:
    relay = ImapRelay(dovecot.imap_port)
    yield relay
    relay.close()


def test_keywords_land_on_exactly_the_flagged_messages_and_seen_is_untouched(
    dovecot: Dovecot, relay: ImapRelay, tmp_path: Path, daemons: StartDaemon
) -> None:
    dovecot.append(MAIL[:2], seen=True)
    dovecot.append(MAIL[2:])
    before = dovecot.flags()
    daemon = daemons(tmp_path, config(tmp_path, relay.port)).start()
    daemon.wait_idle()  # until the keywords are written too

    expected = flagged(daemon)
    assert frozenset() in expected.values() and len(set(expected.values())) >= 3
    after = dovecot.flags()
    assert added(before, after) == expected
    seen = {uid for uid, flags in after.items() if "\\Seen" in flags}
    assert seen == {uid for uid, flags in before.items() if "\\Seen" in flags} == {1, 2}
    assert all(count == 1 for count in stored_uids(relay).values())
    assert not relay.commands(rb"(?i)\\Seen|-FLAGS|EXAMINE.*STORE")

    status = daemon.call("status")["accounts"][0]["keywords"]
    wrote = sum(1 for keywords in expected.values() if keywords)
    assert (status["state"], status["written"], status["refused"]) == ("idle", wrote, [])
    shown = daemon.ctl("show", "1").stdout
    assert re.search(r"keywords: \S.* written \d{4}-\d\d-\d\d \d\d:\d\d", shown), shown


def test_a_mailbox_that_refuses_new_keywords_gets_none_and_shows_why(
    dovecot_factory: Callable[..., Dovecot], tmp_path: Path, daemons: StartDaemon
) -> None:
    dovecot = dovecot_factory(acl=True)
    dovecot.create("Shared")
    dovecot.refuse_keywords("Shared")  # PERMANENTFLAGS (\Seen): no \*
    dovecot.append(MAIL[:3], "Shared")
    before = dovecot.flags("Shared")
    path = config(tmp_path, dovecot.imap_port, mailboxes='["Shared"]')
    daemon = daemons(tmp_path, path).start()
    daemon.wait_idle()
    assert any(flagged(daemon, "Shared").values())

    assert dovecot.flags("Shared") == before
    (refused,) = daemon.call("status")["accounts"][0]["keywords"]["refused"]
    assert refused["mailbox"] == "Shared"
    assert "PERMANENTFLAGS \\Seen, without \\*" in refused["reason"]
    text = daemon.ctl("status").stdout
    assert "keywords mail: idle, 0 written" in text and "  Shared: the server allows no" in text
    shown = json.loads(daemon.ctl("--json", "show", "1").stdout)
    assert shown["summary"] and shown["keywords"]["state"] == "pending"
    assert "without \\*" in shown["keywords"]["note"]

    dovecot.append(MAIL[3:4], "Shared")  # more mail: still refused, not logged again
    daemon.ctl("fetch-now")
    daemon.wait_idle()
    assert daemon.log_text().count("keywords not written") == 1
    assert dovecot.flags("Shared") == before | {4: frozenset()}


def test_a_keyword_removed_by_another_client_stays_removed_until_a_requeue(
    dovecot: Dovecot, tmp_path: Path, daemons: StartDaemon
) -> None:
    dovecot.append(MAIL[:2])
    path = config(tmp_path, dovecot.imap_port)
    daemon = daemons(tmp_path, path).start()
    daemon.wait_idle()
    first = dovecot.flags()[1]
    removed = sorted(first)[0]
    with dovecot.client() as imap:  # the user removes a tag in their mail client
        imap.select("INBOX")
        assert imap.uid("STORE", "1", "-FLAGS.SILENT", f"({removed})")[0] == "OK"

    dovecot.append(MAIL[2:3])  # new mail makes the writer visit the mailbox again
    daemon.ctl("fetch-now")
    daemon.wait_idle()
    daemon.stop()
    daemon.start()  # and a restart
    daemon.wait_idle()
    flags = dovecot.flags()
    assert removed not in flags[1] and flags[3]
    assert daemon.call("status")["accounts"][0]["keywords"]["written"] == 0  # nothing new

    assert daemon.ctl("requeue", "1").returncode == 0  # by hand: the results are made anew
    daemon.wait_idle()
    assert dovecot.flags()[1] == first


def test_a_restart_mid_write_neither_loses_nor_repeats_a_write(
    dovecot: Dovecot, relay: ImapRelay, tmp_path: Path, daemons: StartDaemon
) -> None:
    dovecot.append(MAIL)
    before = dovecot.flags()
    daemon = daemons(tmp_path, config(tmp_path, relay.port)).start()
    sent = relay.hold_answers_after(rb"^UID STORE ")  # done on the server, never answered
    assert sent.wait(60), daemon.log_tail()
    (held,) = relay.commands(rb"^UID STORE ")
    first_uid = int(re.split(rb"[,:]", held.split()[2])[0])
    wait_until(lambda: bool(added(before, dovecot.flags())[first_uid]), 10, "the held STORE")
    daemon.kill()  # after the STORE, before its record
    states = query(tmp_path / "muninmail.db", "SELECT DISTINCT state FROM keyword_writes")
    assert states == [("pending",)]  # the intents, and no record of any write
    relay.release()

    daemon.start()
    daemon.wait_idle()
    expected = flagged(daemon)
    assert added(before, dovecot.flags()) == expected  # none lost
    assert set(stored_uids(relay).values()) == {1}  # none written twice
    assert sum(1 for k in expected.values() if k) > len(held.split()[2].split(b","))
    notes = [json.loads(daemon.ctl("--json", "show", str(i)).stdout) for i in range(1, 6)]
    recovered = [n for n in notes if n["keywords"] and n["keywords"]["note"]]
    assert recovered and all(
        "already set on the server" in n["keywords"]["note"] for n in recovered
    )


def test_a_connection_cut_at_the_write_is_retried_with_a_backoff(
    dovecot: Dovecot, relay: ImapRelay, tmp_path: Path, daemons: StartDaemon
) -> None:
    dovecot.append(MAIL[:2])
    before = dovecot.flags()
    cut = relay.cut_at(rb"^UID STORE ")
    daemon = daemons(tmp_path, config(tmp_path, relay.port)).start()
    assert cut.wait(60), daemon.log_tail()
    daemon.wait_idle()  # waits through the backoff: the write is due until it is done
    expected = flagged(daemon)
    assert added(before, dovecot.flags()) == expected
    assert "writing keywords failed" in daemon.log_text()
    assert daemon.call("status")["accounts"][0]["keywords"]["state"] == "idle"


def test_once_writes_the_keywords_before_it_reports(dovecot: Dovecot, tmp_path: Path) -> None:
    dovecot.append(MAIL[:3])
    before = dovecot.flags()
    path = config(tmp_path, dovecot.imap_port)
    done = subprocess.run(
        [sys.executable, "-m", "muninmaild", "--config", str(path), "--once"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = query(tmp_path / "muninmail.db", "SELECT COUNT(*) FROM keyword_writes")
    assert written == query(
        tmp_path / "muninmail.db", "SELECT COUNT(*) FROM keyword_writes WHERE state = 'written'"
    )
    assert written[0][0] == sum(1 for k in added(before, dovecot.flags()).values() if k) > 0
