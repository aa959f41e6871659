"""trim_for_model: what the sender wrote this time, within the budget, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muninmaild.mail.trim import ELLIPSIS, cap_text, trim_for_model

BIG = 100_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks!\n\nOn Tue, 3 Mar 2026, Ann wrote:\n> Can we meet?\n> Tuesday?\n", "Thanks!"),
        (
            "Sure.\n\nOn Tue, 3 Mar 2026 at 10:00, Ann Example <\n"
            "ann@example.org> wrote:\n\n> hi\n",
            "Sure.",
        ),
        ("Oui.\n\nLe mar. 3 mars 2026, Ann a écrit :\n> Salut\n", "Oui."),
        ("Ja.\n\nAm 03.03.2026 um 10:00 schrieb Ann:\n> Hallo\n", "Ja."),
        ("Yes.\n> quoted line\n>> older quote\n", "Yes."),
        ("Yes.\n   > indented quote\n", "Yes."),
    ],
)
def test_quoted_replies_are_removed(text: str, expected: str) -> None:
    assert trim_for_model(text, BIG) == expected


def test_answers_written_between_quotes_are_kept() -> None:
    text = "On Tue, 3 Mar 2026, Ann wrote:\n> Budget?\nApproved.\n> Date?\nFriday.\n"
    assert trim_for_model(text, BIG) == "Approved.\nFriday."


def test_attribution_followed_by_unquoted_text_is_not_treated_as_history() -> None:
    text = "Notes:\nOn Monday the board wrote:\nbudget approved\n"
    assert trim_for_model(text, BIG) == text.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See below.\n\n-----Original Message-----\nFrom: Ann\nSent: Mon\n\nold\n", "See below."),
        ("Siehe unten.\n\n-----Ursprüngliche Nachricht-----\nVon: Ann\n\nalt\n", "Siehe unten."),
        (
            "Fine.\n\n________________________________\nFrom: Ann <ann@example.org>\n"
            "Sent: Monday, 2 March 2026 09:00\nTo: Bob\nSubject: Plan\n\nold text\n",
            "Fine.",
        ),
        (
            "Agreed.\n\nFrom: Ann <ann@example.org>\nDate: Monday\nTo: Bob\nSubject: Plan\n\nold\n",
            "Agreed.",
        ),
    ],
)
def test_outlook_style_history_is_removed(text: str, expected: str) -> None:
    assert trim_for_model(text, BIG) == expected


@pytest.mark.parametrize(
    "text",
    [
        "FYI\n\n---------- Forwarded message ---------\nFrom: Ann <ann@example.org>\n"
        "Date: Mon, 2 Mar 2026\nSubject: Plan\nTo: Bob\n\nforwarded content",
        "FYI\n\nFrom: Ann <ann@example.org>\nSent: Monday\nTo: Bob\nSubject: FW: Plan\n\ncontent",
    ],
)
def test_forwarded_messages_are_kept(text: str) -> None:
    assert trim_for_model(text, BIG) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi Bob,\n\nagreed.\n\n-- \nBob\nHead of Sales\n", "Hi Bob,\n\nagreed."),
        ("Short.\n--\nAnn\n", "Short."),
        ("Dashes -- inside a line stay.\n", "Dashes -- inside a line stay."),
        ("Ok!\n\nSent from my iPhone\n", "Ok!"),
        ("Ok!\n\nSent from my phone.\n", "Ok!"),
        ("Ok!\n\nGet Outlook for Android\n", "Ok!"),
        ("Ok!\n\nSent from my iPhone\n\nOn Mon, Ann wrote:\n> hi\n", "Ok!"),
    ],
)
def test_signatures_and_mobile_footers_are_removed(text: str, expected: str) -> None:
    assert trim_for_model(text, BIG) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("\n\n\na  \r\n\r\n\r\nb\n\n", "a\n\nb"),
        ("one\rtwo", "one\ntwo"),
    ],
)
def test_runs_of_blank_lines_are_collapsed(text: str, expected: str) -> None:
    assert trim_for_model(text, BIG) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("> everything\n> is quoted\n", "> everything\n> is quoted"),
        ("On Tue, Ann wrote:\n> only history\n", "On Tue, Ann wrote:\n> only history"),
        ("-- \nonly a signature\n\n\n\nend", "--\nonly a signature\n\nend"),
    ],
)
def test_message_that_would_trim_to_nothing_is_kept_untrimmed(text: str, expected: str) -> None:
    assert trim_for_model(text, BIG) == expected


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        ("short", 100, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("one two three four five six", 20, "one two three" + ELLIPSIS),
        ("word " * 100, 40, "word word word word word word word" + ELLIPSIS),
        ("x" * 100, 20, "x" * 14 + ELLIPSIS),
        ("abcdef", 4, "abcd"),
        ("abcdef", 0, ""),
        ("abcdef", -3, ""),
    ],
)
def test_result_is_capped_at_a_word_boundary_with_a_marker(
    text: str, max_chars: int, expected: str
) -> None:
    assert trim_for_model(text, max_chars) == expected
    assert cap_text(text, max_chars) == expected


def test_cap_applies_to_the_untrimmed_fallback_too() -> None:
    text = "> " + "quoted words " * 100
    result = trim_for_model(text, 50)
    assert len(result) <= 50
    assert result.endswith(ELLIPSIS)


@pytest.mark.parametrize(
    "text",
    [
        "On a wrote:\n" * 50_000,
        ("On a wrote:\n" + "> q\n" * 3) * 20_000,
        "From: a\nSent: b\nTo: c\n" * 20_000,
        "x" * 1_000_000,
        ">" * 1_000_000,
        "On " + "x" * 500_000 + " wrote:",
    ],
    ids=["attributions", "blocks", "outlook", "long-line", "chevrons", "long-on"],
)
def test_pathological_bodies_are_trimmed_within_the_budget(text: str) -> None:
    # How long the slowest takes: bench P7.
    result = trim_for_model(text, 4_000)
    assert len(result) <= 4_000


def test_non_string_input_does_not_raise() -> None:
    assert trim_for_model(None, 10) == "None"  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    text=st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(["> q", "-- ", "--", "On x wrote:", "From: a", "Sent: b", "", "\r"]),
        ),
        max_size=20,
    ).map("\n".join),
    max_chars=st.integers(min_value=-5, max_value=300),
)
def test_random_text_never_raises_and_respects_the_budget(text: str, max_chars: int) -> None:
    result = trim_for_model(text, max_chars)
    assert isinstance(result, str)
    assert len(result) <= max(max_chars, 0)


# Words of the new text: ordinary ones, and pieces of history markers that are harmless inside
# a line. A line starts with a plain word and ends with a full stop, so that no line of the new
# text is itself a quote, an attribution, a header, a signature or a phone footer.
_FIRST_WORDS = ["Thanks", "Yes", "Budget", "Danke", "Merci", "Grazie", "Спасибо", "Tack"]
_TRICKY_WORDS = [
    "wrote:",
    "schrieb",
    "a écrit :",
    "пишет:",
    "On",
    "From:",
    "Sent:",
    "--",
    "-- ",
    ">",
    "> quoted",
    "<ann@example.org>:",
    "10:04",
    "---------- Forwarded message ---------",
    "Begin forwarded message:",
    "-----Original Message-----",
    "____________",
    "Sent from my",
]
_WORD = st.one_of(
    st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=10),
    st.sampled_from(_TRICKY_WORDS),
)
_NEW_LINE = st.builds(
    lambda first, rest: " ".join([first, *rest]) + ".",
    st.sampled_from(_FIRST_WORDS),
    st.lists(_WORD, max_size=8),
)
_HISTORIES = [
    ["On Tue, 3 Mar 2026, Ann Example <ann@example.org> wrote:", "> The old question?", "> Ann"],
    ["Am 03.03.26 um 10:04 schrieb Ann Example:", "", "> Die alte Frage?"],
    ["вт, 3 мар. 2026 г. в 10:04, Ann Example <ann@example.org>:", "", "> Старый вопрос?"],
    ["W dniu 3.03.2026 o 10:04, Ann Example pisze:", "> Stare pytanie?"],
    ["Den tis 3 mars 2026 kl 10:04 skrev Ann Example <ann@example.org>:", "> Gammal fråga?"],
    ["> A quote without attribution.", "> > And an older one."],
    ["-----Original Message-----", "From: Ann", "Sent: Monday", "", "The old message."],
    ["________________", "Von: Ann", "Gesendet: Montag", "An: Bob", "Betreff: Plan", "", "Alt."],
    ["De : Ann", "Envoyé : lundi", "À : Bob", "Objet : Plan", "", "Le vieux message."],
    ["-- ", "Bob Example", "Example Corp"],
]


@settings(max_examples=200, deadline=None)
@given(
    new=st.lists(_NEW_LINE, min_size=1, max_size=6),
    history=st.sampled_from(_HISTORIES),
    blank=st.booleans(),
)
def test_new_text_above_the_history_is_all_that_remains(
    new: list[str], history: list[str], blank: bool
) -> None:
    text = "\n".join([*new, *([""] if blank else []), *history])
    result = trim_for_model(text, BIG)
    assert [line for line in result.split("\n") if line.strip()] == [line.rstrip() for line in new]
