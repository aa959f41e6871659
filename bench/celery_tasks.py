"""The Celery + Redis anchor: its tasks, its worker's stopwatch, and a command to queue work.

This module runs only under the anchors' own virtualenv (`bench/.venv-anchors`, made by
`make bench`), never in the project's: it imports Celery and nothing of muninmail.

    celery -A bench.celery_tasks worker --pool threads --concurrency 8 ...   (the worker)
    python -m bench.celery_tasks enqueue --task noop --count 10000           (the work)

The worker's stopwatch: with BENCH_CELERY_EXPECT=N and BENCH_CELERY_REPORT=FILE set, it writes
the wall times of its readiness, of the first task's start and of the N-th task's end to FILE,
and how many tasks failed.
Counting happens in the worker process, so it is meant for the threads pool.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import task_failure, task_postrun, task_prerun, worker_ready

from bench.model_request import HEADERS, MODEL_REQUEST

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/15")
QUEUE = "muninbench"

app = Celery("muninbench", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def noop() -> None:
    return None


def model_call(base_url: str) -> int:
    """One chat completion from the model server, as the daemon's backend would ask."""
    request = urllib.request.Request(
        f"{base_url}/v1/chat/completions",
        data=MODEL_REQUEST,
        headers=HEADERS,
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return len(answer.read())


noop_task = app.task(name="bench.noop")(noop)
model_task = app.task(name="bench.model_call")(model_call)


class _Stopwatch:
    def __init__(self) -> None:
        self.expect = int(os.environ.get("BENCH_CELERY_EXPECT", "0"))
        report = os.environ.get("BENCH_CELERY_REPORT")
        self.report = Path(report) if report else None
        self.lock = threading.Lock()
        self.times: dict[str, float] = {}
        self.done = 0

    def mark(self, name: str) -> None:
        with self.lock:
            self.times.setdefault(name, time.time())
            self._write()

    def failed(self) -> None:
        with self.lock:
            self.times["failed"] = self.times.get("failed", 0) + 1

    def finished(self) -> None:
        with self.lock:
            self.done += 1
            if self.done == self.expect:
                self.times["done"] = time.time()
                self._write()

    def _write(self) -> None:
        if self.report is not None:
            tmp = self.report.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.times))
            tmp.replace(self.report)


_watch = _Stopwatch()


def _on_ready(**kwargs: Any) -> None:
    _watch.mark("ready")


def _on_prerun(**kwargs: Any) -> None:
    if "first" not in _watch.times:
        _watch.mark("first")


def _on_postrun(**kwargs: Any) -> None:
    _watch.finished()


def _on_failure(**kwargs: Any) -> None:
    _watch.failed()


worker_ready.connect(_on_ready, weak=False)
task_failure.connect(_on_failure, weak=False)
task_prerun.connect(_on_prerun, weak=False)
task_postrun.connect(_on_postrun, weak=False)


def enqueue(task: str, count: int, url: str | None) -> float:
    """Empty the bench's Redis database, queue `count` tasks; seconds it took."""
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    start = time.monotonic()
    if task == "noop":
        for _ in range(count):
            noop_task.apply_async()
    else:
        for _ in range(count):
            model_task.apply_async((url,))
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="queue work for the Celery anchor")
    parser.add_argument("action", choices=["enqueue", "flush"])
    parser.add_argument("--task", choices=["noop", "model"], default="noop")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--url", help="the model server's base URL (task model)")
    args = parser.parse_args(argv)
    seconds = enqueue(args.task, args.count, args.url)
    print(json.dumps({"queued": args.count, "seconds": round(seconds, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
