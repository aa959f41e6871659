"""muninctl's rendering and argument parsing, without a daemon."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime

import click
import pytest

from muninctl import output
from muninctl.commands.listing import since_value
from muninctl.commands.requeue import parse_ids
from muninctl.commands.show import SENT
from muninctl.commands.status import hold_line as render_hold
from muninctl.commands.status import render as render_status


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Called in the test itself: pytest puts its own capture back between set-up and call."""
    monkeypatch.setattr(sys, "stdout", FakeTerminal())
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "40")


def test_table_aligns_columns_and_leaves_no_trailing_space() -> None:
    lines = output.table(("ID", "STATUS", "SUBJECT"), [["7", "failed", "Hi"], ["12", "ok", ""]])
    assert lines == ["ID  STATUS  SUBJECT", "7   failed  Hi", "12  ok"]


def test_table_cells_cannot_break_the_columns() -> None:
    lines = output.table(("A", "B"), [["x\ty", "two\nlines"]])
    assert lines[1] == "x y  two lines"


def test_no_colour_into_a_pipe() -> None:
    assert not output.colour_on()  # pytest captures stdout: not a terminal
    assert output.paint("failed", "red") == "failed"


def test_colour_on_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal(monkeypatch)
    assert output.paint("failed", "red") == "\x1b[31mfailed\x1b[0m"
    lines = output.table(("S",), [[("failed", "red")]])
    assert lines[1] == "\x1b[31mfailed\x1b[0m"
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.paint("failed", "red") == "failed"


def test_on_a_terminal_the_last_column_is_cut_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal(monkeypatch)
    lines = output.table(("ID", "SUBJECT"), [["1", "x" * 100]])
    assert len(click.unstyle(lines[1])) == 40 and lines[1].endswith("…")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", "2026-11-29T11:30:00+00:00"),
        ("2h", "2026-11-29T10:00:00+00:00"),
        ("7d", "2026-11-22T12:00:00+00:00"),
        ("2026-11-01T08:00:00Z", "2026-11-01T08:00:00+00:00"),
    ],
)
def test_since_values(text: str, expected: str) -> None:
    assert since_value(text, now=datetime(2026, 11, 29, 12, tzinfo=UTC)) == expected


def test_a_since_date_without_a_zone_is_local_time() -> None:
    parsed = datetime.fromisoformat(since_value("2026-11-01"))
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize("text", ["yesterday", "5 days", "2h30m", ""])
def test_bad_since_values_are_usage_errors(text: str) -> None:
    with pytest.raises(click.BadParameter):
        since_value(text)


def test_ids_from_arguments_stdin_and_json_lines() -> None:
    stdin = '{"id": 4, "status": "failed"}\n5 6\n\n7\n'
    assert parse_ids(("3", "-", "4"), lambda: stdin) == [3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("args", "stdin"), [(("x",), ""), (("0",), ""), (("-",), '{"no": 1}\n'), (("-",), "1.5")]
)
def test_bad_ids_are_usage_errors(args: tuple[str, ...], stdin: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_ids(args, lambda: stdin)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (65, "1m 05s"), (3725, "1h 02m"), (90000, "1d 1h")]
)
def test_durations(seconds: float, text: str) -> None:
    assert output.duration(seconds) == text


def test_sender_prefers_the_display_name() -> None:
    assert output.sender('"Ann Example" <ann@example.com>') == "Ann Example"
    assert output.sender("bob@example.com") == "bob@example.com"
    assert output.sender("<x@example.com>") == "<x@example.com>"
    assert output.sender("A" * 40, width=10) == "AAAAAAAAA…"


def test_status_rendering() -> None:
    status = {
        "version": "0.1.0",
        "pid": 42,
        "uptime_s": 3725.0,
        "paused": {"fetcher": False, "processor": True},
        "queue": {"pending": 1, "processing": 0, "completed": 5, "failed": 2},
        "accounts": [
            {
                "name": "work",
                "state": "auth_failed",
                "caught_up": False,
                "last_fetch_at": None,
                "last_error": "login refused",
                "queued": 0,
            }
        ],
        "model": {"backend": "cerebras", "model": "m", "tokens_in": 10, "tokens_out": 3},
        "last_error": {"id": 9, "at": "2026-11-29T12:00:00Z", "message": "HTTP 400"},
    }
    text = "\n".join(render_status(status))
    assert "muninmaild 0.1.0, pid 42, up 1h 02m" in text
    assert "fetcher running, processor paused" in text
    assert "failed 2" in text and "tokens 10 in, 3 out" in text
    assert "message 9 at " in text and "HTTP 400" in text
    assert "work     auth_failed  no" in text and "login refused" in text


def test_status_shows_a_spent_quota_and_todays_figures() -> None:
    status = {
        "version": "0.1.0",
        "pid": 42,
        "uptime_s": 5.0,
        "paused": {"fetcher": False, "processor": False},
        "queue": {"pending": 7, "processing": 0, "completed": 5, "failed": 0},
        "accounts": [],
        "model": {
            "backend": "cerebras",
            "model": "gpt-oss-120b",
            "tokens_in": 10,
            "tokens_out": 3,
            "hold": {
                "reason": "quota",
                "message": "model quota spent until 14:05: tokens per day (Tokens per day ...)",
                "until": "2026-11-29T13:05:00Z",
            },
            "today": {"requests": 3, "tokens": 900, "requests_limit": 14400, "tokens_limit": None},
        },
        "last_error": None,
    }
    text = "\n".join(render_status(status))
    until = output.when("2026-11-29T13:05:00Z")[-5:]
    assert f"model hold: model quota spent until {until} (tokens per day)" in text
    assert "today:      3 of 14400 requests, 900 tokens (since 00:00 UTC)" in text


def test_status_shows_an_account_hold_with_what_to_do() -> None:
    hold = {
        "reason": "account",
        "message": "HTTP 404: no such model",
        "until": "2026-11-29T13:05:00Z",
    }
    line = render_hold(hold)
    assert "model held until" in line and "muninctl resume" in line and "HTTP 404" in line


def test_show_says_what_was_sent() -> None:
    assert SENT["headers"].startswith("headers, subject and attachment names only")
