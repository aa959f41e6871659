"""Scenario 7, secrets: a known IMAP password, API key and database password never show.

The daemon runs with all three (from the environment variables IMAP_PASSWORD, CEREBRAS_API_KEY
and DATABASE_URL; the database is PostgreSQL with a password in its URL) at log level debug, and
every error path of the other scenarios is provoked: model faults, a model that refuses the key
and quotes it back, the IMAP connection cut and the server restarted, the server refusing the
known password, a broken reload whose bad value is the password itself, garbage and bad requests
on the control socket, the database's connections killed. Then the log, every `status`, `list`
and `show` (human and JSON), every error answer, the sd_notify status lines and `--check-config`
are searched for each secret, in the forms it could be written in (as is, JSON- or repr-escaped,
IMAP-quoted, and its last 8 characters for a cut-off copy).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModelServer
from tests.peers.dovecot import USER, Dovecot, message
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import Daemon, wait_until, write_config

IMAP_SECRET = 'imap-Pw"7f3c\\9a1e'  # a quote and a backslash: escaped on the wire
API_KEY = "csk-sec-5b4c3d2e1f0a9b8c"
DB_SECRET = "db-pw-3e8d7c6b"
FAULTS = ("429", "500", "503", "timeout", "drop", "malformed_json", "bad_schema", "empty_length")


def forms(secret: str) -> set[str]:
    """Every way a secret could be written out."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        secret.replace("\\", "\\\\").replace('"', '\\"'),
        secret[-8:],
    }


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


@pytest.fixture
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer(
        latency=0.01,
        hold_s=1.5,
        retry_after="1",
        tokens_per_minute=10**9,
        requests_per_day=10**9,
        window_s=1.0,
        echo_key=True,
    )
    server.set_fault_rate(0.5, FAULTS, seed=11)
    with server:
        yield server


def set_password(dovecot: Dovecot, password: str) -> None:
    """The server's own password for the user, once Dovecot takes it. It reads the file again
    when its modification time (in whole seconds) or size changed, looking at most once a
    second: the time is moved on a second so that a rewrite is always seen."""
    users = dovecot.root / "users"
    before = users.stat().st_mtime
    users.write_text(f"{USER}:{{PLAIN}}{password}\n")
    stamp = max(time.time(), before + 1)
    os.utime(users, (stamp, stamp))
    wait_until(lambda: dovecot.accepts(USER, password), 15, "Dovecot to take the new password")


def config_text(dovecot: Dovecot, model: FakeModelServer, state: Path, security: str) -> str:
    write_config(
        state,
        daemon={"log_level": "debug", "control_idle_timeout": 2},
        processor={
            "concurrency": 2,
            "max_attempts": 2,
            "lease_seconds": 3,
            "retry_base_seconds": 0.1,
            "retry_max_seconds": 0.3,
        },
        ai={
            "backend": "cerebras",
            "base_url": model.base_url,
            "timeout": 1,
            "requests_per_minute": 1_000_000,
            "tokens_per_minute": 1_000_000_000,
        },
    )
    path = state / "muninmaild.toml"
    # The password comes from IMAP_PASSWORD; `security` lets a reload break on purpose.
    return path.read_text() + (
        f'[[accounts]]\nname = "mail"\nserver = "127.0.0.1"\nport = {dovecot.imap_port}\n'
        f'security = {security}\nusername = "{USER}"\npoll_interval = 60\n'
    )


class Collected:
    """Everything the daemon said to anyone, to be searched for secrets."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.texts: list[str] = []

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.daemon.ctl(*args)
        self.texts += [done.stdout, done.stderr]
        return done

    def everything_shown(self) -> None:
        for args in (("status",), ("--json", "status"), ("--json", "list", "--details")):
            self.ctl(*args)
        listed = self.ctl("--json", "list", "--limit", "1000").stdout
        for line in listed.splitlines():
            self.ctl("--json", "show", str(json.loads(line)["id"]))
            self.ctl("show", str(json.loads(line)["id"]))

    def raw(self, *lines: bytes) -> None:
        """Send lines as they are; keep every answer."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.daemon.sock))
            sock.sendall(b"".join(lines))
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        self.texts.append(data.decode("utf-8", "replace"))


def account(daemon: Daemon) -> dict[str, object]:
    found: dict[str, object] = daemon.call("status")["accounts"][0]
    return found


