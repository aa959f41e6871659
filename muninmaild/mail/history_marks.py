"""The lines that mark quoted history, as common mail clients write them.

Attribution lines, Outlook's header blocks, "Original Message" rules and forwarded-message
markers in English, German, French, Spanish, Italian, Dutch, Portuguese, Russian, Polish and
Swedish. The strings are the clients' own (Gmail, Outlook, Thunderbird, Apple Mail, Yahoo);
tests/data/html_replies/README.md lists the shapes.
"""

from __future__ import annotations

import re

# The verb of an attribution, anywhere in the line: "On <date>, <name> wrote:",
# "Am <date> schrieb <name>:" or "... hat <name> Folgendes geschrieben:",
# "Le <date>, <name> a écrit :", "El <date>, <name> escribió:",
# "Il <date> <name> ha scritto:", "Op <date> schreef <name>:" or "... het volgende geschreven:",
# "Em <date>, <name> escreveu:", "<date>, <name> пишет:" or "... написал(а):",
# "W dniu <date>, <name> pisze:" or "<name> napisał(a):" or "Wiadomość napisana przez <name>",
# "Den <date> skrev <name>:".
_VERB = (
    r"(?<!\w)(?:wrote|writes|schrieb|schreibt|geschrieben|écrit|escribió|escribio|scritto|"
    r"schreef|geschreven|escreveu|пишет|написал\w*|pisze|napisał\w*|napisana|skrev)(?!\w)"
)
_WROTE = re.compile(_VERB + r"[^\n]{0,200}:\s*$", re.IGNORECASE)
_VERB_ANYWHERE = re.compile(_VERB, re.IGNORECASE)
# A line holding the verb is an attribution only with a date, an address or the usual opening,
# so that "Here is what the customer wrote:" above a quote stays the sender's own text.
_ATTRIBUTION_HINT = re.compile(
    r"\d|@|^\s*(?:on|am|le|el|il|op|em|den|dnia|w dniu|in data)\s", re.IGNORECASE
)
# Attributions without a verb: Gmail in Russian ("ср, 30 апр. 2025 г. в 15:19, Ann
# <ann@example.org>:"), Yandex and Mail.ru: a time, then an address in brackets and a colon.
_ADDRESS_ATTRIBUTION = re.compile(
    r"\d:\d\d[^\n]{0,300}[<(\[][^\s<>()\[\]@]+@[^\s<>()\[\]]+[>)\]]\s*:\s*$"
)
# Longer lines are text, and the patterns above stay cheap.
_ATTRIBUTION_MAX = 400

ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d['’]origine|"
    r"mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|"
    r"исходное сообщение|wiadomość oryginalna|oryginalna wiadomość|ursprungligt meddelande)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)

# Outlook's header block above the quoted message: "From:" then "Sent:", "To:", "Subject:".
OUTLOOK_FROM = re.compile(r"^\s*\**(?:from|von|de|da|van|от|od|från|fra)\s*:\**\s", re.IGNORECASE)
OUTLOOK_FIELD = re.compile(
    r"^\s*\**(?:sent|date|to|cc|subject|"  # English
    r"gesendet|datum|an|betreff|"  # German
    r"envoyé|à|objet|"  # French
    r"enviado(?: el)?|fecha|para|asunto|"  # Spanish
    r"inviato|data|a|oggetto|"  # Italian
    r"verzonden|aan|onderwerp|"  # Dutch
    r"enviada em|assunto|"  # Portuguese
    r"отправлено|дата|кому|копия|тема|"  # Russian
    r"wysłano|wysłane|do|dw|temat|"  # Polish
    r"skickat|till|kopia|ämne)"  # Swedish
    r"\s*:",
    re.IGNORECASE,
)

_FORWARD_NAMES = (
    r"forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|"
    r"messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada|"
    r"пересылаемое сообщение|пересланное сообщение|przekazana wiadomość|"
    r"wiadomość przekazana dalej|vidarebefordrat meddelande"
)
# Apple Mail's line above a forwarded message.
_FORWARD_BEGINS = (
    r"begin forwarded message|anfang der weitergeleiteten nachricht|"
    r"début du message réexpédié|(?:inicio|comienzo) del mensaje reenviado|"
    r"inizio messaggio inoltrato|begin doorgestuurd bericht|"
    r"início da mensagem (?:reencaminhada|encaminhada)|начало переадресованного сообщения|"
    r"początek przekazywanej wiadomości|vidarebefordrat brev"
)
# A line that says a forwarded message follows: "---------- Forwarded message ---------".
_FORWARD_LINE = rf"^\s*(?:-{{2,}}\s*(?:{_FORWARD_NAMES})\s*-{{2,}}|(?:{_FORWARD_BEGINS})\s*:)\s*$"
FORWARD_INTRO = re.compile(_FORWARD_LINE, re.IGNORECASE)
# A forward line, or a forwarding subject ("Subject: FW: ..."), near an Outlook block. Whole
# lines only: "thanks for the forwarded message" above a reply's header block is no forward.
FORWARD_MARK = re.compile(
    rf"{_FORWARD_LINE}|"
    r"^\s*\**(?:subject|betreff|objet|asunto|oggetto|onderwerp|assunto|тема|temat|ämne)\s*:"
    r"\**\s*(?:fwd?|wg|tr|rv|i|enc|pd|vb|doorst|пересл\.?)\s*:",
    re.IGNORECASE,
)


def is_attribution(line: str) -> bool:
    """True for an unquoted "On <date>, <name> wrote:" line, in any of the ten languages."""
    if len(line) > _ATTRIBUTION_MAX or not line.rstrip().endswith(":"):
        return False
    if line.lstrip().startswith(">"):
        return False
    if _WROTE.search(line):
        return _ATTRIBUTION_HINT.search(line) is not None
    return _ADDRESS_ATTRIBUTION.search(line) is not None


def opens_attribution(line: str) -> bool:
    """True when a line may be the first half of a wrapped attribution: it holds a date, an
    address, the usual opening or the verb."""
    if len(line) > _ATTRIBUTION_MAX:
        return False
    return _ATTRIBUTION_HINT.search(line) is not None or _VERB_ANYWHERE.search(line) is not None
