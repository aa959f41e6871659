"""The backlog through the real binary: `status` shows what is left, the pace measured and the
model budget's pace, and `wait-idle` draws a progress line on a terminal (a pty) and nothing
extra when its output is a pipe."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.daemon_proc import clean_env
from tests.fakes.model_server import FakeModelServer
from tests.reliability.harness import (
    MUNINCTL,
    Daemon,
    fill_maildir,
    maildir_account,
    numbered_message,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
FIRST, LATER = 40, 20


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    state = tmp_path_factory.mktemp("backlog")
    fill_maildir(state / "mail", [numbered_message(n) for n in range(FIRST)])
    ai = {
        "backend": "cerebras",
        "requests_per_minute": 100_000,
        "requests_per_hour": 600,  # sustains ten requests a minute; holds 600 at once
        "requests_per_day": 0,
        "tokens_per_minute": 100_000_000,
        "tokens_per_hour": 0,
        "tokens_per_day": 0,
    }
    with FakeModelServer(latency=0.02, tokens_per_minute=10**9) as model:
        config = write_config(
            state,
            accounts=[maildir_account("mail", state / "mail")],
            ai=ai | {"base_url": model.base_url},
        )
        running = Daemon(state, config, {"CEREBRAS_API_KEY": "csk-test"}).start()
        running.wait_idle()
        yield running
        running.kill()


def status(daemon: Daemon) -> dict[str, Any]:
    done = daemon.ctl("--json", "status")
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def ctl(daemon: Daemon, *args: str) -> None:
    done = daemon.ctl(*args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_status_shows_the_pace_the_budget_and_when_it_is_done(daemon: Daemon) -> None:
    found = status(daemon)["backlog"]
    assert found["messages"] == 0 and found["eta_s"] == 0
    assert found["pace_per_min"] > 0  # 40 answers within the last minutes
    assert found["budget_per_min"] == 10.0
    ctl(daemon, "pause", "processor")
    later = [numbered_message(n) for n in range(100, 100 + LATER)]
    fill_maildir(daemon.state / "mail", later, first=100)
    ctl(daemon, "fetch-now")
    wait_until(lambda: status(daemon)["queue"]["pending"] == LATER, what="queued")
    found = status(daemon)["backlog"]
    assert (found["messages"], found["limited_by"], found["eta_s"]) == (LATER, "paused", None)
    text = daemon.ctl("status").stdout
    assert f"backlog:    {LATER} message(s) to process; the processor is paused" in text
    ctl(daemon, "resume", "processor")
    daemon.wait_idle()


def read_pty(fd: int, until: bytes, within_s: float = 30.0) -> bytes:
    """What the process on the pty wrote, up to `until` (or to its end, given b"")."""
    seen = b""
    deadline = time.monotonic() + within_s
    while until not in seen or not until:
        assert time.monotonic() < deadline, f"{until!r} not in {seen!r}"
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the process ended and closed its side
                chunk = b""
            if not chunk:
                break
            seen += chunk
    return seen


def test_wait_idle_on_a_terminal_shows_live_progress(daemon: Daemon) -> None:
    ctl(daemon, "pause", "processor")
    ctl(daemon, "requeue", "--status", "completed")
    total = status(daemon)["backlog"]["messages"]
    assert total > 0
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [MUNINCTL, "--socket", str(daemon.sock), "wait-idle", "--timeout", "60"],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=clean_env(),
    )
    os.close(slave)
    try:
        shown = read_pty(master, f"\r\x1b[K0 of {total} done, processor paused".encode())
        ctl(daemon, "resume", "processor")
        shown += read_pty(master, b"")
        assert proc.wait(30) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    # The line was erased before the answer, which stands alone on its line.
    assert b"\r\x1b[Kidle (waited " in shown and shown.count(b"\n") == 1


def test_wait_idle_to_a_pipe_prints_only_its_answer(daemon: Daemon) -> None:
    ctl(daemon, "pause", "processor")
    ctl(daemon, "requeue", "--status", "completed")
    proc = subprocess.Popen(
        [MUNINCTL, "--socket", str(daemon.sock), "wait-idle", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    ctl(daemon, "resume", "processor")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith("idle (waited ") and out.count("\n") == 1 and "\r" not in out
    assert err == ""
