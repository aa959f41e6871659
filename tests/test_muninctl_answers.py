"""What muninctl shows of answers that cost no request: status, show, list --details."""

from __future__ import annotations

from typing import Any

from muninctl.commands.listing import message_lines
from muninctl.commands.show import render as render_show
from muninctl.commands.status import render as render_status
from muninmaild.control import views
from muninmaild.processing.shortcuts import Shortcuts
from muninmaild.records import CachedAnswer
from tests.test_shortcuts import AI


def status(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0.1.0",
        "pid": 42,
        "uptime_s": 5.0,
        "paused": {"fetcher": False, "processor": False},
        "queue": {"pending": 0, "processing": 0, "completed": 25, "failed": 0},
        "accounts": [],
        "model": {"backend": "cerebras", "model": "gpt-oss-120b", "tokens_in": 10, "tokens_out": 3}
        | model,
        "last_error": None,
    }


TODAY = {
    "requests": 12,
    "tokens": 9000,
    "requests_limit": 14400,
    "tokens_limit": 1000000,
    "skipped": 9,
    "cached": 4,
}


def test_status_shows_today_s_requests_against_the_budget_and_those_saved() -> None:
    shown = {
        "today": TODAY,
        "skip": ["bulk", "automated"],
        "cache": {"entries": 310, "max_entries": 20000, "max_age_days": 7},
    }
    lines = render_status(status(shown))
    assert (
        "today:      12 of 14400 requests, 9000 of 1000000 tokens (since 00:00 UTC); "
        "without a request: 4 cached, 9 skipped"
    ) in lines
    assert "skip:       bulk, automated mail answered offline" in lines
    assert "cache:      310 answers kept (at most 20000, for 7 days)" in lines
    assert lines.index("cache:      310 answers kept (at most 20000, for 7 days)") < len(lines) - 1
    assert lines[-1].startswith("last error:")


def test_status_says_when_nothing_is_skipped_or_cached() -> None:
    lines = render_status(status({"today": TODAY, "skip": [], "cache": None}))
    assert "skip:       nothing (ai.skip)" in lines and "cache:      off" in lines


def test_status_of_an_older_daemon_has_no_such_lines() -> None:
    old_today = {k: v for k, v in TODAY.items() if k not in ("skipped", "cached")}
    text = "\n".join(render_status(status({"today": old_today})))
    assert "without a request" not in text and "cache:" not in text and "skip:" not in text


def message(origin: str | None, note: str | None = None, tokens: int = 0) -> dict[str, Any]:
    return {
        "id": 7,
        "subject": "Your build passed",
        "status": "completed",
        "attempts": 1,
        "next_attempt_at": None,
        "account": "work",
        "mailbox": "INBOX",
        "uid": 70,
        "to": "me@example.com",
        "from": "CI <noreply@ci.example.com>",
        "date": "2026-11-29T12:00:00Z",
        "summary": "The build passed.",
        "flags": [],
        "todos": [],
        "tokens": {"in": tokens, "out": tokens // 10},
        "sent": None if origin == "skipped" else "all",
        "queued_at": "2026-11-29T12:00:00Z",
        "updated_at": "2026-11-29T12:00:01Z",
        "origin": origin,
        "origin_note": note,
    }


def test_show_says_a_skipped_message_cost_no_request_and_why() -> None:
    text = "\n".join(render_show(message("skipped", "automated: a sender that takes no replies")))
    assert (
        "  answer:  by the offline rules, the model was not asked "
        "(ai.skip: automated: a sender that takes no replies)"
    ) in text
    assert "  tokens:  0 in, 0 out (skipped)" in text
    assert "sent:" not in text  # nothing was sent anywhere


def test_show_says_an_answer_came_from_the_cache() -> None:
    text = "\n".join(render_show(message("cache")))
    assert "  answer:  from the answer cache: the same request was answered before" in text
    assert "  tokens:  0 in, 0 out (answered from the cache)" in text


def test_a_model_s_answer_gets_no_extra_line() -> None:
    text = "\n".join(render_show(message("model", tokens=900)))
    assert "answer:" not in text and "  tokens:  900 in, 90 out\n" in text + "\n"
    assert all("answer:" not in line for line in message_lines(message(None)))


def test_list_details_say_where_the_answer_came_from() -> None:
    lines = message_lines(message("skipped", "bulk: List-Id"))
    assert any(line.endswith("(ai.skip: bulk: List-Id)") for line in lines)


def test_the_status_view_of_the_shortcuts() -> None:
    class NoStore:
        async def cached_answer(self, key: str, since: object) -> CachedAnswer | None:
            return None

        async def prune_answer_cache(self, before: object, keep: int | None = None) -> int:
            return 0

    running = Shortcuts(AI, NoStore(), retention_days=3)
    assert views.shortcuts(running, 12) == {
        "skip": ["bulk", "automated"],
        "cache": {"entries": 12, "max_entries": 20000, "max_age_days": 3},
    }
    assert views.shortcuts(None, None) == {"skip": [], "cache": None}
    assert views.answers_today({"model": 3, "cache": 2, "skipped": 5}) == {
        "skipped": 5,
        "cached": 2,
    }
    assert views.answers_today({}) == {"skipped": 0, "cached": 0}


def test_the_once_report_says_which_answers_cost_no_request() -> None:
    from muninmaild.processing.handler import ProcessorStats
    from muninmaild.records import QueueCounts
    from muninmaild.service import report

    stats = ProcessorStats(completed=3)
    stats.answers.cached, stats.answers.skipped["bulk"] = 1, 1
    rows = [
        message("cache") | {"skip_reason": None, "last_error": None},
        message("skipped", "bulk: List-Id") | {"skip_reason": None, "last_error": None},
        message("model") | {"skip_reason": None, "last_error": None},
    ]
    text = report.render(rows, stats, QueueCounts(completed=3), [])
    assert "  answer: from the answer cache (no model request)" in text
    assert "  answer: by the offline rules (bulk: List-Id; no model request)" in text
    assert text.count("  answer:") == 2
    assert "0 snoozed; 1 from the cache, 1 skipped" in text
