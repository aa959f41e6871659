"""Several daemons on one database: each message processed once, work and mailboxes taken over
from an instance killed mid-run, and a pause from any instance stopping them all.

Runs on the machine's PostgreSQL and on one SQLite file, with the `noop` backend.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.store.engine import create_engine
from tests.daemon_proc import clean_env, start, stop
from tests.fakes.notify import NotifyReceiver

MUNINCTL = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "muninctl")
DAEMONS = 4
FIRST = 5000
LATER = 200
PAUSED = 100
HELD = "(processor paused)"  # the end of a status line while the processor holds a pause
MESSAGE = (
    "From: a{n}@example.com\nSubject: Note {n}\nMessage-ID: <note-{n}@example.com>\n\nHi {n}.\n"
)


@dataclass
class Daemon:
    proc: subprocess.Popen[str]
    sock: Path
    notify: NotifyReceiver


def deliver(maildir: Path, first: int, count: int) -> None:
    new = maildir / "new"
    new.mkdir(parents=True, exist_ok=True)
    for n in range(first, first + count):
        (new / f"{1_000_000 + n}.m{n}.host").write_text(MESSAGE.format(n=n))


def config(state: Path, url: str, maildir: Path) -> Path:
    path = state / "muninmaild.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "{state}"
control_socket = "{state}/control.sock"
log_level = "warning"
drain_timeout = 2
fetch_lease_seconds = 3
heartbeat_seconds = 0.5

[database]
url = "{url}"

[[accounts]]
name = "shared"
source = "maildir"
path = "{maildir}"
poll_interval = 1

[processor]
concurrency = 8
lease_seconds = 3
poll_interval = 0.2

[ai]
backend = "noop"
timeout = 2
"""
    )
    return path


