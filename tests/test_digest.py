"""The digest: its period, its sections, its text and HTML, and the message that carries them.

The message must be one that any mail client reads: Python's `email` with `policy.default`
(the strict parser) finds no defect in it, whatever the mail it summarises holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from muninmaild.digest import build, message, render
from muninmaild.fetch.source import DIGEST_NOTE, digest_note
from muninmaild.mail.parse import parse_message

NOW = datetime(2026, 12, 3, 6, 0, 5, tzinfo=UTC)
WINDOW = build.period(86400, NOW)


def mail(n: int, *flags: str, sender: str = "Ann <ann@example.com>", **extra: Any) -> Any:
    values: dict[str, Any] = {
        "id": n,
        "account": "work",
        "mailbox": "INBOX",
        "status": "completed",
        "attempts": 1,
        "date": "2026-12-02T09:00:00Z",
        "from": sender,
        "subject": f"Message {n}",
        "flags": list(flags),
        "last_error": None,
        "summary": f"Summary of message {n}.\nSecond line, not shown.",
        "skip_reason": None,
        "headers": {},
    }
    return values | extra


def todo(todo_id: int, due: str | None, overdue: bool = False) -> dict[str, Any]:
    return {
        "id": 1,
        "todo_id": todo_id,
        "subject": "Message 1",
        "from": "Ann <ann@example.com>",
        "task": f"Task {todo_id}",
        "priority": "high",
        "due": due,
        "account": "work",
        "done": False,
        "done_at": None,
        "overdue": overdue,
    }


NEWS = {"list-id": "<news.example.org>"}
MESSAGES = [
    mail(1, "meeting_request"),
    mail(2),
    mail(3, "urgent"),
    mail(4, sender="News <news@example.org>", headers=NEWS),
    mail(5, "requires_response", "urgent", "invoice"),
    mail(6, sender="News <NEWS@example.org>", headers=NEWS, subject="Issue 49"),
    mail(7, "urgent", skip_reason="same Message-ID as message 3"),
    mail(8, headers={"x-muninmail-digest": "24h/2026-12-02"}, skip_reason=DIGEST_NOTE),
    mail(9, "invoice", status="pending", summary=None),
]
TODOS = [todo(11, "2026-11-20", overdue=True), todo(12, "2026-12-10"), todo(13, None)]


@pytest.fixture
def digest() -> dict[str, Any]:
    return build.digest(MESSAGES, TODOS, WINDOW, None, NOW)


def test_the_period_is_named_by_its_length_and_the_local_day_it_ends() -> None:
    local = NOW.astimezone()
    assert WINDOW.key == f"24h/{local:%Y-%m-%d}"
    assert WINDOW.until - WINDOW.since == timedelta(days=1)
    assert build.period(7200, NOW).key == f"2h/{local:%Y-%m-%dT%H}"
    assert build.period(1800, NOW, "work").key == f"30m/{local:%Y-%m-%dT%H:%M}/work"
    assert [build.age(s) for s in (86400, 7 * 86400, 5400, 61)] == ["24h", "7d", "90m", "61s"]


def test_what_asks_for_something_comes_first_urgent_first(digest: dict[str, Any]) -> None:
    assert [m["id"] for m in digest["attention"]] == [5, 3, 1]
    first = digest["attention"][0]
    assert first["labels"] == ["urgent", "reply", "invoice"]
    assert first["summary"] == "Summary of message 5."
    assert first["sender"] == "Ann"


def test_the_rest_with_bulk_mail_one_entry_per_sender(digest: dict[str, Any]) -> None:
    assert [m["id"] for m in digest["other"]] == [2, 9]
    assert digest["other"][1]["summary"] == "not analysed yet"
    (news,) = digest["bulk"]
    assert news["address"] == "news@example.org" and news["count"] == 2
    assert news["ids"] == [4, 6] and news["latest_subject"] == "Issue 49"


def test_digests_and_second_copies_are_not_the_periods_mail(digest: dict[str, Any]) -> None:
    shown = {m["id"] for m in digest["attention"] + digest["other"]}
    shown |= {i for g in digest["bulk"] for i in g["ids"]}
    assert shown == {1, 2, 3, 4, 5, 6, 9}
    assert digest["counts"] == {
        "messages": 7,
        "attention": 3,
        "other": 2,
        "bulk": 2,
        "bulk_senders": 1,
        "todos": 3,
        "overdue": 1,
    }


def test_the_text_has_the_three_sections_and_marks_overdue_todos(digest: dict[str, Any]) -> None:
    text = render.text(digest)
    lines = text.splitlines()
    assert lines[0].startswith("muninmail digest, all accounts: 7 message(s) from ")
    assert "Needs a reply, urgent, meeting requests: 3" in lines
    assert "  #5 [urgent, reply, invoice] Ann: Message 5" in lines
    assert "      Summary of message 5." in lines
    assert "  News: 2 bulk message(s) (#4, #6), latest: Issue 49" in lines
    assert "Open to-dos: 3 (1 overdue)" in lines
    overdue = next(line for line in lines if "Task 11" in line)
    assert overdue.startswith("  OVERDUE 2026-11-20  high")
    assert next(line for line in lines if "Task 13" in line).startswith("          no date")
    assert lines.index("Open to-dos: 3 (1 overdue)") > lines.index("  #2 Ann: Message 2")


def test_long_todo_lists_are_cut_with_a_pointer() -> None:
    many = [todo(i, None) for i in range(build.TODO_LIMIT + 5)]
    d = build.digest([], many, WINDOW, "work", NOW)
    assert len(d["todos"]) == build.TODO_LIMIT and d["more_todos"] == 5
    assert "  ... and 5 more: muninctl todos" in render.text(d)
    assert render.subject(d).startswith("muninmail digest (work): 0 to act on")


def test_one_line_summaries() -> None:
    assert build.one_line("\n\n  First   line \t here\nsecond") == "First line here"
    cut = build.one_line("word " * 100)
    assert len(cut) == build.SUMMARY_CHARS and cut.endswith("…")


# -- the message ----------------------------------------------------------------------------------

HOSTILE = [
    mail(
        1,
        "urgent",
        sender='"Zoë <Müller>" <zoe@example.org>',
        subject="<script>alert('x')</script> & größer — 😀 " + "long " * 60,
        summary='Bitte bis Freitag: 5 < 6 & "quoted" =?utf-8?q?not_encoded?=',
    ),
    mail(2, sender="=?iso-8859-1?q?Andr=E9?= <andre@example.com>", subject="Re: \tweird\x0b"),
]


def delivered(d: dict[str, Any], address: str = "robin@example.com") -> bytes:
    return message.build(
        d, render.text(d), address=address, message_id="<digest.1@muninmail.invalid>", now=NOW
    )


def all_defects(msg: EmailMessage) -> list[object]:
    found: list[object] = []
    for part in msg.walk():
        found += part.defects
        found += [d for value in part.values() for d in getattr(value, "defects", ())]
    return found


@pytest.mark.parametrize("messages", [MESSAGES, HOSTILE, []], ids=["plain", "hostile", "empty"])
def test_the_digest_message_parses_without_defects(messages: list[Any]) -> None:
    d = build.digest(messages, TODOS, WINDOW, None, NOW)
    raw = delivered(d)
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert all_defects(msg) == []
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    assert str(msg["Subject"]).startswith("muninmail digest: ")
    assert parsedate_to_datetime(str(msg["Date"])) == NOW
    assert msg["X-Muninmail-Digest"] == WINDOW.key
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"] == "<digest.1@muninmail.invalid>"
    assert msg["From"].addresses[0].addr_spec == "robin@example.com"
    assert b"\r\n" in raw and max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert all(byte < 128 for byte in raw)  # 7-bit on the wire
    plain = msg.get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == render.text(d)


def test_html_is_escaped_and_says_the_same() -> None:
    d = build.digest(HOSTILE, TODOS, WINDOW, None, NOW)
    html = render.html(d)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Zoë &lt;Müller&gt;" in html and "5 &lt; 6 &amp; &quot;quoted&quot;" in html
    assert "OVERDUE" in html and "Task 11" in html


def test_the_fetcher_recognises_a_digest_by_its_header() -> None:
    raw = delivered(build.digest(MESSAGES, TODOS, WINDOW, None, NOW))
    parsed = parse_message(raw)
    assert parsed.headers["x-muninmail-digest"] == WINDOW.key
    assert digest_note(parsed) == DIGEST_NOTE
    assert digest_note(parse_message(b"Subject: hi\r\n\r\nbody\r\n")) is None


def test_the_account_address_is_used_only_when_it_is_one() -> None:
    assert message.address_for("robin@example.com") == "robin@example.com"
    assert message.address_for("robin") == message.FALLBACK_ADDRESS
    assert message.address_for("a b@example.com") == message.FALLBACK_ADDRESS
    d = build.digest([], [], WINDOW, None, NOW)
    msg = message_from_bytes(delivered(d, message.FALLBACK_ADDRESS), policy=policy.default)
    assert isinstance(msg, EmailMessage) and all_defects(msg) == []
    assert message.new_message_id().endswith("@muninmail.invalid>")
