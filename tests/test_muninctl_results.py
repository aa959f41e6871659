"""How muninctl shows the results written back: keywords in `status` and `show`, to-dos, and the
digest's command line (no daemon needed)."""

from __future__ import annotations

from typing import Any

import click
import pytest

from muninctl.commands import digest, done, show, status, todos


def account(keywords: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": "work",
        "state": "idle",
        "caught_up": True,
        "last_fetch_at": None,
        "last_error": None,
        "queued": 3,
        "keywords": keywords,
    }


def test_status_shows_keyword_state_and_every_refusing_mailbox() -> None:
    keywords = {
        "state": "backoff",
        "written": 12,
        "last_written_at": None,
        "last_error": "127.0.0.1:143: the server closed the connection during UID STORE",
        "refused": [{"mailbox": "Shared", "reason": "the server allows no new keywords here"}],
    }
    lines = status.keyword_lines([account(keywords), account(None) | {"name": "home"}])
    assert lines == [
        "",
        "keywords work: backoff, 12 written; "
        "127.0.0.1:143: the server closed the connection during UID STORE",
        "  Shared: the server allows no new keywords here",
    ]
    assert status.keyword_lines([account(None)]) == []
    older = account(None)
    del older["keywords"]  # a daemon from before keywords
    assert status.keyword_lines([older]) == []


@pytest.mark.parametrize(
    ("record", "text"),
    [
        (
            {"state": "written", "keywords": ["munin_urgent", "$label1"], "note": None},
            "munin_urgent $label1 written ",
        ),
        (
            {"state": "written", "keywords": ["x"], "note": "already set on the server"},
            "(already set on the server)",
        ),
        ({"state": "pending", "keywords": [], "note": None}, "to be written"),
        ({"state": "pending", "keywords": [], "note": "refused"}, "to be written: refused"),
        ({"state": "skipped", "keywords": ["x"], "note": "gone"}, "not written: gone"),
    ],
)
def test_show_says_what_was_written_and_when_or_why_not(record: dict[str, Any], text: str) -> None:
    record = {"written_at": "2026-12-03T07:00:00Z", "attempts": 0} | record
    assert text in show.keywords(record)


def test_todo_tables_mark_overdue_and_state() -> None:
    line = {
        "id": 7,
        "todo_id": 31,
        "task": "Pay",
        "priority": "high",
        "due": "2026-11-20",
        "overdue": True,
        "done": False,
    }
    closed = line | {"todo_id": 32, "due": None, "overdue": False, "done": True}
    plain = todos.table([line])
    assert plain[0].split() == ["ID", "DUE", "PRIORITY", "MSG", "TASK"]
    assert plain[1].split() == ["31", "2026-11-20", "OVERDUE", "high", "7", "Pay"]
    full = todos.table([line, closed], with_state=True)
    assert [row.split()[:3] for row in full[1:]] == [
        ["31", "open", "2026-11-20"],
        ["32", "done", "-"],
    ]
    older = {k: v for k, v in line.items() if k not in ("todo_id", "overdue", "done")}
    assert todos.table([older])[1].split()[:2] == ["-", "2026-11-20"]  # an older daemon


def test_todo_ids_from_arguments_stdin_and_json_lines() -> None:
    lines = '{"id": 7, "todo_id": 31}\n{"id": 7, "todo_id": 32}\n'
    assert done.parse_ids(("5", "-", "5"), lambda: lines) == [5, 31, 32]
    with pytest.raises(click.BadParameter, match="no todo_id"):
        done.parse_ids(("-",), lambda: '{"id": 7}\n')
    with pytest.raises(click.BadParameter, match="positive"):
        done.parse_ids(("0",), lambda: "")


def test_digest_periods() -> None:
    assert [digest.seconds(t) for t in ("30m", "24h", "7d", "2w")] == [1800, 86400, 604800, 1209600]
    for bad in ("1s", "0m", "yesterday", "400d", "24"):
        with pytest.raises(click.BadParameter, match="use a period such as"):
            digest.seconds(bad)
    line = {"account": "work", "mailbox": "INBOX", "period": "24h/2026-12-03"}
    assert digest.delivered(line | {"appended": True, "delivered_at": None}) == (
        "digest 24h/2026-12-03 delivered to work/INBOX"
    )
    again = digest.delivered(line | {"appended": False, "delivered_at": "2026-12-03T07:00:00Z"})
    assert again.startswith("the digest 24h/2026-12-03 is already in work/INBOX (delivered ")
    assert again.endswith("nothing appended")
