"""The digest through the real binary: printed, and delivered into a real Dovecot mailbox.

Delivered once per period as a well-formed MIME message (Python's `email` with `policy.default`
finds no defect), recognised by the fetcher when it comes back, and never sent to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from muninmaild.fetch.source import DIGEST_NOTE
from tests.peers.dovecot import Dovecot
from tests.peers.imap_relay import ImapRelay
from tests.reliability.harness import Daemon, maildir_account, write_config
from tests.test_keywords_daemon import MAIL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
USER = "alice@example.com"  # a user name that is an address: the digest is from and to it


def config(state: Path, port: int, *, digest: bool = True) -> Path:
    account = (
        f'[[accounts]]\nname = "mail"\nsource = "imap"\nserver = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\nusername = "{USER}"\npassword = "secret"\n'
        "poll_interval = 60\n"
    )
    path = write_config(state, accounts=[account], ai={"backend": "rules"})
    if digest:
        path.write_text(path.read_text() + '\n[digest]\naccount = "mail"\nmailbox = "INBOX"\n')
    return path


@pytest.fixture
def started() -> Iterator[list[Daemon]]:
    daemons: list[Daemon] = []
    yield daemons
    for daemon in daemons:
        daemon.kill()


def start(started: list[Daemon], state: Path, path: Path) -> Daemon:
    started.append(Daemon(state, path).start())
    started[-1].wait_idle()
    return started[-1]


def ok(daemon: Daemon, *args: str) -> str:
    done = daemon.ctl(*args, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def dovecot(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    return dovecot_factory(users=(USER,))


def inbox(dovecot: Dovecot) -> list[bytes]:
    """Every message of the INBOX, read without changing a flag."""
    with dovecot.client(USER) as imap:
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
    return [bytes(item[1]) for item in data if isinstance(item, tuple)]


def defects(msg: EmailMessage) -> list[object]:
    found: list[object] = []
    for part in msg.walk():
        found += part.defects
        found += [d for value in part.values() for d in getattr(value, "defects", ())]
    return found


def test_the_digest_is_delivered_once_per_period_valid_and_never_triaged(
    dovecot: Dovecot, tmp_path: Path, started: list[Daemon]
) -> None:
    dovecot.append(MAIL, user=USER)
    daemon = start(started, tmp_path, config(tmp_path, dovecot.imap_port))
    printed = ok(daemon, "digest")
    assert printed.startswith("muninmail digest, all accounts: 5 message(s) from ")
    for section in ("Needs a reply, urgent, meeting requests: ", "Everything else: 2 (1 from"):
        assert section in printed
    assert "Sender 5: 1 bulk message(s) (#5), latest: Issue 12" in printed

    out = ok(daemon, "digest", "--deliver")
    assert re.fullmatch(r"digest 24h/\d{4}-\d\d-\d\d delivered to mail/INBOX\n", out), out
    again = json.loads(ok(daemon, "--json", "digest", "--deliver"))["delivery"]
    assert again["appended"] is False and again["period"] == out.split()[1]
    third = ok(daemon, "digest", "--deliver")
    assert "is already in mail/INBOX" in third and "nothing appended" in third
    messages = inbox(dovecot)
    assert len(messages) == len(MAIL) + 1  # one digest, however often it was asked for

    msg = message_from_bytes(messages[-1], policy=policy.default)
    assert isinstance(msg, EmailMessage) and defects(msg) == []
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert str(msg["Subject"]).startswith("muninmail digest: ")
    assert parsedate_to_datetime(str(msg["Date"])).tzinfo is not None
    assert msg["X-Muninmail-Digest"] == out.split()[1]
    assert msg["From"].addresses[0].addr_spec == "alice@example.com"
    plain = msg.get_body(("plain",))
    assert plain is not None
    # The same digest as printed (the first line names the period's times, to the minute).
    assert plain.get_content().splitlines()[1:] == printed.splitlines()[1:]

    ok(daemon, "fetch-now")
    daemon.wait_idle()
    listed = [json.loads(line) for line in ok(daemon, "--json", "list").splitlines()]
    digest_row = next(m for m in listed if m["subject"].startswith("muninmail digest"))
    shown = json.loads(ok(daemon, "--json", "show", str(digest_row["id"])))
    assert (shown["status"], shown["attempts"], shown["flags"]) == ("completed", 0, [])
    assert shown["skip_reason"] == DIGEST_NOTE and shown["summary"] is None
    assert shown["headers"]["x-muninmail-digest"] == msg["X-Muninmail-Digest"]
    # Nor is it the period's mail of the next digest.
    assert json.loads(ok(daemon, "--json", "digest"))["digest"]["counts"]["messages"] == 5


def test_a_delivery_cut_short_is_retried_and_appended_once(
    dovecot: Dovecot, tmp_path: Path, started: list[Daemon]
) -> None:
    relay = ImapRelay(dovecot.imap_port)
    try:
        dovecot.append(MAIL[:1], user=USER)
        daemon = start(started, tmp_path, config(tmp_path, relay.port))
        cut = relay.cut_at(rb"^APPEND ")
        out = ok(daemon, "digest", "--deliver")
        assert cut.is_set() and "delivered to mail/INBOX" in out
        assert len(inbox(dovecot)) == 2
        assert len(relay.commands(rb"^APPEND ")) == 2  # the one cut, and the one that arrived
        assert relay.commands(rb"^UID SEARCH HEADER Message-ID ")  # looked before appending
        assert "trying again" in daemon.log_text()
    finally:
        relay.close()


def test_delivery_needs_configuring_and_accounts_must_exist(
    tmp_path: Path, started: list[Daemon]
) -> None:
    maildir = Path(__file__).resolve().parent.parent / "muninmaild" / "demo" / "maildir"
    path = write_config(tmp_path, accounts=[maildir_account("demo", maildir)])
    daemon = start(started, tmp_path, path)
    refused = daemon.ctl("digest", "--deliver")
    assert refused.returncode == 1 and "not configured" in refused.stderr
    assert "(not_configured)" in refused.stderr
    unknown = daemon.ctl("digest", "--account", "work")
    assert unknown.returncode == 1 and "there is no account 'work'" in unknown.stderr
    bad = daemon.ctl("digest", "--since", "yesterday")
    assert bad.returncode == 2 and "use a period such as" in bad.stderr
    week = json.loads(ok(daemon, "--json", "digest", "--since", "1w", "--account", "demo"))
    assert week["digest"]["period"]["seconds"] == 7 * 86400
    assert week["digest"]["period"]["key"].endswith("/demo")
