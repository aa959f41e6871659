"""`muninctl requeue` by filter through the real binary: filters in combination, the count as
the answer, and --yes asked for above 1,000 messages (without it: the count, exit 1, nothing
requeued), whether they are chosen by filter or by ids from standard input."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.daemon_proc import clean_env
from tests.reliability.harness import (
    MUNINCTL,
    Daemon,
    fill_maildir,
    maildir_account,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
OLD = 1005  # more than the 1,000 a requeue takes without --yes
START = datetime(2026, 1, 1, tzinfo=UTC)


def mail(n: int, account: str) -> bytes:
    when = (START + timedelta(hours=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        f"From: Ann <ann@example.com>\nTo: robin@example.com\nSubject: {account} {n}\n"
        f"Date: {when}\nMessage-ID: <{account}-{n}@example.com>\n\n"
        "Could you please reply by Friday?\n"
    ).encode()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    state = tmp_path_factory.mktemp("requeue")
    fill_maildir(state / "old", [mail(n, "old") for n in range(OLD)])
    fill_maildir(state / "new", [mail(n, "new") for n in range(2)])
    accounts = [
        maildir_account("old", state / "old") + 'backfill = "none"\n',
        maildir_account("new", state / "new"),
    ]
    config = write_config(state, accounts=accounts, ai={"backend": "rules"})
    running = Daemon(state, config).start()
    running.wait_idle()
    yield running
    running.kill()


def requeue(daemon: Daemon, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MUNINCTL, "--socket", str(daemon.sock), "requeue", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )


def left_out(daemon: Daemon) -> dict[str, int]:
    status = json.loads(daemon.ctl("--json", "status").stdout)
    return {a["name"]: a["backfill"]["left_out"] for a in status["accounts"]}


def listed(daemon: Daemon, *args: str) -> list[dict[str, Any]]:
    done = daemon.ctl("--json", "list", "--limit", "1000", *args)
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_more_than_a_thousand_needs_yes_and_nothing_is_requeued_without(daemon: Daemon) -> None:
    done = requeue(daemon, "--skipped")
    assert done.returncode == 1
    assert f"{OLD} messages match: nothing was requeued; add --yes" in done.stderr
    ids = "\n".join(str(n) for n in range(1, OLD + 3))
    done = requeue(daemon, "-", stdin=ids)
    assert done.returncode == 1 and f"{OLD + 2} messages match" in done.stderr
    assert left_out(daemon) == {"old": OLD, "new": 0}
    assert listed(daemon, "--status", "pending") == []


def test_filters_combine_and_the_answer_is_the_count(daemon: Daemon) -> None:
    # The first day of the left-out mail: 24 messages, one an hour.
    done = requeue(daemon, "--skipped", "--account", "old", "--until", "2026-01-02")
    assert done.returncode == 0 and done.stdout == "requeued 24 message(s)\n", done.stderr
    assert left_out(daemon)["old"] == OLD - 24
    daemon.wait_idle()
    done = requeue(daemon, "--json", "--flag", "requires_response", "--since", "2026-01-01T12:00")
    assert json.loads(done.stdout) == {"requeued": 12}
    done = requeue(daemon, "--account", "new", "--status", "completed")
    assert done.stdout == "requeued 2 message(s)\n"
    done = requeue(daemon, "--account", "nobody", "--failed")
    assert done.returncode == 0 and done.stdout == "requeued 0 message(s)\n"
    daemon.wait_idle()


def test_yes_requeues_them_all(daemon: Daemon) -> None:
    done = requeue(daemon, "--skipped", "--yes")
    assert done.returncode == 0 and done.stdout == f"requeued {OLD - 24} message(s)\n"
    daemon.wait_idle(within_s=120)
    assert left_out(daemon) == {"old": 0, "new": 0}
    assert all(m["status"] == "completed" for m in listed(daemon))