def sql(url: str, query: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(text(query))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def statuses(url: str) -> dict[str, int]:
    rows = sql(url, "SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status")
    return {str(s): int(str(n)) for s, n in rows}


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ctl(sock: Path, *args: str) -> str:
    done = subprocess.run(
        [MUNINCTL, "--socket", str(sock), *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def cluster(tmp_path: Path, db_url: str) -> Iterator[tuple[list[Daemon], Path]]:
    maildir = tmp_path / "mail"
    deliver(maildir, 1, FIRST)
    daemons: list[Daemon] = []
    try:
        for i in range(DAEMONS):
            state = tmp_path / f"d{i}"
            state.mkdir()
            notify = NotifyReceiver(state / "notify.sock")
            env = clean_env(NOTIFY_SOCKET=str(notify.path))
            daemons.append(
                Daemon(
                    start(config(state, db_url, maildir), env=env), state / "control.sock", notify
                )
            )
        for d in daemons:
            assert d.notify.wait_for("READY=1", 30), d.proc.stderr
        yield daemons, maildir
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                stop(d.proc)
            d.notify.close()


def status_lines(daemon: Daemon, since: int) -> list[str]:
    """The STATUS= lines it sent after its first `since` notifications."""
    return [line for line in daemon.notify.lines()[since:] if line.startswith("STATUS=")]


def holder_pid(url: str) -> int:
    [(holder,)] = sql(url, "SELECT holder FROM fetch_leases")
    return int(str(holder).split(":")[1])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_daemons_share_the_work_and_survive_one_killed(
    cluster: tuple[list[Daemon], Path], db_url: str
) -> None:
    daemons, maildir = cluster
    wait_until(lambda: statuses(db_url).get("completed", 0) >= FIRST // 5, 120, "progress")

    # Kill the instance that fetches the Maildir, mid-run, with claims in hand.
    victim = next(d for d in daemons if d.proc.pid == holder_pid(db_url))
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.communicate(timeout=10)
    alive = [d for d in daemons if d is not victim]

    deliver(maildir, FIRST + 1, LATER)  # only another instance can queue these
    total = FIRST + LATER
    wait_until(lambda: statuses(db_url) == {"completed": total}, 120, "every message completed")
    assert holder_pid(db_url) in {d.proc.pid for d in alive}

    [(results, distinct)] = sql(db_url, "SELECT COUNT(*), COUNT(DISTINCT email_id) FROM results")
    [(todos, with_todos)] = sql(db_url, "SELECT COUNT(*), COUNT(DISTINCT email_id) FROM todos")
    assert (results, distinct, todos, with_todos) == (total, total, total, total)
    [(idents,)] = sql(db_url, "SELECT COUNT(DISTINCT source_key) FROM emails")
    assert idents == total

    shown = json.loads(ctl(alive[0].sock, "status", "--json"))
    states = {i["pid"]: i["state"] for i in shown["cluster"]["instances"]}
    assert states[victim.proc.pid] == "gone"
    assert all(states[d.proc.pid] == "alive" for d in alive)

    # A pause from one instance stops claiming on all; a resume from another restarts them.
    # Each instance's status line (every 5 s) says whether its own processor holds the pause.
    ctl(alive[0].sock, "pause", "processor")
    marks = [len(d.notify.lines()) for d in alive]
    wait_until(
        lambda: all(
            any(line.endswith(HELD) for line in status_lines(d, m))
            for d, m in zip(alive, marks, strict=True)
        ),
        30,
        "every processor paused",
    )
    deliver(maildir, total + 1, PAUSED)
    wait_until(lambda: statuses(db_url).get("pending", 0) == PAUSED, 30, "paused mail queued")
    # Two more lines from every instance, each saying paused, with the mail there: meanwhile
    # the processors looked at the pause again and again (every second) and claimed nothing.
    marks = [len(d.notify.lines()) for d in alive]
    wait_until(
        lambda: all(len(status_lines(d, m)) >= 2 for d, m in zip(alive, marks, strict=True)),
        30,
        "two status lines from each",
    )
    for d, m in zip(alive, marks, strict=True):
        assert all(line.endswith(HELD) for line in status_lines(d, m)), status_lines(d, m)
    assert statuses(db_url) == {"completed": total, "pending": PAUSED}
    ctl(alive[1].sock, "resume", "processor")
    wait_until(lambda: statuses(db_url) == {"completed": total + PAUSED}, 60, "resumed processing")

    for d in alive:
        code, _, err = stop(d.proc)
        assert code == 0, err


@pytest.mark.slow
@pytest.mark.postgres
def test_notify_wakes_an_idle_instance_on_another_host(tmp_path: Path, pg_url: str) -> None:
    """A worker that polls only every 60 s still takes mail queued elsewhere at once."""
    from muninmaild.store.migrate import migrate
    from muninmaild.store.repository import Repository
    from tests.factories import new_message

    async def queue_elsewhere(first: int, count: int) -> None:
        engine = create_engine(pg_url)
        try:
            await migrate(engine)  # the schema is there before the worker starts
            await Repository(engine).add_messages(
                [new_message(i) for i in range(first, first + count)]
            )
        finally:
            await engine.dispose()

    asyncio.run(queue_elsewhere(1, 1))  # taken on its first look at the queue
    state = tmp_path / "worker"
    state.mkdir()
    path = config(state, pg_url, tmp_path / "unused")
    text_ = path.read_text().replace("poll_interval = 0.2", "poll_interval = 60")
    path.write_text(text_.split("[[accounts]]")[0] + text_.split("poll_interval = 1", 1)[1])
    notify = NotifyReceiver(state / "notify.sock")
    proc = start(path, env=clean_env(NOTIFY_SOCKET=str(notify.path)))
    try:
        assert notify.wait_for("READY=1", 30), proc.stderr
        # Its first look at the queue is over once that message is done: now it idles for 60 s.
        wait_until(lambda: statuses(pg_url) == {"completed": 1}, 30, "the first message")
        asyncio.run(queue_elsewhere(2, 20))
        # Well within the 60 s: only the notification can have woken it.
        wait_until(lambda: statuses(pg_url) == {"completed": 21}, 30, "the woken worker")
    finally:
        code, _, err = stop(proc)
        notify.close()
    assert code == 0, err


async def test_a_dead_local_instance_gives_up_its_mailboxes_at_start(
    sqlite_engine: AsyncEngine,
) -> None:
    """A daemon restarted after a crash fetches at once, not when the old lease runs out."""
    import socket as socket_

    from muninmaild.records import InstanceInfo
    from muninmaild.service.membership import Membership
    from muninmaild.store.repository import Repository

    repo = Repository(sqlite_engine)
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    await repo.register_instance(InstanceInfo("old", socket_.gethostname(), dead.pid, "0"))
    await repo.register_instance(InstanceInfo("elsewhere", "other-host", dead.pid, "0"))
    assert await repo.acquire_fetch_lease("a", "INBOX", "old", 120)
    member = Membership(repo, "new", heartbeat_s=1, on_event=lambda event: None)
    await member.register()
    assert await repo.acquire_fetch_lease("a", "INBOX", "new", 120)
    states = {i.id: i.stopped for i in (await repo.cluster(60)).instances}
    assert states == {"old": True, "elsewhere": False, "new": False}
