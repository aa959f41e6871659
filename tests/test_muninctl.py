"""muninctl, the real binary, against a real muninmaild process on a temporary socket.

One daemon on the demo Maildir serves the read-mostly tests of this module; the tests that
pause, restart or start under socket activation run their own.
"""

from __future__ import annotations

import contextlib
import json
import random
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import peer_missing
from tests.daemon_proc import DEMO_MAILDIR, clean_env, finish, start, stop
from tests.fakes.notify import NotifyReceiver

pytestmark = pytest.mark.integration  # starts the daemon as a process (tests/kinds.py)

BIN = Path(sys.executable).parent
MUNINCTL = str(BIN / "muninctl")
DEMO_MESSAGES = sorted((DEMO_MAILDIR / "new").iterdir())
ACTIVATE = ["systemd-socket-activate", "-l"]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def public_dir(prefix: str) -> Path:
    """A short path under /tmp that another user may traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def write_config(state: Path, maildir: Path, daemon_extra: str = "") -> Path:
    config = state / "muninmaild.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "{state}"
control_socket = "{state}/control.sock"
log_level = "info"
drain_timeout = 5
{daemon_extra}

[database]
url = "sqlite+aiosqlite:///{state}/muninmail.db"

[[accounts]]
name = "demo"
source = "maildir"
path = "{maildir}"
poll_interval = 1
"""
    )
    return config


