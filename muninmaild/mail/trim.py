"""A message body cut down to what the sender wrote this time, within a size budget."""

from __future__ import annotations

import re

from muninmaild.mail.forwards import is_quoted, unwrap_forwards
from muninmaild.mail.history_marks import (
    FORWARD_MARK,
    ORIGINAL_MESSAGE,
    OUTLOOK_FIELD,
    OUTLOOK_FROM,
    is_attribution,
    opens_attribution,
)

ELLIPSIS = " [...]"

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
    text = "\n".join(lines)
    quoted = _quoted_lines(lines, text)
    if quoted:
        unwrapped = unwrap_forwards(lines, quoted)
        if unwrapped is not lines:
            lines, text = unwrapped, "\n".join(unwrapped)
            quoted = _quoted_lines(lines, text)
    kept = lines[: _history_start(lines, text)]
    noise = _noise(kept, text, quoted)
    return [line for index, line in enumerate(kept) if index not in noise]


def _quoted_lines(lines: list[str], text: str) -> list[int]:
    if ">" not in text:
        return []
    return [index for index, line in enumerate(lines) if is_quoted(line)]


def _noise(kept: list[str], text: str, quoted: list[int]) -> set[int]:
    """Quoted lines, phone footers, and the attribution above replies written between quotes.

    `text` is the whole body, of which `kept` is the head; `quoted` its quoted lines.
    """
    end = len(kept)
    noise = {index for index in quoted if index < end}
    if _may_hold_footer(text):
        for found in _MOBILE_FOOTER_LINES.finditer(text):
            noise.add(text.count("\n", 0, found.start()))
    # An attribution ends in a colon: only such lines need the pattern.
    for index, line in enumerate(kept):
        if ":" in line and is_attribution(line) and _nextis_quoted(kept, index + 1):
            noise.add(index)
    return noise


def _may_hold_footer(text: str) -> bool:
    # IGNORECASE also takes the long s for an "s"; lower() leaves it (the Kelvin sign it lowers).
    low = text.lower()
    return any(hint in low for hint in _FOOTER_HINTS) or "\u017f" in text


def _nextis_quoted(lines: list[str], start: int) -> bool:
    for index in range(start, len(lines)):
        if lines[index].strip():
            return is_quoted(lines[index])
    return False


def _history_start(lines: list[str], text: str) -> int:
    """Index of the first line of signature or quoted history; len(lines) when there is none."""
    for index in _history_candidates(lines, text):
        line = lines[index]
        if line in _SIGNATURE_MARKS:
            return index
        if ORIGINAL_MESSAGE.match(line) or _is_outlook_block(lines, index):
            return index
        if _RULE.match(line) and _is_outlook_block(lines, index + 1):
            return index
        if _is_attribution(lines, index) and _only_quotes_follow(lines, index + 1):
            return index
    return len(lines)


def _history_candidates(lines: list[str], text: str) -> list[int]:
    """Lines that may start history, in order; every other line fails all of its patterns.

    Signatures and "--- Original Message ---" hold "--", rules "__", Outlook's "From:" and
    attributions a colon, a wrapped attribution on its second line.
    """
    if ":" not in text and "--" not in text and "__" not in text:
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
    if is_attribution(line):
        return True
    # Long attributions are often wrapped onto a second line: the first half ends inside the
    # date, name or address, never with a full stop.
    if index + 1 >= len(lines):
        return False
    second = lines[index + 1]
    if not second.rstrip().endswith(":") or is_quoted(second):
        return False
    if line.rstrip().endswith((".", "!", "?")) or not opens_attribution(line):
        return False
    return is_attribution(f"{line} {second}")


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
        if is_quoted(line):
            quoted = True
        elif line.strip() and not _MOBILE_FOOTER.match(line):
            # Only the second half of a wrapped attribution may come before the quotes.
            if quoted or preamble or not line.rstrip().endswith(":"):
                return False
            preamble += 1
    return quoted


def _is_outlook_block(lines: list[str], index: int) -> bool:
    """A "From: ..." line followed closely by "Sent:"/"Subject:"-style fields, not a forward."""
    if index >= len(lines) or not OUTLOOK_FROM.match(lines[index]):
        return False
    following = lines[index + 1 : index + 1 + _OUTLOOK_LOOKAHEAD]
    if sum(1 for line in following if OUTLOOK_FIELD.match(line)) < 2:
        return False
    # A forwarded message is the content, not history.
    before = lines[max(index - 2, 0) : index]
    return not any(FORWARD_MARK.search(line) for line in before + following)


def _collapse_blank_lines(lines: list[str]) -> str:
    """Trailing blanks off every line, runs of blank lines made one, none at either end."""
    text = "\n".join([line.rstrip() for line in lines])
    while "\n\n\n" in text:  # str.replace is many times faster here than a pattern
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n")
