"""Quoted history in ten languages: attribution lines, Outlook header blocks, forwards kept."""

from __future__ import annotations

import pytest

from muninmaild.mail.history_marks import is_attribution
from muninmaild.mail.trim import trim_for_model

BIG = 100_000

# The attribution lines the common clients write (Gmail, Thunderbird, Apple Mail, Yahoo,
# Outlook mobile, Mail.ru), by language.
ATTRIBUTIONS = {
    "en": [
        "On Tue, Mar 3, 2026 at 10:04 AM Ann Example <ann@example.org> wrote:",
        "On 3/3/26 10:04, Ann Example wrote:",
        "On 3 Mar 2026, at 10:04, Ann Example <ann@example.org> wrote:",
        "On Tuesday, March 3, 2026 at 10:04:41 AM GMT+1, Ann Example <ann@example.org> wrote:",
    ],
    "de": [
        "Am Di., 3. März 2026 um 10:04 Uhr schrieb Ann Example <ann@example.org>:",
        "Am 03.03.26 um 10:04 schrieb Ann Example:",
        "Ann Example <ann@example.org> schrieb am Di., 3. März 2026, 10:04:",
        "Am Dienstag, 3. März 2026, 10:04:41 MEZ hat Ann Example <ann@example.org> Folgendes "
        "geschrieben:",
    ],
    "fr": [
        "Le mar. 3 mars 2026 à 10:04, Ann Example <ann@example.org> a écrit :",
        "Le 03/03/2026 à 10:04, Ann Example a écrit :",
        "Le 3 mars 2026 à 10:04, Ann Example <ann@example.org> a écrit :",
    ],
    "es": [
        "El mar, 3 mar 2026 a las 10:04, Ann Example (<ann@example.org>) escribió:",
        "El 3/3/26 a las 10:04, Ann Example escribió:",
        "El martes, 3 de marzo de 2026, 10:04:41 CET, Ann Example <ann@example.org> escribió:",
    ],
    "it": [
        "Il giorno mar 3 mar 2026 alle ore 10:04 Ann Example <ann@example.org> ha scritto:",
        "Il 03/03/26 10:04, Ann Example ha scritto:",
        'In data 3 marzo 2026 10:04:31 "Ann Example" <ann@example.org> ha scritto:',
    ],
    "nl": [
        "Op di 3 mrt 2026 om 10:04 schreef Ann Example <ann@example.org>:",
        "Op 03-03-2026 om 10:04 schreef Ann Example:",
        "Op 3 mrt. 2026 om 10:04 heeft Ann Example <ann@example.org> het volgende geschreven:",
    ],
    "pt": [
        "Em ter., 3 de mar. de 2026 às 10:04, Ann Example <ann@example.org> escreveu:",
        "Em 03/03/2026 10:04, Ann Example escreveu:",
        "Ann Example <ann@example.org> escreveu no dia terça, 3/03/2026 à(s) 10:04:",
    ],
    "ru": [
        "вт, 3 мар. 2026 г. в 10:04, Ann Example <ann@example.org>:",
        "03.03.2026 10:04, Ann Example пишет:",
        "3 марта 2026 г., в 10:04, Ann Example <ann@example.org> написал(а):",
        "Вторник, 3 марта 2026, 10:04 +03:00 от Ann Example <ann@example.org>:",
    ],
    "pl": [
        "wt., 3 mar 2026 o 10:04 Ann Example <ann@example.org> napisał(a):",
        "W dniu 3.03.2026 o 10:04, Ann Example pisze:",
        "Wiadomość napisana przez Ann Example <ann@example.org> w dniu 3 mar 2026, o godz. 10:04:",
    ],
    "sv": [
        "Den tis 3 mars 2026 kl 10:04 skrev Ann Example <ann@example.org>:",
        "Den 2026-03-03 kl. 10:04, skrev Ann Example:",
        "3 mars 2026 kl. 10:04 skrev Ann Example <ann@example.org>:",
    ],
}
ALL_ATTRIBUTIONS = [
    pytest.param(line, id=f"{language}-{number}")
    for language, lines in ATTRIBUTIONS.items()
    for number, line in enumerate(lines)
]

# Outlook's header block above the quoted message: From, Sent (or Date), To, Subject.
OUTLOOK_LABELS = {
    "en": ("From:", "Sent:", "To:", "Subject:"),
    "de": ("Von:", "Gesendet:", "An:", "Betreff:"),
    "fr": ("De :", "Envoyé :", "À :", "Objet :"),
    "es": ("De:", "Enviado el:", "Para:", "Asunto:"),
    "it": ("Da:", "Inviato:", "A:", "Oggetto:"),
    "nl": ("Van:", "Verzonden:", "Aan:", "Onderwerp:"),
    "pt": ("De:", "Enviada em:", "Para:", "Assunto:"),
    "ru": ("От:", "Отправлено:", "Кому:", "Тема:"),
    "pl": ("Od:", "Wysłano:", "Do:", "Temat:"),
    "sv": ("Från:", "Skickat:", "Till:", "Ämne:"),
    "de-date": ("Von:", "Datum:", "An:", "Betreff:"),
}

ORIGINAL_MESSAGE_RULES = [
    "-----Original Message-----",
    "-----Ursprüngliche Nachricht-----",
    "-----Message d'origine-----",
    "-----Mensaje original-----",
    "-----Messaggio originale-----",
    "-----Oorspronkelijk bericht-----",
    "-----Mensagem original-----",
    "-----Исходное сообщение-----",
    "-----Wiadomość oryginalna-----",
    "-----Ursprungligt meddelande-----",
]


