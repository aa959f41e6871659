"""Scenario 5, control socket abuse: all at once, while the daemon is busy with mail.

tests/test_muninctl.py already proves each abuse alone against an idle daemon: garbage, a 10 MB
line and 500 idle connections (`test_garbage_a_huge_line_and_500_idle_connections_leave_ping_
prompt`), every error code (`test_every_error_code_a_client_can_cause`), a user outside the group
(`test_exit_77_for_a_user_outside_the_group`). Here they run together and with what it lacks:
slow writers (more than the connection limit, each trickling an endless line), a slow reader
(pipelined requests whose answers it never reads), and a user who may not steer the daemon
connecting again and again. Meanwhile the daemon processes 1,000 messages, and `ping` must keep
being answered (how fast: bench P7).
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from muninmaild import protocol
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import (
    Daemon,
    fill_maildir,
    maildir_account,
    numbered_message,
    write_config,
)

AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
ABUSE_S = 8.0
IDLE_TIMEOUT_S = 2.0
SLOW_WRITERS = 100  # more than the daemon's 64 connections
IDLE_CONNECTIONS = 200
MESSAGES = 1000

# Run as nobody: connect again and again; count the refusals (a line with code "forbidden").
FORBIDDEN_CLIENT = """
import json, socket, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
refused = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        line = s.makefile("rb").readline()
        if json.loads(line)["error"]["code"] == "forbidden":
            refused += 1
    time.sleep(0.02)
print(refused)
"""


@pytest.fixture
def public_state() -> Iterator[Path]:
    """A folder nobody may traverse to reach the socket (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="munin-abuse-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    for _ in range(500):  # a full backlog refuses a Unix socket connect with EAGAIN at once
        try:
            sock.connect(str(path))
            return sock
        except BlockingIOError:
            time.sleep(0.01)
    sock.close()
    raise AssertionError("the daemon accepts no connections")


def ping(path: Path) -> None:
    """Connect, greeting, ping, answer, each within the client's 5 s: not refused, not stuck.
    (How fast: bench P7 has the round trip beside a busy client.)"""
    with connect(path) as sock:
        reader = sock.makefile("rb")
        assert json.loads(reader.readline())["server"] == "muninmaild"
        sock.sendall(protocol.request(1, "ping"))
        answer = json.loads(reader.readline())
        assert answer.get("result") == {"pong": True}, answer
        reader.close()


class Abuse:
    """Threads that abuse the socket until `stop`; what the daemon said to them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stop = threading.Event()
        self.codes: set[str] = set()
        self.errors: list[BaseException] = []
        self.dropped_writers = 0
        self._threads: list[threading.Thread] = []
        self._connected = threading.Semaphore(0)

    def connected(self) -> None:
        """Called by each abuser once its connections are made (and, for garbage, answered)."""
        self._connected.release()

    def wait_connected(self, count: int) -> None:
        for _ in range(count):
            assert self._connected.acquire(timeout=30), "an abuser never got connected"

    def run(self, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # reported by join(), in the test's thread
                self.errors.append(exc)

        thread = threading.Thread(target=guarded)
        self._threads.append(thread)
        thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self._threads)
        assert not self.errors, self.errors

    def note(self, data: bytes) -> bool:
        """Collect the error codes in what the daemon sent; True if there was one."""
        found = False
        for line in data.splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.codes.add(json.loads(line)["error"]["code"])
                found = True
        return found

    def slow_writers(self) -> None:
        """Each trickles one byte of an endless line every 0.1 s until the daemon drops it
        (evicted to make room for a newcomer, or timed out)."""
        socks = [connect(self.path) for _ in range(SLOW_WRITERS)]
        for sock in socks:
            sock.setblocking(False)
        self.connected()
        told: set[socket.socket] = set()
        try:
            while not self.stop.is_set():
                for sock in socks:
                    with contextlib.suppress(OSError):
                        if self.note(sock.recv(65536)):  # the greeting, then why it was dropped
                            told.add(sock)
                    with contextlib.suppress(OSError):
                        sock.send(b"x")
                time.sleep(0.1)
        finally:
            self.dropped_writers = len(told)
            for sock in socks:
                sock.close()

    def slow_reader(self) -> None:
        """Pipelines requests with large answers and never reads them."""
        with connect(self.path) as sock:
            sock.setblocking(False)
            request = protocol.request(1, "list", {"limit": 1000, "details": True})
            with contextlib.suppress(OSError):  # once its buffers are full, or it is dropped
                for _ in range(200):
                    sock.send(request)
            self.connected()
            self.stop.wait()

    def garbage(self) -> None:
        rng = random.Random(5)
        rounds = 0
        while not self.stop.is_set():
            with connect(self.path) as sock, contextlib.suppress(OSError):
                for _ in range(20):
                    sock.sendall(rng.randbytes(4096))
                sock.shutdown(socket.SHUT_WR)
                while data := sock.recv(65536):
                    self.note(data)
            rounds += 1
            if rounds == 1:
                self.connected()

    def idle(self) -> None:
        socks = [connect(self.path) for _ in range(IDLE_CONNECTIONS)]
        self.connected()
        try:
            self.stop.wait()
        finally:
            for sock in socks:
                sock.close()


def start_busy_daemon(state: Path, daemons: StartDaemon) -> Daemon:
    maildir = state / "Maildir"
    fill_maildir(maildir, (numbered_message(n) for n in range(1, MESSAGES + 1)))
    config = write_config(
        state,
        accounts=[maildir_account("busy", maildir)],
        daemon={"control_idle_timeout": IDLE_TIMEOUT_S},
        ai={"backend": "rules"},
    )
    return daemons(state, config).start()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ping_is_answered_through_every_abuse_at_once(
    public_state: Path, daemons: StartDaemon
) -> None:
    if not shutil.which(AS_NOBODY[0]):
        pytest.skip("setpriv is missing")
    daemon = start_busy_daemon(public_state, daemons)
    sock = daemon.sock
    sock.chmod(0o666)  # past the file mode: the daemon's own SO_PEERCRED check must refuse
    abuse = Abuse(sock)
    for target in (abuse.slow_writers, abuse.slow_reader, abuse.garbage, abuse.idle):
        abuse.run(target)
    forbidden = subprocess.Popen(
        [*AS_NOBODY, sys.executable, "-c", FORBIDDEN_CLIENT, str(sock), str(ABUSE_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    pings = 0
    try:
        abuse.wait_connected(4)
        end = time.monotonic() + ABUSE_S
        while time.monotonic() < end:  # a ping every 50 ms while the abuse goes on
            ping(sock)
            pings += 1
            time.sleep(0.05)
        refused = int(forbidden.communicate(timeout=30)[0])
    finally:
        forbidden.kill()
        forbidden.wait()
        abuse.join()

    assert pings > 0  # every one answered: none refused, dropped or stuck
    assert refused > 50
    # Every slow writer was dropped with a word (evicted to make room, or timed out), and
    # garbage got answers: nothing could hold on to the daemon.
    assert abuse.dropped_writers == SLOW_WRITERS
    assert {"unavailable", "bad_request"} <= abuse.codes, abuse.codes
    assert abuse.codes <= {"unavailable", "timeout", "bad_request", "too_large"}, abuse.codes
    status = daemon.call("status")
    assert status["queue"]["completed"] > 0  # the mail went on being processed meanwhile
    daemon.wait_idle(within_s=60)
    assert daemon.stop() == 0, daemon.log_tail()
    assert "Traceback" not in daemon.log_text()
