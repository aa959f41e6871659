"""`muninctl check`, the monitoring plugin: its verdicts on a status, and each state reached
through the real binaries (a daemon on a Maildir, a daemon whose Dovecot stopped, no daemon)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from muninctl.health import CRITICAL, OK, UNKNOWN, WARNING, Thresholds, Verdict, evaluate
from tests.peers.dovecot import Dovecot, message
from tests.test_imap_daemon import imap_config
from tests.test_muninctl import (
    AS_NOBODY,
    MUNINCTL,
    Daemon,
    add_mail,
    ctl,
    ctl_json,
    ok,
    public_dir,
    wait_until,
    write_config,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
# One perfdata item after the guidelines: 'label'=value[UOM];[warn];[crit];[min];[max]
PERF = re.compile(r"'[^'=]+'=-?[\d.]+(s|%|B|KB|MB|TB|c)?;[\d.]*;[\d.]*;[\d.]*(;[\d.]*)?")
LINE = re.compile(r"^MUNINMAIL (OK|WARNING|CRITICAL|UNKNOWN): [^|\n]+( \| .+)?\n$")


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def status(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "uptime_s": 7200.0,
        "paused": {"fetcher": False, "processor": False},
        "queue": {"pending": 0, "processing": 0, "completed": 12, "failed": 0},
        "waiting": {"due": 0, "oldest_pending_s": None, "oldest_due_s": None},
        "accounts": [account("work", 30)],
        "model": {"backend": "rules", "model": "rules"},
        "database": {"failing": False, "last_error": None, "last_error_at": None},
    }
    return found | changes


def account(name: str, age_s: float | None, error: str | None = None) -> dict[str, Any]:
    when = None if age_s is None else iso(NOW - timedelta(seconds=age_s))
    return {"name": name, "state": "idle", "last_fetch_at": when, "last_success_at": when,
            "last_error": error}  # fmt: skip


def verdict(found: dict[str, Any], **limits: Any) -> Verdict:
    return evaluate(found, NOW, Thresholds(**limits))


# -- the verdicts ---------------------------------------------------------------------------


def test_a_healthy_daemon_is_ok_with_perfdata_after_the_guidelines() -> None:
    v = verdict(status(waiting={"due": 1, "oldest_pending_s": 42.0, "oldest_due_s": 2.5}))
    assert v.state == OK
    assert v.reason == "0 pending, 0 failed, 1 account(s) fetched within 30s"
    items = v.perfdata.split(" ")
    assert all(PERF.fullmatch(item) for item in items), items
    assert "'failed'=0;0;;0" in items
    assert "'oldest_pending'=42s;;;0" in items and "'oldest_due'=2.5s;;;0" in items
    assert "'fetch_age_work'=30s;900;3600;0" in items
    assert LINE.match(v.line() + "\n")


@pytest.mark.parametrize(
    ("changes", "limits", "state", "reason"),
    [
        ({"accounts": [account("work", 16 * 60)]}, {}, WARNING,
         "account work: no successful fetch for 16m 00s"),
        ({"accounts": [account("work", 61 * 60, "Connection refused")]}, {}, CRITICAL,
         "account work: no successful fetch for 1h 01m (Connection refused)"),
        ({"accounts": [account("work", None)], "uptime_s": 20.0}, {}, OK, "0 pending"),
        ({"accounts": [account("work", None)], "uptime_s": 3700.0}, {}, CRITICAL,
         "account work: no successful fetch since the daemon started 1h 01m ago"),
        ({"accounts": [account("work", 90)]}, {"fetch_warning_s": 60}, WARNING, "for 1m 30s"),
        ({"paused": {"fetcher": False, "processor": True},
          "queue": {"pending": 4, "processing": 0, "completed": 1, "failed": 0}}, {}, WARNING,
         "processor paused with 4 pending"),
        ({"paused": {"fetcher": False, "processor": True}}, {}, OK, "processor paused"),
        ({"paused": {"fetcher": True, "processor": False},
          "accounts": [account("work", 5 * 3600)]}, {}, WARNING,
         "fetcher paused: new mail is not fetched"),
        ({"queue": {"pending": 0, "processing": 0, "completed": 1, "failed": 3}}, {}, WARNING,
         "3 failed message(s) held"),
        ({"queue": {"pending": 0, "processing": 0, "completed": 1, "failed": 3}},
         {"failed_warning": 3}, OK, "3 failed"),
        ({"model": {"hold": {"reason": "quota", "message": "Tokens per day limit exceeded",
                             "until": "2026-11-30T00:00:00Z"}}}, {}, WARNING,
         "model quota spent until 2026-11-30T00:00:00Z: Tokens per day limit exceeded"),
        ({"model": {"hold": {"reason": "account", "message": "HTTP 401", "until": None}}}, {},
         WARNING, "the model service refuses the account: HTTP 401"),
        ({"model": {"hold": {"reason": "rate_limit", "message": "429", "until": None}}}, {},
         OK, "0 pending"),
        ({"model": {"hold": None}}, {}, OK, "0 pending"),
        ({"database": {"failing": True, "last_error": "database or disk is full"}}, {},
         CRITICAL, "database writes fail: database or disk is full"),
    ],
)  # fmt: skip
def test_each_rule(
    changes: dict[str, Any], limits: dict[str, Any], state: int, reason: str
) -> None:
    v = verdict(status(**changes), **limits)
    assert (v.state, reason in v.reason) == (state, True), v.reason


def test_every_problem_is_named_the_worst_first() -> None:
    v = verdict(
        status(
            accounts=[account("home", 20 * 60), account("work", 2 * 3600)],
            queue={"pending": 0, "processing": 0, "completed": 1, "failed": 1},
        )
    )
    assert v.state == CRITICAL
    assert v.reason.startswith("account work: no successful fetch for 2h 00m; account home")
    assert v.reason.endswith("1 failed message(s) held (muninctl list --status failed)")


def test_an_older_daemon_s_status_is_read_with_what_it_has() -> None:
    old = status()
    del old["waiting"], old["database"]
    old["accounts"] = [{"name": "work", "last_fetch_at": iso(NOW - timedelta(seconds=5))}]
    v = verdict(old)
    assert v.state == OK and "'fetch_age_work'=5s;900;3600;0" in v.perfdata
    assert "'due'" not in v.perfdata


# -- the real binaries ------------------------------------------------------------------------


def check(sock: Path | str, *args: str, user: list[str] | None = None) -> tuple[int, str]:
    done = ctl(sock, "check", *args, user=user)
    assert LINE.match(done.stdout), done.stdout + done.stderr
    return done.returncode, done.stdout.strip()


def check_until(sock: Path, *args: str, state: int, within_s: float = 20.0) -> tuple[int, str]:
    """The check once it reaches `state` (a fetch failing, an age growing: polled)."""
    found: list[tuple[int, str]] = []

    def reached() -> bool:
        found.append(check(sock, *args))
        return found[-1][0] == state

    wait_until(reached, within_s)
    return found[-1]


@pytest.fixture
def maildir_daemon() -> Iterator[tuple[Daemon, Path]]:
    state = public_dir("mchk")
    maildir = state / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    add_mail(maildir, 3)
    daemon = Daemon(state, write_config(state, maildir)).start()
    try:
        ok(daemon.sock, "wait-idle", "--timeout", "60")
        yield daemon, maildir
    finally:
        code, err = daemon.stop()
        shutil.rmtree(state)
    assert code == 0, err


@pytest.mark.integration
def test_healthy_then_paused_with_work_through_the_binary(
    maildir_daemon: tuple[Daemon, Path],
) -> None:
    daemon, maildir = maildir_daemon
    code, line = check(daemon.sock)
    assert code == 0 and line.startswith("MUNINMAIL OK: 0 pending, 0 failed, 1 account(s)")
    assert "'completed'=3;;;0" in line
    ok(daemon.sock, "pause", "processor")
    assert check(daemon.sock)[0] == 0  # paused, but nothing waits
    add_mail_more(maildir, 2)
    ok(daemon.sock, "fetch-now")
    wait_until(lambda: ctl_json(daemon.sock, "status")["queue"]["pending"] == 2)
    code, line = check(daemon.sock)
    assert code == 1, line
    assert line.startswith("MUNINMAIL WARNING: processor paused with 2 pending | ")
    assert "'pending'=2;;;0" in line and "'due'=2;;;0" in line
    ok(daemon.sock, "resume")
    ok(daemon.sock, "wait-idle", "--timeout", "30")
    assert check(daemon.sock)[0] == 0


def add_mail_more(maildir: Path, count: int) -> None:
    for n in range(count):
        name = f"{time.time_ns()}.M{n}P1.muninchk"
        (maildir / "tmp" / name).write_text(
            f"From: a@example.com\nSubject: More {n}\nMessage-ID: <{name}@example.com>\n\nHi.\n"
        )
        (maildir / "tmp" / name).rename(maildir / "new" / name)


def test_stale_fetch_with_a_stopped_dovecot_warns_then_is_critical(
    dovecot: Dovecot,
) -> None:
    dovecot.append([message(1)])
    state = public_dir("mchk")
    daemon = Daemon(state, imap_config(state / "m.toml", state, dovecot)).start()
    try:
        ok(daemon.sock, "wait-idle", "--timeout", "60")
        assert check(daemon.sock)[0] == 0
        dovecot.stop()
        ok(daemon.sock, "fetch-now")
        wait_until(lambda: ctl_json(daemon.sock, "status")["accounts"][0]["state"] == "backoff")
        # The account's last success ages from here; thresholds of seconds let the test see
        # each state without waiting a quarter of an hour.
        code, line = check_until(daemon.sock, "--fetch-warning", "1s", state=1)
        assert line.startswith("MUNINMAIL WARNING: account mail: no successful fetch for ")
        assert "Connection refused" in line or "cannot connect" in line, line
        code, line = check_until(
            daemon.sock, "--fetch-warning", "1s", "--fetch-critical", "2s", state=2
        )
        assert line.startswith("MUNINMAIL CRITICAL: account mail: no successful fetch for ")
        assert re.search(r"'fetch_age_mail'=[\d.]+s;1;2;0", line), line
        dovecot.start()
        ok(daemon.sock, "fetch-now")
        check_until(daemon.sock, state=0)  # fetching again: OK with the default thresholds
    finally:
        code, err = daemon.stop()
        shutil.rmtree(state)
    assert code == 0, err


def test_no_daemon_is_critical(tmp_path: Path) -> None:
    code, line = check(tmp_path / "control.sock")
    assert code == 2
    assert line.startswith("MUNINMAIL CRITICAL: cannot reach muninmaild: there is no socket")


def test_a_socket_nobody_listens_on_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: what a crashed daemon leaves
    code, line = check(path)
    assert code == 2 and "nothing listens on" in line


@pytest.mark.parametrize(
    "args",
    [
        ["--fetch-warning", "soon"],
        ["--failed-warning", "-1"],
        ["--fetch-warning", "2h", "--fetch-critical", "1h"],
        ["--no-such-option"],
    ],
)
def test_a_bad_option_is_unknown_on_one_line(tmp_path: Path, args: list[str]) -> None:
    code, line = check(tmp_path / "control.sock", *args)
    assert code == UNKNOWN and line.startswith("MUNINMAIL UNKNOWN: usage: "), line


@pytest.mark.integration
def test_a_user_outside_the_group_is_unknown(maildir_daemon: tuple[Daemon, Path]) -> None:
    daemon, _ = maildir_daemon
    if shutil.which(AS_NOBODY[0]) is None:
        pytest.skip("needs setpriv")
    code, line = check(daemon.sock, user=AS_NOBODY)
    assert code == UNKNOWN, line
    assert line.startswith("MUNINMAIL UNKNOWN: ") and "muninmail" in line


def test_check_help_is_not_an_error() -> None:
    done = subprocess.run(
        [MUNINCTL, "check", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and "--fetch-critical" in done.stdout
