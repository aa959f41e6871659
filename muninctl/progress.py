"""`wait-idle`'s live progress line on a terminal: done of total, the pace, the time left.

The wait itself is one `wait-idle` request, as without a terminal, sent from a thread; beside it
`status` is asked twice a second on a connection of its own and the line is redrawn in place
(carriage return, erase to the end of the line), then erased before the answer is printed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import click

from muninctl import output
from muninctl.client import Connection
from muninctl.exits import Failure

REDRAW_S = 0.5
ERASE = "\r\x1b[K"
Json = dict[str, Any]


def finished(status: Json) -> int:
    q = status["queue"]
    return int(q["completed"]) + int(q["failed"])


def line(status: Json, done_before: int) -> str:
    """One progress line from a status answer; `done_before` is what was finished at the start."""
    backlog = status.get("backlog") or {}  # older daemons do not send it
    left = int(backlog.get("messages", status["queue"]["pending"]))
    done = max(finished(status) - done_before, 0)
    parts = [f"{done} of {done + left} done"]
    rate = backlog.get(
        "budget_per_min" if backlog.get("limited_by") == "budget" else "pace_per_min"
    )
    if backlog.get("limited_by") == "paused":
        parts.append("processor paused")
    elif rate is not None:
        parts.append(f"{rate:g}/min")
    if left and backlog.get("eta_s") is not None and backlog.get("limited_by") != "paused":
        parts.append(f"about {output.duration(backlog['eta_s'])} left")
    return ", ".join(parts)


def wait_with_progress(connect: Callable[[], Connection], wait: Callable[[], Json]) -> Json:
    """Run `wait` (the wait-idle request) while drawing the progress line; its answer, or the
    Failure it raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = wait()
        except Failure as exc:
            outcome["failure"] = exc

    thread = threading.Thread(target=run, name="wait-idle", daemon=True)
    thread.start()
    drawn = False
    try:
        with connect() as conn:
            done_before = finished(conn.call("status"))
            while thread.is_alive():
                click.echo(ERASE + line(conn.call("status"), done_before), nl=False)
                drawn = True
                thread.join(REDRAW_S)
    except Failure:
        pass  # the progress is a courtesy: the wait's own answer says what happened
    thread.join()
    if drawn:
        click.echo(ERASE, nl=False)
    if "failure" in outcome:
        raise outcome["failure"]
    result: Json = outcome["result"]
    return result
