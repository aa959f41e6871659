"""The offline `rules` backend: summaries, flags, to-dos and dates, without a network or a key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muninmaild.ai.base import Backend, ModelInput
from muninmaild.ai.rules import backend as rules
from muninmaild.ai.rules.backend import (
    RulesBackend,
    analyse_message,
    clean_task,
    reference_date,
    summarise,
)
from muninmaild.ai.rules.dates import find_dates, first_date
from muninmaild.ai.rules.text import MAX_TEXT_CHARS, sentences, split_sentences, truncate
from muninmaild.config.settings import DEFAULT_FLAGS, FlagSpec
from muninmaild.mail.headers import is_automated
from muninmaild.records import Analysis, Todo, TokenUsage

REF = date(2026, 12, 1)  # a Tuesday, so "by Tuesday" means a week later
REF_HEADER = "Tue, 01 Dec 2026 09:00:00 +0000"
BULK_HEADERS: tuple[dict[str, str], ...] = (
    {"List-Unsubscribe": "<mailto:leave@news.example.com>"},
    {"List-Id": "<news.example.com>"},
    {"Precedence": "bulk"},
    {"precedence": "List"},
    {"Precedence": "junk"},
    {"Auto-Submitted": "auto-generated"},
    {"Auto-Submitted": "auto-replied; owner-email=x@example.com"},
)


def message(
    body: str = "",
    subject: str = "Quarterly numbers",
    headers: Mapping[str, str] | None = None,
    sent: str = REF_HEADER,
    from_addr: str = '"Alex Doe" <alex@example.com>',
    has_calendar: bool = False,
) -> ModelInput:
    return ModelInput(
        email_id=7,
        subject=subject,
        from_addr=from_addr,
        to_addrs="robin@example.com",
        date=sent,
        body=body,
        headers=dict(headers or {}),
        has_calendar=has_calendar,
    )


def detect_flags(
    item: ModelInput, flags: Sequence[FlagSpec] = DEFAULT_FLAGS, reference: date = REF
) -> tuple[str, ...]:
    return analyse_message(item, flags, lambda: reference).flags


def extract_todos(item: ModelInput, reference: date = REF) -> tuple[Todo, ...]:
    return analyse_message(item, DEFAULT_FLAGS, lambda: reference).todos


def flags_of(
    body: str,
    subject: str = "Update",
    headers: Mapping[str, str] | None = None,
    has_calendar: bool = False,
) -> tuple[str, ...]:
    item = message(body, subject, headers=headers, has_calendar=has_calendar)
    return detect_flags(item, DEFAULT_FLAGS, REF)


def todos_of(
    body: str, subject: str = "Quarterly numbers", headers: Mapping[str, str] | None = None
) -> tuple[Todo, ...]:
    return extract_todos(message(body, subject, headers=headers), REF)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Hi Robin,\n\nThe deploy finished at 10:00 and all checks passed.\n\nBest,\nAlex",
            "The deploy finished at 10:00 and all checks passed.",
        ),
        (
            "Dear Mr. Smith,\n\nYour order 1234 has shipped today.\n\nKind regards,\nShop Team",
            "Your order 1234 has shipped today.",
        ),
        (
            "Hello\n\nThe contract was signed this morning.\nThanks,\nAlex\nHead of Legal",
            "The contract was signed this morning.",
        ),
        (
            "Hi Robin, the build is green again after the fix.\n\nCheers",
            "The build is green again after the fix.",
        ),
        (
            "Hallo Robin,\n\nDer Vertrag wurde heute unterschrieben.\n\nViele Grüße\nAlex",
            "Der Vertrag wurde heute unterschrieben.",
        ),
    ],
)
def test_summary_skips_greetings_and_signoffs(body: str, expected: str) -> None:
    assert summarise(message(body)) == expected


@pytest.mark.parametrize(
    "signature",
    [
        "Alex",
        "Alex Doe\nHead of Finance",
        "Dr. Jane Roe | Acme GmbH\n+49 30 1234567",
        "alex@example.com",
    ],
)
def test_signature_lines_under_a_signoff_are_skipped(signature: str) -> None:
    body = f"The numbers are final now.\n\nBest regards,\n{signature}"
    assert [s.text for s in sentences(body)] == ["The numbers are final now."]


def test_text_after_a_signoff_still_counts() -> None:
    todos = todos_of("Thanks!\nPlease call me about the contract.")
    assert [t.task for t in todos] == ["Call me about the contract"]


def test_summary_skips_filler_sentences() -> None:
    body = "I hope you are well. The supplier raised prices by 4 percent from January."
    assert summarise(message(body)) == "The supplier raised prices by 4 percent from January."


def test_summary_takes_two_sentences_when_the_first_is_short() -> None:
    body = "The server is back. We lost twenty minutes of logs. Nothing else changed."
    assert summarise(message(body)) == "The server is back. We lost twenty minutes of logs."


def test_summary_takes_one_sentence_when_it_is_long() -> None:
    first = "The migration of the billing database to the new cluster finished overnight, " * 2
    body = f"{first.strip()}. Nothing else changed today."
    assert summarise(message(body)) == first.strip() + "."


@pytest.mark.parametrize(
    "boilerplate",
    [
        "View this email in your browser",
        "Unsubscribe from this list",
        "You are receiving this because you signed up.",
        "© 2026 Example Ltd. All rights reserved.",
        "Sent from my iPhone",
    ],
)
def test_summary_skips_boilerplate_lines(boilerplate: str) -> None:
    body = f"{boilerplate}\n\nOur spring catalogue is out with 40 new titles.\n\n{boilerplate}"
    assert summarise(message(body)) == "Our spring catalogue is out with 40 new titles."


def test_summary_of_a_list_keeps_its_items() -> None:
    body = "Agenda for the offsite:\n- budget review\n- hiring plan\n- roadmap"
    assert (
        summarise(message(body)) == "Agenda for the offsite: budget review; hiring plan; roadmap."
    )


def test_summary_keeps_short_label_lines_apart() -> None:
    body = "Your workflow failed.\nRun: build 123\nBranch: main\nView the logs on the build page."
    assert summarise(message(body)) == "Your workflow failed. View the logs on the build page."


@pytest.mark.parametrize(
    "body",
    [
        "Quick question: are we still on for lunch tomorrow?",
        "FYI - are we still on for lunch tomorrow?",
        "Hey, quick question: are we still on for lunch tomorrow?",
    ],
)
def test_summary_drops_a_lead_in_label(body: str) -> None:
    assert summarise(message(body)) == "Are we still on for lunch tomorrow?"


def test_summary_is_capped_at_a_word_boundary() -> None:
    words = [f"word{i}" for i in range(120)]
    summary = summarise(message(" ".join(words) + "."))
    assert len(summary) <= 280
    assert summary.endswith("...")
    assert summary[:-3].split()[-1] in words


@pytest.mark.parametrize(
    "body",
    ["", "   \n\n  ", "Hi Robin,\n\nThanks!\n\nAlex", "----\n****", "See attached.", "\x00\x01"],
)
def test_summary_falls_back_to_the_subject_when_the_body_has_nothing(body: str) -> None:
    assert summarise(message(body)) == "Message from Alex Doe: Quarterly numbers"


@pytest.mark.parametrize(
    ("from_addr", "subject", "expected"),
    [
        ("alex@example.com", "Hello", "Message from alex@example.com: Hello"),
        ("", "", "Message from unknown sender: (no subject)"),
        ("Alex <alex@example.com>", "  Re:   lunch  ", "Message from Alex: Re: lunch"),
    ],
)
def test_subject_summary_names_the_sender(from_addr: str, subject: str, expected: str) -> None:
    assert summarise(message("", subject, from_addr=from_addr)) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Can you make the review on Thursday?", True),
        ("Would you prefer the blue or the green design?", True),
        ("Do you still need the old laptop?", True),
        ("Is your team joining us?", True),
        ("Let me know which option works.", True),
        ("Please confirm the delivery address.", True),
        ("Please reply before the weekend.", True),
        ("RSVP by Friday.", True),
        ("I'd love your thoughts on the draft.", True),
        ("Could you get back to me on the pricing.", True),
        ("Pourriez-vous confirmer la date ?", True),
        ("Könnten Sie mir kurz helfen?", True),
        ("The build passed and the release is out.", False),
        ("Why is the sky blue?", False),
        ("Let me know if you have any questions.", False),
        ("Please find attached the minutes.", False),
    ],
)
def test_requires_response_for_direct_questions_and_requests(body: str, expected: bool) -> None:
    assert ("requires_response" in flags_of(body)) is expected


@pytest.mark.parametrize("headers", BULK_HEADERS)
def test_newsletter_never_requires_response(headers: dict[str, str]) -> None:
    body = "Can you tell us what you think? Please reply to this survey by Friday."
    assert "requires_response" not in flags_of(body, headers=headers)
    assert todos_of(body, headers=headers) == ()


def test_keywords_cannot_make_a_newsletter_require_a_response() -> None:
    spec = FlagSpec("requires_response", "Needs an answer.", keywords=("survey",))
    item = message("Take our survey.", headers=BULK_HEADERS[0])
    assert detect_flags(item, (spec,), REF) == ()
    assert detect_flags(message("Take our survey."), (spec,), REF) == ("requires_response",)


def test_auto_submitted_no_is_not_bulk() -> None:
    assert not is_automated({"Auto-Submitted": "no"})
    assert "requires_response" in flags_of("Can you call me?", headers={"auto-submitted": "No"})


def test_requires_response_reads_the_subject_too() -> None:
    assert "requires_response" in flags_of("", subject="Can you review my PR?")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Importance": "High"}, True),
        ({"X-Priority": "1 (Highest)"}, True),
        ({"X-Priority": "2"}, True),
        ({"Priority": "urgent"}, True),
        ({"X-Priority": "3 (Normal)"}, False),
        ({"X-Priority": "12"}, False),
        ({"Importance": "low"}, False),
    ],
)
def test_urgent_from_priority_headers(headers: dict[str, str], expected: bool) -> None:
    assert ("urgent" in flags_of("The minutes are attached.", headers=headers)) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("The payment server needs a restart asap.", True),
        ("Please answer as soon as possible.", True),
        ("Stop the import immediately.", True),
        ("Invoice 4411 is overdue.", True),
        ("FINAL NOTICE before we suspend the account.", True),
        ("We have an outage in eu-west.", True),
        ("The VPN is down since 6am.", True),
        ("I need the numbers by end of day.", True),
        ("Send it by EOD.", True),
        ("Das ist dringend.", True),
        ("The report is due today.", True),
        ("I need it by 5pm today.", True),
        ("This is not urgent at all.", False),
        ("I walked to the office today.", False),
        ("Let's talk about the urgency index in the next newsletter issue.", False),
    ],
)
def test_urgent_from_words(body: str, expected: bool) -> None:
    assert ("urgent" in flags_of(body)) is expected


def test_urgent_reads_the_subject() -> None:
    assert "urgent" in flags_of("The minutes are attached.", subject="URGENT: sign today")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("The form is due on Thursday.", True),  # two days after the Tuesday it was sent
        ("Please send the slides by tomorrow.", True),
        ("The deadline is 2026-12-02.", True),
        ("Payment due: 30 November.", True),  # passed yesterday, so overdue
        ("The form is due on Friday.", False),  # three days away
        ("See you tomorrow.", False),  # a date, but no deadline
        ("The deadline is 2026-12-20.", False),
    ],
)
def test_urgent_when_a_deadline_is_within_two_days(body: str, expected: bool) -> None:
    assert ("urgent" in flags_of(body)) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Can we meet on Thursday at 3pm?", True),
        ("Let's schedule a call for next week.", True),
        ("I'd like to reschedule our sync to Monday.", True),
        ("Are you available on 3 December?", True),
        ("I sent a calendar invite for 10:30 tomorrow.", True),
        ("Réunion demain à 14h.", True),
        ("Können wir einen Termin am Freitag machen?", True),
        ("We should meet sometime.", False),
        ("The meeting notes from Tuesday are attached.", False),
        ("Friday is a public holiday.", False),
    ],
)
def test_meeting_request_needs_a_meeting_word_and_a_day_or_time(body: str, expected: bool) -> None:
    assert ("meeting_request" in flags_of(body)) is expected


def test_calendar_attachment_is_a_meeting_request() -> None:
    assert "meeting_request" in flags_of("", has_calendar=True)


INVOICE = FlagSpec("invoice", "Bills and payments.", keywords=("invoice", "payment due"))


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Your INVOICE #123", "", True),
        ("Hello", "The payment  due\ndate moved.", True),
        ("Hello", "You were invoiced twice.", False),  # whole words only
        ("Hello", "Nothing about money here.", False),
    ],
)
def test_custom_flag_matches_its_keywords(subject: str, body: str, expected: bool) -> None:
    found = detect_flags(message(body, subject), (INVOICE,), REF)
    assert found == (("invoice",) if expected else ())


def test_flags_follow_the_configured_order_without_duplicates() -> None:
    configured = (INVOICE, *DEFAULT_FLAGS, INVOICE)
    item = message("Can you pay invoice 7 asap?", "Invoice")
    assert detect_flags(item, configured, REF) == ("invoice", "requires_response", "urgent")
    assert detect_flags(item, tuple(reversed(DEFAULT_FLAGS)), REF) == (
        "urgent",
        "requires_response",
    )


def test_only_configured_flags_are_set() -> None:
    item = message("Can you pay invoice 7 asap?")
    assert detect_flags(item, (DEFAULT_FLAGS[1],), REF) == ("urgent",)
    assert detect_flags(item, (), REF) == ()
    assert detect_flags(item, (FlagSpec("vip", "From a VIP."),), REF) == ()


def test_keywords_extend_a_builtin_flag() -> None:
    spec = FlagSpec("urgent", "Urgent.", keywords=("p1",))
    assert detect_flags(message("Ticket raised as P1."), (spec,), REF) == ("urgent",)


@pytest.mark.parametrize("keyword", ["C++", "(", "a.b", "", "   ", "[x]", "\\d", "ö"])
def test_odd_keywords_are_matched_literally(keyword: str) -> None:
    spec = FlagSpec("odd", "Odd.", keywords=(keyword,))
    assert detect_flags(message("plain words only"), (spec,), REF) == ()


def test_keyword_with_regex_characters_matches_literally() -> None:
    spec = FlagSpec("cpp", "C++ work.", keywords=("C++",))
    assert detect_flags(message("We port it to C++ next."), (spec,), REF) == ("cpp",)


@pytest.mark.parametrize("longest", [150, 400])
def test_many_nested_keywords_compile(longest: int) -> None:
    spec = FlagSpec("deep", "Deep.", keywords=tuple("x" * n for n in range(1, longest)))
    assert detect_flags(message("x" * 100), (spec,), REF) == ("deep",)


@pytest.mark.parametrize(
    ("body", "task"),
    [
        ("Please send me the signed contract.", "Send me the signed contract"),
        ("Could you review the pull request?", "Review the pull request"),
        ("Can you please also book the room?", "Book the room"),
        ("Would you be able to share the slides?", "Share the slides"),
        ("I need you to sign the form.", "Sign the form"),
        ("Make sure the backups ran.", "Make sure the backups ran"),
        ("Don't forget to submit your timesheet.", "Submit your timesheet"),
        ("Remember to bring your badge.", "Bring your badge"),
        ("Action required: renew the certificate.", "Renew the certificate"),
        ("Robin, please call the bank.", "Call the bank"),
        ("Also, could you water the plants?", "Water the plants"),
        ("Send the invoice, please.", "Send the invoice"),
        ("Kindly update the wiki page.", "Update the wiki page"),
        ("Bitte schicken Sie mir den Bericht.", "Schicken Sie mir den Bericht"),
        ("Merci de confirmer votre présence.", "Confirmer votre présence"),
        ("Pourriez-vous envoyer le devis ?", "Envoyer le devis"),
    ],
)
def test_requests_become_cleaned_tasks(body: str, task: str) -> None:
    assert [t.task for t in todos_of(body)] == [task]


@pytest.mark.parametrize(
    "body",
    [
        "The deploy finished without errors.",
        "Please find attached the report.",
        "Please note the office is closed on Monday.",
        "Let me know if you have any questions.",
        "Please don't hesitate to reach out.",
        "",
    ],
)
def test_statements_and_polite_formulas_give_no_todos(body: str) -> None:
    assert todos_of(body) == ()


def test_a_request_wrapped_over_lines_stays_one_task() -> None:
    body = "Könnten Sie mir den\nBericht bis Freitag schicken?\n\nCould you also send\nThe Deck?"
    assert [(t.task, t.due) for t in todos_of(body)] == [
        ("Mir den Bericht bis Freitag schicken", date(2026, 12, 4)),
        ("Send The Deck", None),
    ]


def test_bullets_under_a_request_become_todos() -> None:
    body = (
        "Could you handle these before the launch:\n"
        "- update the changelog\n* tag the release\n1. announce it on the blog"
    )
    tasks = [t.task for t in todos_of(body)]
    assert tasks == ["Update the changelog", "Tag the release", "Announce it on the blog"]


def test_bullets_under_an_action_items_heading_become_todos() -> None:
    body = "Notes from today.\n\nAction items:\n- draft the memo\n- book the venue"
    assert [t.task for t in todos_of(body)] == ["Draft the memo", "Book the venue"]


def test_bullets_under_a_statement_are_not_todos() -> None:
    body = "Changes in this release:\n- faster sync\n- fewer crashes"
    assert todos_of(body) == ()


def test_bullets_take_the_due_date_of_their_request() -> None:
    body = "Please do the following by Friday:\n- book the venue\n- send the invitations"
    assert {t.due for t in todos_of(body)} == {date(2026, 12, 4)}


def test_at_most_ten_todos() -> None:
    body = " ".join(f"Please file report number {n}." for n in range(15))
    todos = todos_of(body)
    assert len(todos) == 10
    assert todos[0].task == "File report number 0"


def test_repeated_requests_give_one_todo() -> None:
    assert len(todos_of("Please call me. Please call me. PLEASE CALL ME.")) == 1


def test_task_text_is_capped() -> None:
    todo = todos_of("Please " + "review the very long document " * 20 + ".")[0]
    assert len(todo.task) <= 200
    assert todo.task.endswith("...")


@pytest.mark.parametrize(
    ("body", "priority"),
    [
        ("Please fix the login bug asap.", "high"),
        ("Please send the report by tomorrow.", "high"),
        ("Please renew the domain, it expires today.", "high"),
        ("Bitte schicken Sie den Bericht. Es ist dringend.", "high"),
        ("Please review the draft when you get a chance.", "low"),
        ("Could you look at the logs? No rush.", "low"),
        ("Please update the wiki whenever.", "low"),
        ("Please update the wiki.", "medium"),
        ("Please update the wiki by 2026-12-20.", "medium"),
    ],
)
def test_todo_priority(body: str, priority: str) -> None:
    assert [t.priority for t in todos_of(body)] == [priority]


def test_todo_priority_follows_an_urgent_message() -> None:
    assert todos_of("Please update the wiki.", headers={"Importance": "high"})[0].priority == "high"
    assert todos_of("Please update the wiki.", subject="URGENT")[0].priority == "high"


def test_a_low_remark_does_not_spill_onto_the_next_request() -> None:
    todos = todos_of("Please call the bank. Also please review the draft, no rush.")
    assert [t.priority for t in todos] == ["medium", "low"]


@pytest.mark.parametrize(
    ("phrase", "due"),
    [
        ("by 2026-12-09", date(2026, 12, 9)),
        ("by 3 December", date(2026, 12, 3)),
        ("by December 3", date(2026, 12, 3)),
        ("by Dec 3rd", date(2026, 12, 3)),
        ("by the 3rd of December", date(2026, 12, 3)),
        ("by December 3, 2027", date(2027, 12, 3)),
        ("by 15 January", date(2027, 1, 15)),  # the nearest 15 January is next year's
        ("by 20 November", date(2026, 11, 20)),  # the nearest one just passed
        ("by 12/03", None),  # day and month order unknown
        ("by 31 February", None),
        ("by 2026-13-40", None),
        ("by Friday", date(2026, 12, 4)),
        ("by next friday", date(2026, 12, 4)),
        ("by Tuesday", date(2026, 12, 8)),  # sent on a Tuesday: the next one
        ("by tomorrow", date(2026, 12, 2)),
        ("today", date(2026, 12, 1)),
        ("by end of day", date(2026, 12, 1)),
        ("by the end of the week", date(2026, 12, 4)),
        ("by end of month", date(2026, 12, 31)),
        ("bis Freitag", date(2026, 12, 4)),
        ("bis zum 3. Dezember", date(2026, 12, 3)),
        ("avant vendredi", date(2026, 12, 4)),
        ("d'ici demain", date(2026, 12, 2)),
    ],
)
def test_due_date_phrases(phrase: str, due: date | None) -> None:
    todos = todos_of(f"Please send the signed form {phrase}.")
    assert [t.due for t in todos] == [due]


@pytest.mark.parametrize("offset", range(7))
def test_weekday_deadline_resolves_to_next_such_day(offset: int) -> None:
    ref = REF + timedelta(days=offset)
    for weekday, name in enumerate(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")):
        due = first_date(f"by {name}", ref)
        assert due is not None
        assert due.weekday() == weekday
        assert 1 <= (due - ref).days <= 7


@pytest.mark.parametrize(
    ("sent", "end_of_week"),
    [
        (date(2026, 11, 30), date(2026, 12, 4)),  # Monday
        (date(2026, 12, 4), date(2026, 12, 4)),  # Friday itself
        (date(2026, 12, 5), date(2026, 12, 11)),  # Saturday: next week's Friday
    ],
)
def test_end_of_week_is_friday(sent: date, end_of_week: date) -> None:
    assert first_date("by the end of the week", sent) == end_of_week


def test_dates_are_read_relative_to_the_message_date() -> None:
    item = message("Please send it by tomorrow.", sent="Fri, 27 Feb 2026 17:00:00 +0100")
    assert extract_todos(item)[0].due == date(2026, 2, 28)


def test_find_dates_lists_every_date_in_order() -> None:
    found = find_dates("Meet Monday, then due 2026-12-09 or by tomorrow.", REF)
    assert [d for _, d in found] == [date(2026, 12, 7), date(2026, 12, 9), date(2026, 12, 2)]


def test_dates_near_the_end_of_the_calendar_do_not_overflow() -> None:
    assert first_date("tomorrow", date.max) is None
    assert first_date("by Friday or 31 December", date.max) == date.max


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("Tue, 01 Dec 2026 09:00:00 +0000", date(2026, 12, 1)),
        ("1 Dec 2026 23:30:00 -0800", date(2026, 12, 1)),
        ("2026-11-27T09:00:00+00:00", date(2026, 11, 27)),
        ("2026-11-27", date(2026, 11, 27)),
        ("", date(2020, 1, 2)),
        ("not a date", date(2020, 1, 2)),
        ("Mon, 99 Foo 99999 99:99:99", date(2020, 1, 2)),
    ],
)
def test_reference_date_is_the_message_date_or_today(sent: str, expected: date) -> None:
    assert reference_date(message(sent=sent), lambda: date(2020, 1, 2)) == expected


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("Ask Dr. Smith, e.g. tomorrow. Then go.", ["Ask Dr. Smith, e.g. tomorrow.", "Then go."]),
        ("Version 2.5 is out. J. Doe wrote it.", ["Version 2.5 is out.", "J. Doe wrote it."]),
        ("Bis zum 3. Dezember bitte.", ["Bis zum 3. Dezember bitte."]),
        ("We left at 3. Then it rained.", ["We left at 3.", "Then it rained."]),
    ],
)
def test_sentence_splitting(text: str, parts: list[str]) -> None:
    assert split_sentences(text) == parts


def test_wrapped_lines_join_into_sentences_and_bullets_stay_apart() -> None:
    found = sentences("The report is\nnearly done.\n- first item\n- second item\n")
    assert [(s.text, s.bullet) for s in found] == [
        ("The report is nearly done.", False),
        ("first item", True),
        ("second item", True),
    ]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("alpha beta gamma delta", 15, "alpha beta..."),
        ("x" * 50, 10, "xxxxxxx..."),
    ],
)
def test_truncate_cuts_at_a_word_boundary(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


@pytest.mark.parametrize(
    ("sentence", "task"),
    [
        ("could you please check the logs?", "Check the logs"),
        ("Please!", ""),
        ("  Can you?  ", ""),
        ("Would you mind sending it again?", "Sending it again"),
    ],
)
def test_clean_task(sentence: str, task: str) -> None:
    assert clean_task(sentence) == task


ODD_BODIES = [
    "",
    "\x00\x01\x02",
    "\ud800 lone surrogate \udfff",
    "🙂" * 5000,
    "a" * 300_000,
    ". " * 50_000,
    "Please " * 20_000,
    "- " * 10_000,
    "שלום, האם תוכל לשלוח את הדוח?",
    "e\u0301\u0301\u0301 " * 1000,
    "\r\n\r\n\u2028\u2029\ufeff",
    "by 9999-12-31 or 0000-01-01 or 31 December 9999",
]


@pytest.mark.parametrize("body", ODD_BODIES)
def test_odd_input_never_raises(body: str) -> None:
    item = message(body, subject=body[:500], sent=body[:50], from_addr=body[:80])
    analysis = analyse_message(item, DEFAULT_FLAGS, lambda: REF)
    assert_well_formed(analysis)


def test_a_huge_body_is_read_only_up_to_the_cap() -> None:
    """The work on a body is bounded: past MAX_TEXT_CHARS nothing is read (bench P7 has the
    time it takes)."""
    body = "Please send it by Friday. Can we meet at 3pm? " * 50_000
    huge = analyse_message(message(body), DEFAULT_FLAGS, lambda: REF)
    assert huge == analyse_message(message(body[:MAX_TEXT_CHARS]), DEFAULT_FLAGS, lambda: REF)
    assert_well_formed(huge)
    assert huge.todos  # the capped text was read, not skipped


TYPICAL = """Hi Robin,