@pytest.mark.parametrize("attribution", ALL_ATTRIBUTIONS)
def test_attribution_and_the_quote_below_it_are_dropped(attribution: str) -> None:
    text = f"New text stays.\n\n{attribution}\n> the old question\n> and its second line\n"
    assert trim_for_model(text, BIG) == "New text stays."


@pytest.mark.parametrize("attribution", ALL_ATTRIBUTIONS)
def test_attribution_above_a_bottom_posted_answer_is_dropped(attribution: str) -> None:
    text = f"{attribution}\n> the old question\n\nThe answer below the quote.\n"
    assert trim_for_model(text, BIG) == "The answer below the quote."


@pytest.mark.parametrize("attribution", ALL_ATTRIBUTIONS)
def test_answers_between_quotes_are_kept_in_every_language(attribution: str) -> None:
    text = f"{attribution}\n> First question?\nFirst answer.\n> Second question?\nSecond answer.\n"
    assert trim_for_model(text, BIG) == "First answer.\nSecond answer."


@pytest.mark.parametrize("attribution", ALL_ATTRIBUTIONS)
def test_attribution_wrapped_onto_two_lines_is_dropped(attribution: str) -> None:
    # Plain-text parts wrap long lines; the cut falls somewhere in the name or the address.
    cut = attribution.index("Ann")
    text = f"Fine.\n\n{attribution[:cut]}\n{attribution[cut:]}\n\n> old\n"
    assert trim_for_model(text, BIG) == "Fine."


@pytest.mark.parametrize("attribution", ALL_ATTRIBUTIONS)
def test_each_attribution_is_recognised(attribution: str) -> None:
    assert is_attribution(attribution)
    assert not is_attribution(f"> {attribution}")


@pytest.mark.parametrize(
    "line",
    [
        "Here is what the customer wrote:",
        "Notes from the meeting:",
        "The board wrote a letter to us.",
        "Please see the figures below:",
        "Call me at 10:30 about this:",
        "On " + "x" * 500 + " wrote:",
    ],
)
def test_lines_that_only_resemble_an_attribution_are_not_one(line: str) -> None:
    assert not is_attribution(line)


def test_an_introduction_above_a_quote_is_kept() -> None:
    text = "Here is what the customer wrote:\n> the app crashes on start\nI will look into it.\n"
    assert trim_for_model(text, BIG) == ("Here is what the customer wrote:\nI will look into it.")


@pytest.mark.parametrize(("language", "labels"), OUTLOOK_LABELS.items())
def test_outlook_header_block_starts_the_history(language: str, labels: tuple[str, ...]) -> None:
    sender, sent, to, subject = labels
    text = (
        "Fine by me.\n\n"
        f"{sender} Ann Example <ann@example.org>\n{sent} 2.3.2026 09:00\n"
        f"{to} Bob Example\n{subject} Plan\n\nThe old message.\n"
    )
    assert trim_for_model(text, BIG) == "Fine by me."


def test_a_sentence_about_a_forward_does_not_make_a_reply_a_forward() -> None:
    text = (
        "Thanks for the forwarded message.\n\nFrom: Ann Example <ann@example.org>\n"
        "Sent: Monday\nTo: Bob\nSubject: Plan\n\nThe old message.\n"
    )
    assert trim_for_model(text, BIG) == "Thanks for the forwarded message."


@pytest.mark.parametrize("rule", ORIGINAL_MESSAGE_RULES)
def test_original_message_rule_starts_the_history(rule: str) -> None:
    text = f"See below.\n\n{rule}\nAnn Example\n\nThe old message.\n"
    assert trim_for_model(text, BIG) == "See below."


@pytest.mark.parametrize(
    ("marker", "labels"),
    [
        ("---------- Forwarded message ---------", OUTLOOK_LABELS["en"]),
        ("---------- Weitergeleitete Nachricht ---------", OUTLOOK_LABELS["de"]),
        ("---------- Message transféré ---------", OUTLOOK_LABELS["fr"]),
        ("---------- Mensaje reenviado ---------", OUTLOOK_LABELS["es"]),
        ("---------- Messaggio inoltrato ---------", OUTLOOK_LABELS["it"]),
        ("---------- Doorgestuurd bericht ---------", OUTLOOK_LABELS["nl"]),
        ("---------- Mensagem encaminhada ---------", OUTLOOK_LABELS["pt"]),
        ("---------- Пересылаемое сообщение ---------", OUTLOOK_LABELS["ru"]),
        ("---------- Wiadomość przekazana dalej ---------", OUTLOOK_LABELS["pl"]),
        ("---------- Vidarebefordrat meddelande ---------", OUTLOOK_LABELS["sv"]),
    ],
)
def test_forwarded_message_with_its_headers_is_kept(marker: str, labels: tuple[str, ...]) -> None:
    sender, sent, to, subject = labels
    text = (
        f"FYI\n\n{marker}\n{sender} Ann Example <ann@example.org>\n{sent} 2.3.2026 09:00\n"
        f"{subject} Plan\n{to} Bob Example\n\nThe forwarded content."
    )
    assert trim_for_model(text, BIG) == text


@pytest.mark.parametrize(
    "subject",
    ["FW: Plan", "Fwd: Plan", "WG: Plan", "TR : Plan", "RV: Plan", "I: Plan", "ENC: Plan"],
)
def test_outlook_forward_is_kept_by_its_subject(subject: str) -> None:
    text = (
        "For your records.\n\nFrom: Ann Example <ann@example.org>\nSent: Monday\n"
        f"To: Bob\nSubject: {subject}\n\nThe forwarded content."
    )
    assert trim_for_model(text, BIG) == text
