"""A message body cut down to what the sender wrote this time, within a size budget."""

from __future__ import annotations

import re

ELLIPSIS = " [...]"

# "On Tue, 3 Mar 2026, Ann <ann@example.org> wrote:" and its common translations.
_ATTRIBUTION = re.compile(
    r"^\s*(on|am|le|el|il|op|em)\s.{0,300}"
    r"(wrote|schrieb|a écrit|escribió|ha scritto|schreef|escreveu)[^:]{0,80}:\s*$",
    re.IGNORECASE,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\**(from|von|de)\s*:\**\s", re.IGNORECASE)
_OUTLOOK_FIELD = re.compile(
    r"^\s*\**(sent|date|to|subject|gesendet|an|betreff|envoyé|objet)\s*:", re.IGNORECASE
)
_RULE = re.compile(r"^\s*_{8,}\s*$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(sent from my \w[\w ]{0,40}|sent from (outlook|mail) for \w+|"
    r"get outlook for \w+|sent from yahoo mail.{0,40}|von meinem \w+ gesendet)\.?\s*$",
    re.IGNORECASE,
)
# The same footers found in a whole text at once: one search instead of one per line. The
# edges match no newline, so a match starts and ends on the footer's own line.
_MOBILE_FOOTER_LINES = re.compile(
    r"^[^\S\n]*(sent from my \w[\w ]{0,40}|sent from (outlook|mail) for \w+|"
    r"get outlook for \w+|sent from yahoo mail.{0,40}|von meinem \w+ gesendet)\.?[^\S\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_FOOTER_HINTS = ("sent from", "get outlook", "gesendet")
_FORWARD_MARK = re.compile(
    r"forwarded message|weitergeleitete nachricht|message transféré|"
    r"^\s*\**(subject|betreff|objet)\s*:\**\s*(fwd?|wg|tr)\s*:",
    re.IGNORECASE,
)
_SIGNATURE_MARKS = ("-- ", "--")
_OUTLOOK_LOOKAHEAD = 6


def trim_for_model(text: str, max_chars: int) -> str:
    """Drops quoted history and signatures, then caps the length; never raises."""
    try:
        trimmed = _collapse_blank_lines(_trim_lines(_lines(text)))
        if not trimmed:
            # Everything looked quoted; the original is better than nothing.
            trimmed = _collapse_blank_lines(_lines(text))
        return cap_text(trimmed, max_chars)
    except Exception:
        return _safe_cap(text, max_chars)


def cap_text(text: str, max_chars: int) -> str:
    """At most max_chars characters, cut at a word boundary and marked with ELLIPSIS."""
    if len(text) <= max_chars:
        return text
    if max_chars <= len(ELLIPSIS):
        return text[: max(max_chars, 0)]
    room = max_chars - len(ELLIPSIS)
    head = text[: room + 1]
    cut = max(head.rfind(" "), head.rfind("\n"))
    # A word longer than half the budget is cut through rather than dropped whole.
    head = head[:cut] if cut > room // 2 else head[:room]
    return head.rstrip() + ELLIPSIS


def _safe_cap(text: object, max_chars: int) -> str:
    try:
        return str(text)[: max(int(max_chars), 0)]
    except Exception:
        return ""


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _trim_lines(lines: list[str]) -> list[str]:
    kept = lines[: _history_start(lines)]
    noise = _noise(kept)
    return [line for index, line in enumerate(kept) if index not in noise]


def _noise(lines: list[str]) -> set[int]:
    """Quoted lines, phone footers, and the attribution above replies written between quotes."""
    text = "\n".join(lines)
    noise = set()
    if ">" in text:
        noise = {index for index, line in enumerate(lines) if _is_quoted(line)}
    if _may_hold_footer(text):
        for found in _MOBILE_FOOTER_LINES.finditer(text):
            noise.add(text.count("\n", 0, found.start()))
    # An attribution ends in a colon: only such lines need the pattern.
    for index, line in enumerate(lines):
        if ":" in line and _ATTRIBUTION.match(line) and _next_is_quoted(lines, index + 1):
            noise.add(index)
    return noise


def _may_hold_footer(text: str) -> bool:
    # IGNORECASE also takes the long s for an "s"; lower() leaves it (the Kelvin sign it lowers).
    low = text.lower()
    return any(hint in low for hint in _FOOTER_HINTS) or "\u017f" in text


def _next_is_quoted(lines: list[str], start: int) -> bool:
    for index in range(start, len(lines)):
        if lines[index].strip():
            return _is_quoted(lines[index])
    return False


def _history_start(lines: list[str]) -> int:
    """Index of the first line of signature or quoted history; len(lines) when there is none."""
    for index in _history_candidates(lines):
        line = lines[index]
        if line in _SIGNATURE_MARKS:
            return index
        if _ORIGINAL_MESSAGE.match(line) or _is_outlook_block(lines, index):
            return index
        if _RULE.match(line) and _is_outlook_block(lines, index + 1):
            return index
        if _is_attribution(lines, index) and _only_quotes_follow(lines, index + 1):
            return index
    return len(lines)


def _history_candidates(lines: list[str]) -> list[int]:
    """Lines that may start history, in order; every other line fails all of its patterns.

    Signatures and "--- Original Message ---" hold "--", rules "__", Outlook's "From:" and
    attributions a colon, a wrapped attribution on its second line.
    """
    joined = "\n".join(lines)
    if ":" not in joined and "--" not in joined and "__" not in joined:
        return []
    found: set[int] = set()
    for index, line in enumerate(lines):
        if ":" in line:
            found.update((index - 1, index) if index else (index,))
        elif "--" in line or "__" in line:
            found.add(index)
    return sorted(found)


def _is_attribution(lines: list[str], index: int) -> bool:
    line = lines[index]
    if _ATTRIBUTION.match(line):
        return True
    # Long attributions are often wrapped onto a second line.
    if index + 1 < len(lines) and _ATTRIBUTION.match(f"{line} {lines[index + 1]}"):
        return not _is_quoted(line)
    return False


def _only_quotes_follow(lines: list[str], start: int) -> bool:
    """True when everything after an attribution, up to a signature, is quoted.

    Replies written between the quoted lines keep their text (only the quotes go).
    """
    quoted = False
    preamble = 0
    for index in range(start, len(lines)):
        line = lines[index]
        if line in _SIGNATURE_MARKS:
            break
        if _is_quoted(line):
            quoted = True
        elif line.strip() and not _MOBILE_FOOTER.match(line):
            # Only the second half of a wrapped attribution may come before the quotes.
            if quoted or preamble or not line.rstrip().endswith(":"):
                return False
            preamble += 1
    return quoted


def _is_outlook_block(lines: list[str], index: int) -> bool:
    """A "From: ..." line followed closely by "Sent:"/"Subject:"-style fields, not a forward."""
    if index >= len(lines) or not _OUTLOOK_FROM.match(lines[index]):
        return False
    following = lines[index + 1 : index + 1 + _OUTLOOK_LOOKAHEAD]
    if sum(1 for line in following if _OUTLOOK_FIELD.match(line)) < 2:
        return False
    # A forwarded message is the content, not history.
    before = lines[max(index - 2, 0) : index]
    return not any(_FORWARD_MARK.search(line) for line in before + following)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _collapse_blank_lines(lines: list[str]) -> str:
    """Trailing blanks off every line, runs of blank lines made one, none at either end."""
    text = "\n".join([line.rstrip() for line in lines])
    while "\n\n\n" in text:  # str.replace is many times faster here than a pattern
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n")
