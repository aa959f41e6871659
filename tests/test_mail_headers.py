"""What headers tell on their own: lists, machines, importance."""

from __future__ import annotations

import pytest

from muninmaild.mail.headers import KEPT_HEADERS, TRIAGE_HEADERS, importance, is_automated, is_bulk


@pytest.mark.parametrize(
    "headers",
    [
        {"list-unsubscribe": "<mailto:leave@example.com>"},
        {"list-id": "<news.example.com>"},
        {"precedence": "bulk"},
        {"precedence": " List "},
        {"Precedence": "junk"},
    ],
)
def test_list_and_newsletter_headers_make_mail_bulk(headers: dict[str, str]) -> None:
    assert is_bulk(headers)


@pytest.mark.parametrize(
    "headers", [{}, {"precedence": "first-class"}, {"list-id": "  "}, {"auto-submitted": "yes"}]
)
def test_other_mail_is_not_bulk(headers: dict[str, str]) -> None:
    assert not is_bulk(headers)


@pytest.mark.parametrize(
    ("value", "automated"),
    [
        ("auto-generated", True),
        ("auto-replied; owner-email=ann@example.com", True),
        ("No", False),
        ("no ; reason=x", False),
        ("", False),
    ],
)
def test_auto_submitted_other_than_no_is_automated(value: str, automated: bool) -> None:
    assert is_automated({"auto-submitted": value}) is automated


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"importance": "High"}, "high"),
        ({"importance": "low"}, "low"),
        ({"x-priority": "1 (Highest)"}, "high"),
        ({"x-priority": "2"}, "high"),
        ({"x-priority": "5 (Lowest)"}, "low"),
        ({"x-priority": "3 (Normal)"}, ""),
        ({"x-priority": "12"}, ""),
        ({"x-msmail-priority": "High"}, "high"),
        ({"priority": "urgent"}, "high"),
        ({"priority": "non-urgent"}, "low"),
        ({"importance": "normal", "x-priority": "1"}, "high"),
        ({}, ""),
    ],
)
def test_importance_from_whichever_header_says(headers: dict[str, str], expected: str) -> None:
    assert importance(headers) == expected


def test_everything_triage_reads_is_kept_with_the_message() -> None:
    assert set(TRIAGE_HEADERS) <= set(KEPT_HEADERS)
    assert all(name == name.lower() for name in KEPT_HEADERS)
