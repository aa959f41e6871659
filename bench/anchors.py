"""Driving the Celery + Redis anchor from the benchmark process.

Celery lives in its own virtualenv (`bench/.venv-anchors`, `make bench` creates it) so the
project's stays clean; the worker and the command that queues work run under that
interpreter (bench/celery_tasks.py). Redis is the machine's (127.0.0.1:6379), database 15,
emptied before each use.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from bench.procs import REPO, descendants, memory_kb, pids_named, stop_process, wait_until

ANCHOR_VENV = REPO / "bench" / ".venv-anchors"
CELERY = ANCHOR_VENV / "bin" / "celery"
ANCHOR_PYTHON = ANCHOR_VENV / "bin" / "python"
REDIS = ("127.0.0.1", 6379)


def redis_up() -> bool:
    try:
        socket.create_connection(REDIS, timeout=1).close()
        return True
    except OSError:
        return False


def celery_missing() -> str | None:
    """Why the Celery anchor cannot run here, or None when it can."""
    if not CELERY.exists():
        return f"Celery is not installed in {ANCHOR_VENV.relative_to(REPO)} (make bench does it)"
    if not redis_up():
        return "Redis is not running on 127.0.0.1:6379"
    return None


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    return env | {"PYTHONPATH": str(REPO)} | extra


def enqueue(task: str, count: int, url: str | None = None) -> float:
    """Empty the bench's Redis database and queue `count` tasks; seconds it took."""
    command = [str(ANCHOR_PYTHON), "-m", "bench.celery_tasks", "enqueue", "--task", task]
    command += ["--count", str(count)] + (["--url", url] if url else [])
    done = subprocess.run(
        command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"queueing Celery tasks failed: {done.stderr.strip()[-800:]}")
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


class CeleryWorker:
    """`celery worker` with the given pool; its stopwatch report lands in `report`."""

    def __init__(self, folder: Path, pool: str, concurrency: int, expect: int = 0) -> None:
        self.report = folder / f"celery-{pool}-{concurrency}-{time.monotonic_ns()}.json"
        self.report.unlink(missing_ok=True)
        env = _env(BENCH_CELERY_EXPECT=str(expect), BENCH_CELERY_REPORT=str(self.report))
        command = [str(CELERY), "-A", "bench.celery_tasks", "worker", "--pool", pool]
        command += ["--concurrency", str(concurrency), "--loglevel", "WARNING", "-Q", "muninbench"]
        command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        command += ["--hostname", f"bench-{time.monotonic_ns()}@%h"]
        self.log = folder / "celery-worker.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )

    def times(self) -> dict[str, float]:
        try:
            found: dict[str, float] = json.loads(self.report.read_text())
            return found
        except (OSError, ValueError):
            return {}

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited: {self._tail()}")
            return "ready" in self.times()

        wait_until(ready, timeout, 0.02, "Celery worker ready")

    def wait_done(self, timeout: float) -> float:
        """Seconds from the first task's start to the expected count's end."""

        def done() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited: {self._tail()}")
            return "done" in self.times()

        wait_until(done, timeout, 0.02, "every Celery task done")
        times = self.times()
        if times.get("failed"):
            raise RuntimeError(f"{times['failed']:.0f} Celery task(s) failed: {self._tail()}")
        return times["done"] - min(times["first"], times["ready"])

    def memory_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the worker and its pool processes, in KiB."""
        return memory_kb(descendants(self.proc.pid))

    def stop(self) -> None:
        stop_process(self.proc, 20)

    def _tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-10:])


def redis_memory_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of the machine's redis-server, in KiB."""
    return memory_kb(pids_named("redis-server"))


def drain(
    folder: Path,
    count: int,
    pool: str,
    concurrency: int,
    task: str = "noop",
    url: str | None = None,
) -> float:
    """Queue `count` tasks, then start a worker; seconds it needs for all of them."""
    enqueue(task, count, url)
    worker = CeleryWorker(folder, pool, concurrency, expect=count)
    try:
        return worker.wait_done(timeout=max(120.0, count / 20))
    finally:
        worker.stop()