I hope you're well. The Q3 report is nearly done but the EMEA numbers are missing.
Could you send me the EMEA figures by Friday? Also, please review the draft when you get a chance.

Action items:
- update the forecast
- check the travel costs

Can we meet on Thursday at 3pm to go through it?

Thanks,
Alex"""


def test_typical_message_end_to_end() -> None:
    analysis = analyse_message(message(TYPICAL), DEFAULT_FLAGS, lambda: REF)
    assert analysis.summary == (
        "The Q3 report is nearly done but the EMEA numbers are missing. "
        "Could you send me the EMEA figures by Friday?"
    )
    assert analysis.flags == ("requires_response", "meeting_request")
    assert analysis.todos == (
        Todo("Send me the EMEA figures by Friday", "medium", date(2026, 12, 4)),
        Todo("Review the draft when you get a chance", "low", None),
        Todo("Update the forecast", "medium", None),
        Todo("Check the travel costs", "medium", None),
    )


def test_same_input_gives_the_same_answer() -> None:
    item = message(TYPICAL, headers={"Importance": "high"}, sent="")
    first = analyse_message(item, DEFAULT_FLAGS, lambda: REF)
    assert all(analyse_message(item, DEFAULT_FLAGS, lambda: REF) == first for _ in range(5))


def test_unknown_message_date_uses_today() -> None:
    item = message("Please send it by tomorrow.", sent="")
    later = analyse_message(item, DEFAULT_FLAGS, lambda: date(2027, 3, 1))
    assert later.todos[0].due == date(2027, 3, 2)


def assert_well_formed(analysis: Analysis) -> None:
    assert analysis.summary.strip()
    assert len(analysis.summary) <= 280
    assert set(analysis.flags) <= {f.name for f in DEFAULT_FLAGS}
    assert len(analysis.todos) <= 10
    assert all(0 < len(t.task) <= 200 for t in analysis.todos)
    assert all(t.priority in ("low", "medium", "high") for t in analysis.todos)


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(max_size=2000),
    subject=st.text(max_size=200),
    sent=st.text(max_size=40),
    from_addr=st.text(max_size=80),
    headers=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
)
def test_any_text_gives_a_well_formed_answer(
    body: str, subject: str, sent: str, from_addr: str, headers: dict[str, str]
) -> None:
    item = message(body, subject, headers=headers, sent=sent, from_addr=from_addr)
    assert_well_formed(analyse_message(item, DEFAULT_FLAGS, lambda: REF))


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(
            [
                *("please", "could", "you", "by", "Friday", "3", "December", "asap", "meet"),
                *("at", "3pm", "?", ".", "\n", "- ", "Hi", "Thanks,", "2026-12-02", "no rush"),
                "bitte",
            ]
        ),
        max_size=60,
    )
)
def test_request_like_word_salad_gives_a_well_formed_answer(words: list[str]) -> None:
    item = message(" ".join(words))
    assert_well_formed(analyse_message(item, DEFAULT_FLAGS, lambda: REF))


async def test_backend_answers_through_the_async_api() -> None:
    backend: Backend = RulesBackend(today=lambda: REF)
    answer = await backend.analyse(message("Could you send the slides by tomorrow?", sent=""))
    await backend.aclose()
    assert backend.name == "rules"
    assert answer.model == "rules-v1"
    assert answer.usage == TokenUsage(0, 0)
    assert answer.analysis.flags == ("requires_response", "urgent")
    assert answer.analysis.todos == (
        Todo("Send the slides by tomorrow", "high", date(2026, 12, 2)),
    )


async def test_backend_uses_its_configured_flags() -> None:
    backend = RulesBackend(flags=(INVOICE,), today=lambda: REF)
    answer = await backend.analyse(message("Can you pay the invoice asap?"))
    assert answer.analysis.flags == ("invoice",)


async def test_two_backends_agree() -> None:
    item = message(TYPICAL)
    first = await RulesBackend(today=lambda: REF).analyse(item)
    second = await RulesBackend(today=lambda: REF).analyse(item)
    assert first == second


async def test_backend_answers_from_the_subject_if_the_rules_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> Analysis:
        raise RuntimeError("a rule broke")

    monkeypatch.setattr(rules, "analyse_message", broken)
    answer = await RulesBackend().analyse(message("Please call.", "Hello", from_addr="Alex"))
    assert answer.analysis == Analysis("Message from Alex: Hello", (), ())


def test_wrapped_bullet_item_is_one_task_and_its_explanation_is_not() -> None:
    body = (
        "Things to do:\n\n"
        "  * Could you please take over the weekly vendor call on\n"
        "    Tuesdays at 10:00? The main open point is their price.\n\n"
        "  * Remember to send the rota to the team by\n"
        "    1 December.\n"
    )
    found = sentences(body)
    bullets = [s.text for s in found if s.bullet]
    assert bullets == [
        "Could you please take over the weekly vendor call on Tuesdays at 10:00?",
        "Remember to send the rota to the team by 1 December.",
    ]
    assert "The main open point is their price." in [s.text for s in found if not s.bullet]


def test_weekday_followed_by_its_date_resolves_to_the_date() -> None:
    ref = date(2026, 11, 25)
    assert first_date("by Friday 4 December", ref) == date(2026, 12, 4)
    assert first_date("d'ici le vendredi 4 décembre", ref) == date(2026, 12, 4)
    assert first_date("by Friday", ref) == date(2026, 11, 27)