def ctl(
    sock: Path | str, *args: str, stdin: str | None = None, user: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.pop("MUNINCTL_SOCKET", None)
    return subprocess.run(
        [*(user or []), MUNINCTL, "--socket", str(sock), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def ok(sock: Path | str, *args: str, stdin: str | None = None) -> str:
    done = ctl(sock, *args, stdin=stdin)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def ctl_json(sock: Path, *args: str) -> Any:
    return json.loads(ok(sock, "--json", *args))


class Daemon:
    """A muninmaild process; `start()` returns once it has sent READY=1."""

    def __init__(self, state: Path, config: Path) -> None:
        self.state = state
        self.config = config
        self.sock = state / "control.sock"
        self.proc: subprocess.Popen[str] | None = None
        self._notify: NotifyReceiver | None = None

    def start(self) -> Daemon:
        self._notify = NotifyReceiver(self.state / f"notify-{time.monotonic_ns()}.sock")
        self.proc = start(self.config, env=clean_env(NOTIFY_SOCKET=str(self._notify.path)))
        if not self._notify.wait_for("READY=1", timeout=30):
            code, _, err = stop(self.proc)
            raise AssertionError(f"no READY=1 (exit {code}): {err}")
        return self

    def stop(self) -> tuple[int, str]:
        assert self.proc is not None and self._notify is not None
        code, _, err = stop(self.proc)
        self._notify.close()
        self.proc = None
        return code, err

    def reports(self) -> list[str]:
        """The STATUS= lines sent so far (every 5 s, and with READY=1)."""
        assert self._notify is not None
        return [line for line in self._notify.lines() if line.startswith("STATUS=")]


@pytest.fixture(scope="module")
def demo() -> Iterator[Daemon]:
    state = public_dir("mctl")
    config = write_config(state, DEMO_MAILDIR, "control_idle_timeout = 1.5")
    daemon = Daemon(state, config).start()
    try:
        ok(daemon.sock, "wait-idle", "--timeout", "60")
        yield daemon
    finally:
        code, err = daemon.stop()
        shutil.rmtree(state)
    assert code == 0, err


@pytest.fixture
def own_state() -> Iterator[Path]:
    state = public_dir("mctl")
    yield state
    shutil.rmtree(state)


def lines_of_json(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# -- every command, for people and for scripts --------------------------------------------------

Check = Callable[[str], bool]
COMMANDS: list[tuple[list[str], str, Check]] = [
    (["ping"], "pong from muninmaild 0.1.0", lambda j: json.loads(j) == {"pong": True}),
    (["version"], "muninmaild 0.1.0 (control protocol 1)", lambda j: '"protocol": 1' in j),
    (["status"], "queue:      pending", lambda j: json.loads(j)["accounts"][0]["name"] == "demo"),
    (
        ["list"],
        "ID  STATUS     ATT  DATE",
        lambda j: len(lines_of_json(j)) == len(DEMO_MESSAGES),
    ),
    (
        ["list", "--details", "--limit", "20"],
        "  summary: ",
        lambda j: all("summary" in m and "todos" in m for m in lines_of_json(j)),
    ),
    (["list", "--status", "failed"], "no messages", lambda j: j == ""),
    (
        ["list", "--since", "1h", "--limit", "3"],
        "completed",
        lambda j: len(lines_of_json(j)) == 3,
    ),
    (["show", "2"], "  headers:", lambda j: json.loads(j)["id"] == 2),
    (
        ["todos", "--limit", "5"],
        "PRIORITY  MSG  TASK",
        lambda j: len(j.splitlines()) == 5,
    ),
    (["fetch-now"], "fetching: demo", lambda j: json.loads(j)["accounts"] == ["demo"]),
    (["fetch-now", "demo"], "fetching: demo", lambda j: "fetcher_paused" in json.loads(j)),
    (["wait-idle", "--timeout", "20"], "idle (waited", lambda j: json.loads(j)["idle"] is True),
    (["reload"], "reloaded", lambda j: json.loads(j)["restart_needed"] == []),
]


@pytest.mark.parametrize(
    ("args", "human", "check"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS]
)
def test_every_command_for_people_and_as_json(
    demo: Daemon, args: list[str], human: str, check: Check
) -> None:
    text = ok(demo.sock, *args)
    assert human in text and "\x1b[" not in text  # no colour into a pipe
    assert check(ok(demo.sock, *args, "--json"))


def test_json_before_the_command_and_the_socket_from_the_environment(demo: Daemon) -> None:
    env = clean_env(MUNINCTL_SOCKET=str(demo.sock))
    done = subprocess.run(
        [MUNINCTL, "--json", "status"], capture_output=True, text=True, env=env, timeout=30
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["queue"]["completed"] == len(DEMO_MESSAGES)
    assert status["paused"] == {"fetcher": False, "processor": False}
    assert status["model"]["backend"] == "rules"
    assert demo.proc is not None and status["pid"] == demo.proc.pid


def test_requeue_of_a_failed_message_gets_it_processed(demo: Daemon) -> None:
    with sqlite3.connect(demo.state / "muninmail.db") as db:
        db.execute(
            "UPDATE emails SET processing_status = 'failed', attempts = 5, "
            "last_error = 'the model refused' WHERE id = 4"
        )
    (held,) = lines_of_json(ok(demo.sock, "list", "--status", "failed", "--json"))
    assert held["id"] == 4 and held["last_error"] == "the model refused"
    assert "the model refused" in ok(demo.sock, "status")
    assert ctl_json(demo.sock, "requeue", "--failed") == {"requeued": 1}
    ok(demo.sock, "wait-idle", "--timeout", "20")
    shown = ctl_json(demo.sock, "show", "4")
    assert (shown["status"], shown["attempts"], shown["last_error"]) == ("completed", 1, None)


def test_requeue_reads_ids_from_stdin_and_from_list_json(demo: Daemon) -> None:
    listed = ok(demo.sock, "list", "--limit", "2", "--json")
    assert ok(demo.sock, "requeue", "-", stdin=listed) == "requeued 2 message(s)\n"
    assert ok(demo.sock, "requeue", "-", stdin="5\n6 7\n") == "requeued 3 message(s)\n"
    done = ctl(demo.sock, "requeue", "8", "999999")
    assert done.returncode == 0 and "1 id(s) not requeued" in done.stderr
    ok(demo.sock, "wait-idle", "--timeout", "20")
    assert ctl_json(demo.sock, "status")["queue"]["completed"] == len(DEMO_MESSAGES)


def test_shell_completion_script() -> None:
    env = clean_env(_MUNINCTL_COMPLETE="bash_source")
    done = subprocess.run([MUNINCTL], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0 and "_muninctl_completion" in done.stdout


# -- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "999999"], 1, "there is no message 999999 (not_found)"),
        (["fetch-now", "nope"], 1, "there is no account 'nope'"),
        (["requeue"], 2, "choose messages"),
        (["requeue", "--status", "processing"], 2, "'processing' is not one of"),
        (["requeue", "--since", "soon"], 2, "use an age such as"),
        (["requeue", "x1"], 2, "not a message id"),
        (["requeue", "-"], 2, "no message ids on standard input"),
        (["list", "--limit", "0"], 2, "--limit"),
        (["list", "--since", "last tuesday"], 2, "use an age such as 30m"),
        (["show", "abc"], 2, "ID"),
        (["pause", "everything"], 2, "is not one of"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_refusals_and_usage_errors(demo: Daemon, args: list[str], code: int, message: str) -> None:
    done = ctl(demo.sock, *args, stdin="")
    assert done.returncode == code, done.stderr
    assert message in done.stderr and done.stdout == ""


def test_exit_69_when_no_daemon_listens(own_state: Path) -> None:
    missing = ctl(own_state / "control.sock", "status")
    assert missing.returncode == 69
    assert str(own_state / "control.sock") in missing.stderr
    assert "systemctl status muninmaild" in missing.stderr
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(own_state / "stale.sock"))
    stale.close()
    refused = ctl(own_state / "stale.sock", "ping")
    assert refused.returncode == 69 and "nothing listens on" in refused.stderr


def test_exit_75_when_the_daemon_does_not_answer_and_76_when_it_speaks_nonsense(
    own_state: Path,
) -> None:
    with socket.socket(socket.AF_UNIX) as silent:
        silent.bind(str(own_state / "silent.sock"))
        silent.listen()  # connects complete in the backlog; nobody ever answers
        done = ctl(own_state / "silent.sock", "--timeout", "0.3", "status")
    assert done.returncode == 75 and "did not answer within 0.3 s" in done.stderr

    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(own_state / "other.sock"))
        other.listen()

        def greet_badly() -> None:
            conn, _ = other.accept()
            with conn:
                conn.sendall(b'{"server": "something-else"}\n')

        thread = threading.Thread(target=greet_badly)
        thread.start()
        done = ctl(own_state / "other.sock", "ping")
        thread.join(5)
    assert done.returncode == 76 and "not muninmaild" in done.stderr


def test_exit_77_for_a_user_outside_the_group(demo: Daemon) -> None:
    if (
        not shutil.which(AS_NOBODY[0])
        or subprocess.run([*AS_NOBODY, MUNINCTL, "--version"], capture_output=True).returncode
    ):
        pytest.skip("muninctl cannot be run as nobody here")
    denied = ctl(demo.sock, "status", user=AS_NOBODY)
    assert denied.returncode == 77
    assert "permission denied on the socket" in denied.stderr
    # With the file mode out of the way, the daemon's own SO_PEERCRED check refuses.
    demo.sock.chmod(0o666)
    try:
        refused = ctl(demo.sock, "status", user=AS_NOBODY)
    finally:
        demo.sock.chmod(0o660)
    assert refused.returncode == 77
    assert "uid 65534 may not steer muninmaild" in refused.stderr
    assert "(forbidden)" in refused.stderr


# -- abuse: the daemon keeps answering ----------------------------------------------------------


class Raw:
    """A bare protocol client for what muninctl would never send."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.buffer = b""
        self.greeting = self.read()

    def read(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, raw: bytes) -> dict[str, Any]:
        self.sock.sendall(raw)
        return self.read()

    def close(self) -> None:
        self.sock.close()


def connect_patiently(sock: socket.socket, path: Path) -> None:
    """Like muninctl: a full backlog makes a Unix socket connect fail with EAGAIN at once."""
    for _ in range(500):
        try:
            sock.connect(str(path))
            return
        except BlockingIOError:
            time.sleep(0.01)
    raise AssertionError("the daemon accepts no connections")


def ping(path: Path) -> None:
    """Connect, greeting, ping, answer, each within the client's 5 s: not refused, not stuck.
    (How fast: bench P7 has the round trip beside a busy client.)"""
    client = Raw(path)
    try:
        assert client.greeting["server"] == "muninmaild"
        assert client.send(b'{"id": 1, "cmd": "ping"}\n')["result"] == {"pong": True}
    finally:
        client.close()


def test_every_error_code_a_client_can_cause(demo: Daemon) -> None:
    client = Raw(demo.sock)
    try:
        assert client.greeting["server"] == "muninmaild"
        assert client.send(b"{nope\n")["error"]["code"] == "bad_request"
        assert client.send(b'{"id": 2, "cmd": "halt"}\n')["error"]["code"] == "unknown_command"
        wrong = client.send(b'{"id": 3, "cmd": "list", "args": {"limit": "all"}}\n')
        assert (wrong["id"], wrong["error"]["code"]) == (3, "bad_request")
        missing = client.send(b'{"id": 4, "cmd": "show", "args": {"id": 424242}}\n')
        assert missing["error"]["code"] == "not_found"
        assert client.send(b'{"id": 5, "cmd": "ping"}\n')["ok"] is True  # still usable
        idle = client.read()  # control_idle_timeout is 1.5 s in this module's daemon
        assert idle["error"]["code"] == "timeout"
    finally:
        client.close()
    big = Raw(demo.sock)
    try:
        answer = big.send(b'{"id": 6, "cmd": "ping", "pad": "' + b"x" * 70000 + b'"}\n')
        assert answer["error"]["code"] == "too_large"
    finally:
        big.close()


def test_garbage_a_huge_line_and_500_idle_connections_leave_ping_prompt(demo: Daemon) -> None:
    garbage = Raw(demo.sock)
    try:
        garbage.sock.sendall(random.Random(7).randbytes(100_000))
        garbage.sock.shutdown(socket.SHUT_WR)
        codes = set()
        while True:
            try:
                codes.add(garbage.read()["error"]["code"])
            except EOFError:
                break
        assert codes <= {"bad_request", "too_large"} and codes
    finally:
        garbage.close()
    ping(demo.sock)

    def flood() -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(demo.sock))
            with contextlib.suppress(OSError):  # the daemon hangs up on the endless line
                s.sendall(b"x" * 10_000_000)

    thread = threading.Thread(target=flood)
    thread.start()
    try:
        ping(demo.sock)
    finally:
        thread.join(10)
    assert not thread.is_alive()

    idle = []
    try:
        for _ in range(500):
            s = socket.socket(socket.AF_UNIX)
            idle.append(s)
            s.settimeout(5)
            connect_patiently(s, demo.sock)
        for _ in range(5):
            ping(demo.sock)
    finally:
        for s in idle:
            s.close()
    assert ok(demo.sock, "ping").startswith("pong")


# -- pause, restart, limits: a daemon of their own ----------------------------------------------


def add_mail(maildir: Path, count: int) -> None:
    for path in DEMO_MESSAGES[:count]:
        shutil.copy(path, maildir / "new" / path.name)


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_reload_answers_with_its_outcome_and_a_broken_file_changes_nothing(
    own_state: Path,
) -> None:
    maildir = own_state / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    config = write_config(own_state, maildir)
    daemon = Daemon(own_state, config).start()
    try:
        assert ok(daemon.sock, "reload") == "reloaded\n"
        good = config.read_text()
        config.write_text(good.replace('log_level = "info"', 'log_level = "loud"'))
        refused = ctl(daemon.sock, "reload")
        assert refused.returncode == 1, refused.stdout
        assert "reload refused, the running configuration stays" in refused.stderr
        assert "daemon.log_level" in refused.stderr and "(invalid_config)" in refused.stderr
        config.write_text(good.replace("[daemon]", '[ai]\nbackend = "noop"\n\n[daemon]'))
        assert ok(daemon.sock, "reload") == "reloaded; changes to ai take effect after a restart\n"
        assert ctl_json(daemon.sock, "status")["model"]["backend"] == "rules"  # until the restart
    finally:
        code, err = daemon.stop()
    assert code == 0, err
    assert err.count("reloaded") == 2 and "reload refused" in err


def test_pause_stops_fetching_and_claiming_and_survives_a_restart(own_state: Path) -> None:
    maildir = own_state / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    config = write_config(own_state, maildir, "control_max_connections = 2")
    daemon = Daemon(own_state, config).start()
    sock = daemon.sock
    try:
        assert ctl_json(sock, "pause", "--json") == {"paused": {"fetcher": True, "processor": True}}
        code, err = daemon.stop()
        assert code == 0, err
        add_mail(maildir, 2)  # there when the daemon first looks
        daemon.start()
        assert ctl_json(sock, "status")["paused"] == {"fetcher": True, "processor": True}
        assert "fetcher paused, processor paused" in ok(sock, "status")
        # The fetcher's first pass ("starting" until it ends) found the pause and synced nothing.
        wait_until(lambda: ctl_json(sock, "status")["accounts"][0]["state"] == "paused")
        assert ctl_json(sock, "status")["queue"]["pending"] == 0
        assert "the fetcher is paused" in ok(sock, "fetch-now")

        assert ok(sock, "resume", "fetcher") == "fetcher running, processor paused\n"
        wait_until(lambda: ctl_json(sock, "status")["queue"]["pending"] == 2)
        # The daemon's own status line says its processor holds the pause with the mail there.
        held = "STATUS=pending 2, processing 0, completed 0, failed 0 (processor paused)"
        wait_until(lambda: held in daemon.reports(), timeout=20)
        assert ctl_json(sock, "status")["queue"] == {
            "pending": 2,
            "processing": 0,
            "completed": 0,
            "failed": 0,
        }
        check_waits_time_out_and_busy_slots_refuse(sock)

        resumed = ctl_json(sock, "resume", "processor")
        assert resumed == {"paused": {"fetcher": False, "processor": False}}
        ok(sock, "wait-idle", "--timeout", "20")
        assert ctl_json(sock, "status")["queue"]["completed"] == 2
    finally:
        if daemon.proc is not None:
            code, err = daemon.stop()
            assert code == 0, err


def check_waits_time_out_and_busy_slots_refuse(sock: Path) -> None:
    """With work queued and the processor paused, wait-idle cannot finish: two of them fill
    both connection slots (control_max_connections = 2), and a third client is refused."""
    waiters = [Waiter(sock), Waiter(sock)]
    try:
        fill_with_busy_waiters(sock, waiters)
        refused = ctl(sock, "ping")
        assert refused.returncode == 1 and "(unavailable)" in refused.stderr
        answers = [w.client.read()["error"] for w in waiters]
    finally:
        for w in waiters:
            w.client.close()
    # The fetcher polls the Maildir meanwhile, so the answer may also name an account syncing.
    for answer in answers:
        assert answer["code"] == "timeout", answer
        assert "not idle after 5 s: " in answer["message"]
        assert "2 message(s) pending or processing" in answer["message"]
    done = ctl(sock, "wait-idle", "--timeout", "0.5")
    assert done.returncode == 75, done.stderr
    assert "not idle after 0.5 s: " in done.stderr
    assert "2 message(s) pending or processing" in done.stderr


class Waiter:
    """A connection sending `wait-idle` for 5 s: busy once the daemon has read the request."""

    def __init__(self, sock: Path) -> None:
        self.client = Raw(sock)
        self.client.sock.settimeout(30)
        self.client.sock.sendall(b'{"id": 1, "cmd": "wait-idle", "args": {"timeout": 5}}\n')

    def was_closed(self) -> bool:
        """Made room for a newcomer while still idle: the daemon said so and hung up."""
        readable, _, _ = select.select([self.client.sock], [], [], 0)
        return bool(readable)


def fill_with_busy_waiters(sock: Path, waiters: list[Waiter]) -> None:
    """Until a newcomer is refused: a waiter whose request the daemon had not read yet makes
    room for it instead, and is replaced by a new waiter."""
    deadline = time.monotonic() + 20
    while True:
        probe = Raw(sock)
        probe.close()
        if probe.greeting.get("error", {}).get("code") == "unavailable":
            return
        assert time.monotonic() < deadline, "the waiters never both became busy"
        for n, waiter in enumerate(waiters):
            if waiter.was_closed():
                waiter.client.close()
                waiters[n] = Waiter(sock)


def test_socket_activation_from_outside(own_state: Path) -> None:
    if not shutil.which(ACTIVATE[0]):
        peer_missing("systemd-socket-activate (the systemd package)")
    config = write_config(own_state, DEMO_MAILDIR)
    sock = own_state / "activated.sock"
    proc = subprocess.Popen(
        [
            *ACTIVATE,
            str(sock),
            "--fdname=control",
            str(BIN / "muninmaild"),
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        wait_until(sock.exists, timeout=10)
        assert ok(sock, "ping").startswith("pong")  # this connection starts the daemon
        ok(sock, "wait-idle", "--timeout", "30")
        assert ctl_json(sock, "status")["pid"] == proc.pid
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    assert "control socket from systemd" in err
    assert not (own_state / "control.sock").exists()


def test_a_socket_directory_writable_by_others_stops_the_start(own_state: Path) -> None:
    shared = own_state / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    config = write_config(own_state, DEMO_MAILDIR)
    config.write_text(
        config.read_text().replace(f"{own_state}/control.sock", f"{shared}/control.sock")
    )
    code, _, err = finish(start(config))
    assert code == 78
    assert "daemon.control_socket" in err and "writable by others" in err


def test_the_demo_script_runs_the_daemon_and_stops_it_cleanly(own_state: Path) -> None:
    demo_dir = Path(__file__).resolve().parent.parent / "muninmaild" / "demo"
    template = (demo_dir / "muninmaild.toml").read_text()
    config = template.replace("@STATE@", str(own_state)).replace("@MAILDIR@", str(DEMO_MAILDIR))
    (own_state / "muninmaild.toml").write_text(config)
    done = subprocess.run(
        ["sh", str(demo_dir / "demo.sh"), str(BIN), str(own_state)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for step in ("wait-idle --timeout 600", "status", "list", "list --details"):
        assert f"$ muninctl {step}\n" in done.stdout
    assert done.stdout.count("  summary: ") == len(DEMO_MESSAGES)
    assert "muninmaild exited with status 0" in done.stdout
    assert not (own_state / "control.sock").exists()
