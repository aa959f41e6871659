"""Processes the benchmarks start and watch: the daemon, the model server, memory readings.

The daemon runs as the real binary (`python -m muninmaild`) with a generated configuration in a
folder of its own, `NOTIFY_SOCKET` pointing at a receiver of ours (for the moment of READY=1)
and its output going to files: a pipe nobody reads would block it once full.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from muninctl.client import Connection
from tests.daemon_proc import clean_env, write_config
from tests.fakes.notify import NotifyReceiver

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SLOW_STOP_S = 8.0  # the configured drain_timeout (5 s) and a margin
SLOW_STOPS: list[str] = []  # daemons that took longer than SLOW_STOP_S to stop on SIGTERM


def daemon_tree() -> Path:
    """The source tree whose daemon is measured: this one, or another checkout named by
    `MUNINMAIL_BENCH_TREE` (an older commit, for figures before and after a change)."""
    other = os.environ.get("MUNINMAIL_BENCH_TREE")
    return Path(other).resolve() if other else REPO


class Daemon:
    """One `muninmaild` with its own state folder, control socket and notify socket."""

    def __init__(self, state: Path, db_url: str | None, config: str) -> None:
        self.state = state
        self.state.mkdir(parents=True, exist_ok=True)
        self.socket = state / "control.sock"
        self.db_path = state / "queue.db"  # used when no `db_url` is given
        db_url = db_url or f"sqlite+aiosqlite:///{self.db_path}"
        self.config = write_config(state / "muninmaild.toml", state, maildir=None, db_url=db_url)
        with self.config.open("a") as out:
            out.write(config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify: NotifyReceiver | None = None
        self.env: dict[str, str] = {}  # added to the process's environment
        self.pings: list[float] = []  # when WATCHDOG=1 came, kept from the last run at its stop
        self.started_at = 0.0
        self.stop_seconds = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        notify_path = self.state / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self.notify = NotifyReceiver(notify_path)
        env = clean_env(NOTIFY_SOCKET=str(notify_path)) | self.env
        tree = daemon_tree()
        if tree != REPO:
            env["PYTHONPATH"] = str(tree)
        with (self.state / "daemon.log").open("ab") as log:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "muninmaild", "--config", str(self.config)],
                env=env,
                cwd=tree,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from the start of the process to READY=1."""
        assert self.notify is not None and self.proc is not None
        deadline = time.monotonic() + timeout
        while not (times := self.notify.times_of("READY=1")):
            if self.proc.poll() is not None:
                raise RuntimeError(f"muninmaild exited with {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"muninmaild sent no READY=1 within {timeout} s: {self.tail()}")
            time.sleep(0.005)
        return times[0] - self.started_at

    def call(self, cmd: str, args: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        with Connection(str(self.socket), timeout) as conn:
            return conn.call(cmd, args, timeout=timeout)

    def wait_idle(self, timeout: float = 120.0) -> None:
        self.call("wait-idle", {"timeout": timeout, "ignore_retries": False}, timeout + 5)

    def memory_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in KiB."""
        return memory_kb([self.pid])

    def tail(self, lines: int = 15) -> str:
        path = self.state / "daemon.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            start = time.monotonic()
            stop_process(proc, timeout)
            self.stop_seconds = time.monotonic() - start
            if self.stop_seconds > SLOW_STOP_S:
                SLOW_STOPS.append(f"{self.state.name}: {self.stop_seconds:.1f} s")
        if self.notify is not None:
            self.pings = self.notify.times_of("WATCHDOG=1")
            self.notify.close()
            self.notify = None


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def memory_kb(pids: Iterable[int]) -> tuple[int, int]:
    """Summed (VmRSS, VmHWM) in KiB of these processes; a gone process counts 0."""
    rss = hwm = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
    return rss, hwm


def descendants(pid: int) -> list[int]:
    """The process and all its children, grandchildren, ..."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


def wait_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.01, what: str = "condition"
) -> float:
    """Poll `check` until true; returns the monotonic time at which it was seen true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)
    return time.monotonic()


class ModelServer:
    """Our OpenAI-compatible model server in a process of its own (bench/model_proc.py)."""

    def __init__(self, workdir: Path, latency: float, *, bodies: bool = False) -> None:
        self.log = workdir / f"model-requests-{os.getpid()}-{time.monotonic_ns()}.json"
        # With `bodies`: every request's user message, read by `user_messages()` after stop().
        self.bodies = self.log.with_suffix(".bodies.json") if bodies else None
        more = ["--bodies", str(self.bodies)] if self.bodies else []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.model_proc",
                "--latency",
                str(latency),
                "--log",
                str(self.log),
                *more,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            stop_process(self.proc)
            raise RuntimeError(f"the model server did not start: {line!r}")
        self.base_url = line.split()[-1]

    def stop(self) -> list[tuple[float, int]]:
        """Stop it; the (wall time, requests so far) readings it took while running."""
        stop_process(self.proc)
        if not self.log.exists():
            return []
        readings = [(float(t), int(n)) for t, n in json.loads(self.log.read_text())]
        self.log.unlink()
        return readings

    def user_messages(self) -> list[str]:
        """After stop(): the user message of every request it answered, in order."""
        if self.bodies is None or not self.bodies.exists():
            return []
        found = [str(text) for text in json.loads(self.bodies.read_text())]
        self.bodies.unlink()
        return found
