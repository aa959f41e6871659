"""What the reliability scenarios share: the daemon as a process, its configuration, the queue.

A `Daemon` is the real `muninmaild` binary started the way systemd would start it: a
NOTIFY_SOCKET of the test's own, stderr appended to one log file across restarts (a pipe nobody
reads would fill up and stall the daemon in a long run), and the control socket spoken to through
muninctl's own client library. Every daemon a test starts is killed by the `daemons` fixture,
whatever happens to the test.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from muninctl.client import Connection
from tests.daemon_proc import clean_env
from tests.fakes.notify import NotifyReceiver
from tests.kinds import needs_integration
from tests.peers.dovecot import PASSWORD, USER, Dovecot

MUNINCTL = str(Path(sys.executable).parent / "muninctl")
Rows = list[tuple[Any, ...]]


class Daemon:
    def __init__(self, state: Path, config: Path, env: Mapping[str, str] | None = None) -> None:
        self.state = state
        self.config = config
        self.sock = state / "control.sock"
        self.log = state / "daemon.log"
        self.env = clean_env(**(env or {}))
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify: NotifyReceiver | None = None
        self.starts = 0

    def start(self, *, ready: bool = True, within_s: float = 30.0) -> Daemon:
        """Start the process; with `ready`, return once it has sent READY=1."""
        needs_integration("the daemon as a process")
        self.starts += 1
        self.notify = NotifyReceiver(self.state / f"notify-{self.starts}.sock")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "muninmaild", "--config", str(self.config)],
                env=self.env | {"NOTIFY_SOCKET": str(self.notify.path)},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        if ready and not self.notify.wait_for("READY=1", timeout=within_s):
            code = self.kill()
            raise AssertionError(f"no READY=1 (exit {code}); log:\n{self.log_tail()}")
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int | None:
        """SIGKILL, as a crash or the OOM killer would; the exit status."""
        return self._end(signal.SIGKILL, 10.0)

    def stop(self, within_s: float = 30.0) -> int | None:
        """SIGTERM, as `systemctl stop`; SIGKILL if it does not end in time."""
        return self._end(signal.SIGTERM, within_s)

    def _end(self, sig: signal.Signals, within_s: float) -> int | None:
        proc, self.proc = self.proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(sig)
            try:
                code = proc.wait(within_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        return code

    # -- the control socket ----------------------------------------------------------------------

    def call(self, cmd: str, args: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """One request through muninctl's client library; an error answer raises its Failure."""
        with Connection(str(self.sock), timeout) as conn:
            return conn.call(cmd, args)

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """The muninctl binary, as a person or a script runs it."""
        return subprocess.run(
            [MUNINCTL, "--socket", str(self.sock), *args],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=timeout,
        )

    def wait_idle(self, within_s: float = 60.0) -> None:
        done = self.ctl("wait-idle", "--timeout", str(within_s), timeout=within_s + 30)
        assert done.returncode == 0, f"{done.stderr}\nlog:\n{self.log_tail()}"

    # -- what it wrote ---------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def wait_until(
    condition: Callable[[], bool],
    within_s: float = 30.0,
    what: str = "condition",
    explain: Callable[[], str] | None = None,
) -> None:
    """Another process's progress can only be polled; `explain` adds, say, a log to a miss."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            raise AssertionError(f"{what}: not met within {within_s:g} s{detail}")
        time.sleep(0.05)


# -- configuration --------------------------------------------------------------------------------


def toml_table(name: str, values: Mapping[str, object]) -> str:
    lines = [f"[{name}]"]
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, list | tuple):  # of strings: a JSON list is a TOML array
            lines.append(f"{key} = {json.dumps(list(value))}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def maildir_account(name: str, path: Path) -> str:
    return (
        f'[[accounts]]\nname = "{name}"\nsource = "maildir"\npath = "{path}"\npoll_interval = 1\n'
    )


def imap_account(dovecot: Dovecot, name: str = "imap") -> str:
    """Plain IMAP on loopback; the password of the Dovecot helper, unless IMAP_PASSWORD is set."""
    return (
        f'[[accounts]]\nname = "{name}"\nsource = "imap"\nserver = "127.0.0.1"\n'
        f'port = {dovecot.imap_port}\nsecurity = "none"\nusername = "{USER}"\n'
        f'password = "{PASSWORD}"\npoll_interval = 60\n'
    )


def write_config(
    state: Path,
    *,
    accounts: Iterable[str] = (),
    db_url: str | None = None,
    daemon: Mapping[str, object] | None = None,
    processor: Mapping[str, object] | None = None,
    ai: Mapping[str, object] | None = None,
) -> Path:
    """A configuration for a daemon whose state (socket, log, SQLite file) lives in `state`."""
    base: dict[str, object] = {
        "state_dir": str(state),
        "control_socket": str(state / "control.sock"),
        "log_level": "info",
        "drain_timeout": 3,
    }
    text = toml_table("daemon", base | dict(daemon or {}))
    url = db_url or f"sqlite+aiosqlite:///{state / 'muninmail.db'}"
    text += toml_table("database", {"url": url})
    text += toml_table("processor", {"poll_interval": 0.2} | dict(processor or {}))
    text += toml_table("ai", {"backend": "noop"} | dict(ai or {}))
    for account in accounts:
        text += account
    path = state / "muninmaild.toml"
    path.write_text(text)
    return path


# -- mail and the queue ---------------------------------------------------------------------------


def numbered_message(n: int, *, body: str = "") -> bytes:
    text = body or f"Hello, this is message {n}.\nPlease send the report {n} by Friday.\n"
    return (
        (
            f"From: Ann <ann@example.com>\r\nTo: robin@example.com\r\nSubject: Report {n}\r\n"
            f"Message-ID: <report-{n}@example.com>\r\n\r\n{text}"
        )
        .replace("\r\n", "\n")
        .encode()
    )


def fill_maildir(root: Path, messages: Iterable[bytes], first: int = 0) -> int:
    """Deliver messages into a Maildir's new/, in order; how many."""
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    count = 0
    for i, raw in enumerate(messages, start=first):
        (root / "new" / f"{1_000_000 + i}.M{i}P1.test").write_bytes(raw)
        count += 1
    return count


def query(db: Path, sql: str, params: Iterable[object] = ()) -> Rows:
    """A read of the daemon's SQLite file from outside (WAL readers never block its writers)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, tuple(params)).fetchall()
    finally:
        conn.close()


def status_counts(db: Path) -> dict[str, int]:
    try:
        rows = query(db, "SELECT processing_status, COUNT(*) FROM emails GROUP BY 1")
    except sqlite3.OperationalError:  # not created or not migrated yet
        return {}
    return {str(status): int(count) for status, count in rows}
