"""Draining a prepared queue with one or more daemons, timed from `resume` to the last row.

The prepared queue has its processor paused (stored in the database), so the daemons start,
report READY=1 and wait; the clock starts as the first `resume processor` goes out over the
control socket and stops when the monitoring query counts every row completed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.procs import Daemon, wait_until
from bench.queue import UNFINISHED_SQL, Probe


def processor_config(concurrency: int, ai: str = 'backend = "noop"') -> str:
    return f"\n[processor]\nconcurrency = {concurrency}\n\n[ai]\n{ai}\n"


def drain(
    daemons: Sequence[Daemon],
    probe: Probe,
    count: int,
    *,
    timeout: float = 900.0,
) -> float:
    """Seconds from resume until `count` rows are completed."""
    for daemon in daemons:
        daemon.start()
    try:
        for daemon in daemons:
            daemon.wait_ready()
        start = time.monotonic()
        for daemon in daemons:
            daemon.call("resume", {"what": "processor"})

        def finished() -> bool:
            return probe.number(UNFINISHED_SQL) == 0

        took = wait_until(finished, timeout, 0.02, f"{count} messages completed") - start
        counts = probe.counts()
        if counts.get("completed", 0) != count:
            raise RuntimeError(f"the drain ended with {counts}, not {count} completed")
        return took
    finally:
        for daemon in daemons:
            daemon.stop()
