"""Forwards that the client quoted are content: trimming unquotes them instead of dropping them."""

from __future__ import annotations

import pytest

from muninmaild.mail.forwards import unwrap_forwards
from muninmaild.mail.trim import trim_for_model

BIG = 100_000

QUOTED_HEADERS = (
    "> From: Carl Customer <carl@example.net>\n> Subject: Quote request\n"
    "> Date: 2 March 2026 at 09:00:00 CET\n> To: Ann Example <ann@example.org>\n"
)
PLAIN_HEADERS = QUOTED_HEADERS.replace("> ", "")


@pytest.mark.parametrize(
    "intro",
    [
        "Begin forwarded message:",
        "Anfang der weitergeleiteten Nachricht:",
        "Début du message réexpédié :",
        "Inicio del mensaje reenviado:",
        "Inizio messaggio inoltrato:",
        "Begin doorgestuurd bericht:",
        "Início da mensagem reencaminhada:",
        "Начало переадресованного сообщения:",
        "Początek przekazywanej wiadomości:",
        "Vidarebefordrat brev:",
    ],
)
def test_quote_below_a_forward_line_is_kept_as_plain_text(intro: str) -> None:
    text = f"Can you take this one?\n\n{intro}\n\n{QUOTED_HEADERS}\n> Twelve chairs by April.\n"
    assert trim_for_model(text, BIG) == (
        f"Can you take this one?\n\n{intro}\n\n{PLAIN_HEADERS}\nTwelve chairs by April."
    )


@pytest.mark.parametrize(
    "marker",
    [
        "----- Forwarded Message -----",
        "---------- Forwarded message ---------",
        "-------- Weitergeleitete Nachricht --------",
        "----- Mensaje reenviado -----",
    ],
)
def test_quote_that_starts_with_a_forward_marker_is_kept_as_plain_text(marker: str) -> None:
    text = (
        f"See the note below.\n> {marker}\n{QUOTED_HEADERS}\n> The heating is serviced on Monday."
    )
    assert trim_for_model(text, BIG) == (
        f"See the note below.\n{marker}\n{PLAIN_HEADERS}\nThe heating is serviced on Monday."
    )


def test_forward_without_a_note_is_kept() -> None:
    text = f"Begin forwarded message:\n\n{QUOTED_HEADERS}\n> Twelve chairs by April.\n"
    assert trim_for_model(text, BIG) == (
        f"Begin forwarded message:\n\n{PLAIN_HEADERS}\nTwelve chairs by April."
    )


def test_the_forwarded_message_loses_its_own_quoted_history() -> None:
    text = (
        "FYI\n\nBegin forwarded message:\n\n> Twelve chairs by April.\n>\n"
        "> On Mon, 2 Mar 2026, Bob Example <bob@example.org> wrote:\n> > An older question.\n"
    )
    assert trim_for_model(text, BIG) == "FYI\n\nBegin forwarded message:\n\nTwelve chairs by April."


def test_forward_quoted_in_a_reply_is_history() -> None:
    text = (
        "Thanks, noted.\n\nOn Tue, 3 Mar 2026, Ann Example <ann@example.org> wrote:\n"
        f"> ---------- Forwarded message ---------\n{QUOTED_HEADERS}>\n> Twelve chairs.\n"
    )
    assert trim_for_model(text, BIG) == "Thanks, noted."


def test_forward_quoted_one_level_below_an_attribution_is_history() -> None:
    # Gmail quotes the attribution with the message: the forward is one level deeper.
    text = (
        "Thanks, noted.\n\n> On Tue, 3 Mar 2026, Ann Example <ann@example.org> wrote:\n\n"
        "> > ---------- Forwarded message ---------\n> > From: Carl\n\n> > Twelve chairs.\n"
    )
    assert trim_for_model(text, BIG) == "Thanks, noted."


def test_forward_inside_a_quoted_reply_without_attribution_is_history() -> None:
    text = (
        "Thanks, noted.\n\n> Can you handle this?\n>\n> > ---------- Forwarded message -------\n"
        "> > From: Carl Customer\n>\n> Twelve chairs.\n"
    )
    assert trim_for_model(text, BIG) == "Thanks, noted."


def test_a_forward_inside_a_forward_is_kept_too() -> None:
    text = (
        "FYI\n\nBegin forwarded message:\n\n> From: Bob Example\n>\n> See below.\n>\n"
        "> Begin forwarded message:\n>\n> > From: Carl Customer\n> >\n> > Twelve chairs.\n"
    )
    assert trim_for_model(text, BIG) == (
        "FYI\n\nBegin forwarded message:\n\nFrom: Bob Example\n\nSee below.\n\n"
        "Begin forwarded message:\n\nFrom: Carl Customer\n\nTwelve chairs."
    )


def test_text_after_the_forwarded_quote_is_kept() -> None:
    text = "Begin forwarded message:\n\n> Twelve chairs by April.\n\nShould we accept?\n"
    assert trim_for_model(text, BIG) == (
        "Begin forwarded message:\n\nTwelve chairs by April.\n\nShould we accept?"
    )


def test_lines_without_a_forward_are_returned_as_they_are() -> None:
    lines = ["Thanks!", "On Tue, Ann wrote:", "> hi", "> -- not a forward --"]
    assert unwrap_forwards(lines, [2, 3]) is lines
