"""Scenario 4, hostile mail: every message gets a row, and none stops a loop.

The same hostile set (tests/reliability/hostile.py: a 10 MB attachment, 1,000 parts, nesting
100 and 2,000 deep, unknown and lying charsets, NUL bytes, a 200 KB header line, header
injection, non-UTF-8 subjects, and CPython's 48 test messages) sits in a real Dovecot mailbox and
in a Maildir. The daemon fetches both, the offline `rules` backend analyses every message, and
the control socket shows each row. Then one ordinary message more in each source must still be
fetched and processed: the loops are alive. On SQLite and on PostgreSQL, whose text columns
refuse NUL bytes and lone surrogates.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.peers.dovecot import Dovecot
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import (
    fill_maildir,
    imap_account,
    maildir_account,
    numbered_message,
    write_config,
)
from tests.reliability.hostile import hostile_messages

ONE_LINE_FIELDS = ("subject", "from", "to", "cc", "message_id")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'muninmail.db'}"
    url: str = request.getfixturevalue("pg_url")
    assert url.startswith(PG_URL.rsplit("/", 1)[0])
    return url


def assert_readable(detail: dict[str, object]) -> None:
    for name in ONE_LINE_FIELDS:
        value = detail.get(name)
        assert value is None or isinstance(value, str), (name, value)
        if isinstance(value, str):
            assert not set(value) & {"\r", "\n", "\x00"}, (detail["id"], name, value[:200])
    assert detail["status"] == "completed", detail


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_hostile_mail_gets_a_row_each_and_stops_no_loop(
    dovecot: Dovecot, tmp_path: Path, db_url: str, daemons: StartDaemon
) -> None:
    mail = hostile_messages()
    dovecot.deliver((raw, False) for raw in mail)
    maildir = tmp_path / "Maildir"
    fill_maildir(maildir, mail)
    config = write_config(
        tmp_path,
        accounts=[imap_account(dovecot), maildir_account("local", maildir)],
        db_url=db_url,
        ai={"backend": "rules"},
    )
    daemon = daemons(tmp_path, config).start()
    daemon.wait_idle(within_s=150)

    listed = daemon.call("list", {"limit": 1000})["messages"]
    assert Counter(m["account"] for m in listed) == {"imap": len(mail), "local": len(mail)}
    for row in listed:
        assert_readable(daemon.call("show", {"id": row["id"]})["message"])
    details = daemon.call("list", {"limit": 1000, "details": True})["messages"]
    assert len(details) == len(listed)
    status = daemon.call("status")
    assert [(a["state"], a["last_error"]) for a in status["accounts"]] == [("idle", None)] * 2

    # Both fetchers and the processor are still alive: ordinary mail goes through.
    dovecot.deliver([(numbered_message(1), False)])
    fill_maildir(maildir, [numbered_message(2)], first=len(mail))
    daemon.call("fetch-now")
    daemon.wait_idle(within_s=60)
    queue = daemon.call("status")["queue"]
    assert queue == {"pending": 0, "processing": 0, "completed": 2 * len(mail) + 2, "failed": 0}
    for _ in range(5):
        assert daemon.call("ping") == {"pong": True}
    assert daemon.stop() == 0, daemon.log_tail()
    log = daemon.log_text()
    assert "Traceback" not in log, log[-5000:]
