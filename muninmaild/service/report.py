"""The short report `muninmaild --once` prints of what it did."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from muninmaild.processing.processor import ProcessorStats
from muninmaild.records import FetchStatus, QueueCounts

Json = dict[str, Any]

DETAIL_LIMIT = 20  # messages shown in detail; the rest are counted (processing/handler.py)


def render(
    rows: Sequence[Json],
    stats: ProcessorStats,
    counts: QueueCounts,
    fetches: Sequence[FetchStatus],
) -> str:
    lines: list[str] = []
    for status in fetches:
        lines.append(_fetch_line(status))
    for row in rows[:DETAIL_LIMIT]:
        lines += ["", *_message(row)]
    shown = min(len(rows), DETAIL_LIMIT)
    if stats.handled > shown:
        lines += ["", f"... and {stats.handled - shown} more (muninctl list shows them)"]
    lines += [
        "",
        f"processed {stats.handled}: {stats.completed} completed, {stats.retried} to retry, "
        f"{stats.failed} failed, {stats.snoozed} snoozed"
        + _without_request(stats.answers.cached, stats.answers.skipped_total),
        f"queue: {counts.status_line()}",
    ]
    return "\n".join(lines) + "\n"


def _without_request(cached: int, skipped: int) -> str:
    return f"; {cached} from the cache, {skipped} skipped" if cached or skipped else ""


def _fetch_line(status: FetchStatus) -> str:
    if status.last_error:
        return f"{status.account}: fetch failed: {status.last_error}"
    return f"{status.account}: {status.queued} new message(s) queued"


def _message(row: Json) -> list[str]:
    head = f"#{row['id']} {row['subject'] or '(no subject)'}"
    lines = [head, f"  from: {row['from']}"]
    if row["status"] != "completed":
        lines.append(f"  status: {row['status']} ({row['last_error'] or 'no reason given'})")
    if row["summary"]:
        lines.append(f"  summary: {row['summary']}")
    if row["skip_reason"]:
        lines.append(f"  note: {row['skip_reason']}")
    if row.get("origin") == "cache":
        lines.append("  answer: from the answer cache (no model request)")
    elif row.get("origin") == "skipped":
        lines.append(f"  answer: by the offline rules ({row['origin_note']}; no model request)")
    if row["flags"]:
        lines.append(f"  flags: {', '.join(row['flags'])}")
    for todo in row["todos"]:
        due = f" due {todo['due']}" if todo["due"] else ""
        lines.append(f"  todo [{todo['priority']}]{due}: {todo['task']}")
    return lines