def kill_database_connections(db_url: str) -> None:
    name = db_url.rsplit("/", 1)[1]
    sql = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qAt", "-c", sql],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_no_secret_in_any_log_status_show_or_error_answer(
    pg_url: str, dovecot: Dovecot, model: FakeModelServer, tmp_path: Path, daemons: StartDaemon
) -> None:
    set_password(dovecot, IMAP_SECRET)
    dovecot.deliver([(message(1), False)])
    model.queue_faults("500", "500")  # message 1 alone: both its attempts fail, it is held
    config = tmp_path / "muninmaild.toml"
    good = config_text(dovecot, model, tmp_path, '"none"')
    config.write_text(good)
    db_url = pg_url.replace("postgres@", f"postgres:{DB_SECRET}@", 1)
    env = {"IMAP_PASSWORD": IMAP_SECRET, "CEREBRAS_API_KEY": API_KEY, "DATABASE_URL": db_url}
    daemon = daemons(tmp_path, config, env).start()
    seen = Collected(daemon)

    # Model faults: message 1 fails for good, the next ones meet every kind of fault.
    daemon.wait_idle(within_s=60)
    assert daemon.call("status")["queue"]["failed"] == 1
    dovecot.deliver((message(n), False) for n in range(2, 9))
    daemon.call("fetch-now")
    daemon.wait_idle(within_s=90)
    model.clear_faults()

    # The IMAP connection cut, the server restarted, new mail each time.
    dovecot.kick()
    dovecot.restart()
    dovecot.deliver([(message(9), False)])
    daemon.call("fetch-now")
    wait_until(lambda: account(daemon)["queued"] == 9, 60, "mail after the restart")

    # The server no longer takes the known password: refused, shown, then taken again.
    set_password(dovecot, "rotated-elsewhere")
    dovecot.kick()
    wait_until(lambda: account(daemon)["state"] == "auth_failed", 30, "the login refused")
    seen.everything_shown()
    set_password(dovecot, IMAP_SECRET)
    daemon.call("fetch-now")
    wait_until(lambda: account(daemon)["state"] == "idle", 30, "the login taken again")

    # A broken reload whose bad value is the password, by SIGHUP and by muninctl.
    config.write_text(config_text(dovecot, model, tmp_path, toml_string(IMAP_SECRET)))
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in daemon.log_text(), 10, "the SIGHUP reload refused")
    config.write_text(good + f"password = {toml_string(IMAP_SECRET)}\n[oops\n")
    refused = seen.ctl("reload")  # the reason comes back too, the password masked in it
    assert refused.returncode == 1 and "reload refused" in refused.stderr, refused.stderr
    wait_until(lambda: daemon.log_text().count("reload refused") == 2, 10, "reload refused")
    config.write_text(good)

    # Garbage and bad requests on the control socket; muninctl's refusals.
    seen.raw(random.Random(1).randbytes(20_000), b"\n", b'{"id": 1, "cmd": "show"}\n')
    seen.raw(b'{"id": 2, "cmd": "list", "args": {"status": "x"}}\n', b"[1, 2]\n")
    seen.ctl("show", "999999")
    seen.ctl("fetch-now", "nope")

    # The database's connections killed under the daemon.
    kill_database_connections(pg_url)
    daemon.call("fetch-now")

    # The model refuses the key and quotes it back.
    model.queue_faults("401")
    dovecot.deliver([(message(10), False)])
    daemon.call("fetch-now")
    wait_until(lambda: "refused the API key" in daemon.log_text(), 30, "the key refused")
    seen.everything_shown()

    check = subprocess.run(
        [sys.executable, "-m", "muninmaild", "--config", str(config), "--check-config"],
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert daemon.notify is not None
    notified = "\n".join(daemon.notify.lines())
    assert daemon.stop() == 0, daemon.log_tail()
    log = daemon.log_text()

    # The error paths were taken.
    assert "login of 'alice' refused" in log
    assert "refused the API key (HTTP 401): Incorrect API key provided: ********" in log
    assert log.count("reload refused") == 2 and "fetch failed" in log
    shown = "\n".join(seen.texts)
    assert '"status": "failed"' in shown or '"status":"failed"' in shown
    assert "bad_request" in shown and "not_found" in shown and "auth_failed" in shown

    searched = {"log": log, "answers": shown, "notify": notified, "check-config": check.stdout}
    for name, secret in (("IMAP", IMAP_SECRET), ("API", API_KEY), ("database", DB_SECRET)):
        for form in forms(secret):
            for where, text in searched.items():
                assert form not in text, f"the {name} secret ({form!r}) is in {where}"
