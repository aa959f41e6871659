"""Text mechanics for the offline rules backend: phrase patterns, lines, sentences.

Everything here is a plain function over strings; nothing raises on odd input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Bodies arrive capped upstream; this bound keeps the rules fast even when a caller forgets.
MAX_TEXT_CHARS = 20_000

NEVER = re.compile(r"(?!)")


# Longer phrases fall back to a flat alternation to keep the trie's recursion shallow.
_TRIE_MAX_LEN = 200
_Trie = dict[str, "_Trie"]


def alternation(phrases: Iterable[str]) -> str:
    """A regex alternation of `phrases`, longest match first, single spaces matching any spacing.

    The phrases are folded into a trie ("jan(?:uary)?"): Python's engine tries alternatives one by
    one, and sharing prefixes makes a long word list several times cheaper to search.
    """
    parts = sorted(set(phrases) - {""})
    if any(len(p) > _TRIE_MAX_LEN for p in parts):
        return "|".join(_escape(p) for p in sorted(parts, key=lambda p: (-len(p), p)))
    root: _Trie = {}
    for phrase in parts:
        node = root
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_regex(root)


def _escape(text: str) -> str:
    return r"\s+".join(re.escape(w) for w in text.split(" "))


def _trie_regex(node: _Trie) -> str:
    branches = [_escape(char) + _trie_regex(child) for char, child in node.items() if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return f"(?:{body})?" if "" in node else body


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """A pattern for any of `phrases` as whole words, any spacing between words.

    It is compiled for lower-case text: lowering the text once and matching case-sensitively is
    several times faster than re.IGNORECASE on a long alternation.
    """
    parts = {squash(normalise(p)).lower() for p in phrases} - {""}
    if not parts:
        return NEVER
    return re.compile(rf"(?<!\w)(?:{alternation(parts)})(?!\w)")


class Phrases:
    """A word list matched on whole words, ignoring case."""

    __slots__ = ("pattern",)

    def __init__(self, phrases: Iterable[str]) -> None:
        self.pattern = phrase_pattern(phrases)

    def found(self, text: str) -> bool:
        return self.pattern.search(text.lower()) is not None

    def blank(self, text: str) -> str:
        """`text` lowered, with every phrase replaced by a space."""
        return self.pattern.sub(" ", text.lower())


_TRANSLATE = str.maketrans(
    {
        "\r": "\n",
        "\u2028": "\n",
        "\u2029": "\n",
        "\u00a0": " ",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\t": " ",
    }
)
_INVISIBLE_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2060\ufeff]")


def normalise(text: str) -> str:
    """Composed unicode, plain quotes and line ends, no control or zero-width characters."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    return _INVISIBLE_RE.sub("", text.translate(_TRANSLATE))


def squash(text: str) -> str:
    return " ".join(text.split())


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters at a word boundary, marking the cut with "..."."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "..."


_WORD_RE = re.compile(r"[^\W\d_]+")


def word_count(text: str) -> int:
    return len(_WORD_RE.findall(text))


def has_letters(text: str) -> bool:
    return _WORD_RE.search(text) is not None


_GREETING_WORDS = (
    r"hi|hello|hey|hiya|dear|greetings|good\s+(?:morning|afternoon|evening|day)"
    r"|hallo|moin|liebe[rs]?|sehr\s+geehrte[rs]?|guten\s+(?:tag|morgen|abend)"
    r"|bonjour|bonsoir|salut|cher|chère|to\s+whom\s+it\s+may\s+concern"
)
# A name or title after the greeting word: no sentence punctuation, but "Mr. Smith" is fine.
_ADDRESSEE = r"(?:[^.!?,:\n]|\.(?=\s?\w)){0,40}"
_GREETING_LINE_RE = re.compile(
    rf"^(?:(?:{_GREETING_WORDS})(?![\w']){_ADDRESSEE}[,!:.]?|[^\W\d_][\w'-]*(?:\s+[\w'-]+)?,)$",
    re.IGNORECASE,
)
_GREETING_PREFIX_RE = re.compile(
    rf"^(?:{_GREETING_WORDS})(?![\w']){_ADDRESSEE}[,!:]\s+", re.IGNORECASE
)
_SIGNOFF_RE = re.compile(
    r"^(?:best|best\s+regards|best\s+wishes|kind\s+regards|warm\s+regards|warmly|regards"
    r"|many\s+thanks|thanks|thank\s+you|thx|ta|cheers|sincerely|yours(?:\s+(?:truly|sincerely))?"
    r"|talk\s+soon|take\s+care|all\s+the\s+best|mit\s+freundlichen\s+grüßen|viele\s+grüße"
    r"|beste\s+grüße|liebe\s+grüße|grüße|gruß|lg|vg|mfg|cordialement|bien\s+à\s+vous"
    r"|amicalement|bien\s+cordialement|merci|danke)(?![\w'])"
    r"[\s,.!-]*(?:[\w.'-]+(?:\s+[\w.'-]+)?)?\s*[,.!]?$",
    re.IGNORECASE,
)
_BOILERPLATE_RE = re.compile(
    r"unsubscribe|view\s+(?:this\s+(?:e-?mail|message)\s+|it\s+|this\s+)?(?:in|on)\s+"
    r"(?:your|a|the)\s+(?:web\s*)?browser|view\s+(?:it\s+|this\s+)?online"
    r"|manage\s+(?:your\s+)?(?:e-?mail\s+)?(?:preferences|subscriptions?)|e-?mail\s+preferences"
    r"|you(?:'re|\s+are)\s+receiving\s+this|you\s+received\s+this|this\s+e-?mail\s+was\s+sent\s+to"
    r"|privacy\s+policy|all\s+rights\s+reserved|©|\(c\)\s+\d{4}"
    r"|sent\s+from\s+my\s+(?:iphone|ipad|android|mobile|phone|samsung)"
    r"|do\s+not\s+reply\s+to\s+this|this\s+is\s+an\s+automated\s+(?:message|e-?mail)"
    r"|abmelden|abbestellen|im\s+browser\s+(?:ansehen|anzeigen)|désinscri|désabonner"
)
_BULLET_RE = re.compile(
    r"^(?:[-*+\u2022\u2023\u25e6\u2013]|\d{1,2}[.)]|[a-z][)])\s+(?=\S)(.*)$", re.IGNORECASE
)


@dataclass(frozen=True)
class Sentence:
    text: str
    bullet: bool = False


_SIGNATURE_SMALL_WORDS = frozenset({"of", "and", "&", "at", "the", "de", "du", "la", "le"})
_SIGNATURE_SMALL_WORDS |= {"von", "van", "der", "für", "und"}


def _is_name_line(line: str) -> bool:
    """The short lines under a sign-off: a name, a title, a company, an address."""
    parts = line.split()
    return len(parts) <= 6 and not line.endswith("?") and all(map(_signature_word, parts))


def _signature_word(word: str) -> bool:
    return (
        word[:1].isupper()
        or not word[:1].isalpha()
        or "@" in word
        or word.startswith(("www.", "http"))
        or word.lower() in _SIGNATURE_SMALL_WORDS
    )


def _noise_line(line: str) -> bool:
    return (
        line.startswith(">")
        or not has_letters(line)
        or _GREETING_LINE_RE.match(line) is not None
        or _BOILERPLATE_RE.search(line.lower()) is not None
    )


def content_lines(body: str) -> Iterator[str]:
    """The body's lines without greetings, sign-offs and the names under them, or boilerplate.

    An empty string marks a paragraph break.
    """
    after_signoff = False
    for raw in body.split("\n"):
        line = raw.strip()
        if not line or _SIGNOFF_RE.match(line):
            after_signoff = bool(line)
            yield ""
        elif after_signoff and _is_name_line(line):
            continue
        elif _noise_line(line):
            after_signoff = False
            yield ""
        else:
            after_signoff = False
            yield line


# Hard-wrapped prose runs to 60-78 characters a line; a label line is much shorter.
_SHORT_LINE = 40


def _starts_unit(previous: list[str], line: str) -> bool:
    """Whether `line` begins a new paragraph rather than continuing the wrapped one before it.

    Notifications stack short label lines ("Branch: main") that must not run into one sentence.
    """
    if not line or _BULLET_RE.match(line):
        return True
    last = previous[-1]
    return len(last) < _SHORT_LINE and ":" in last and line[:1].isupper()


def _units(lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Paragraphs and bullet items (wrapped lines joined), in order, as (text, is_bullet).

    A bullet item runs until a blank line or the next bullet: mail wraps long items.
    """
    paragraph: list[str] = []
    in_bullet = False
    for line in lines:
        bullet = _BULLET_RE.match(line)
        if paragraph and (bullet or not line or (not in_bullet and _starts_unit(paragraph, line))):
            yield " ".join(paragraph), in_bullet
            paragraph = []
        if bullet:
            paragraph, in_bullet = [bullet.group(1)], True
        elif line:
            in_bullet = in_bullet and bool(paragraph)
            paragraph.append(line)
        else:
            in_bullet = False
    if paragraph:
        yield " ".join(paragraph), in_bullet


_BOUNDARY_RE = re.compile(r"[.!?…]+[\"')\]»]*\s+")
_WORD_BEFORE_RE = re.compile(r"[\w.]+$")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "approx", "ca", "e.g", "i.e", "eg", "ie"}
    | {"z.b", "bzw", "u.a", "nr", "cf", "fig"}
)


def _keeps_going(text: str, boundary: re.Match[str]) -> bool:
    """Whether a full stop is part of an abbreviation, an initial or a German date ("3. Mai")."""
    following = text[boundary.end() : boundary.end() + 1]
    if following.islower():
        return True
    before = _WORD_BEFORE_RE.search(text, max(0, boundary.start() - 12), boundary.start())
    word = before.group(0).lower() if before else ""
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    return (
        word.isdigit()
        and len(word) <= 2
        and _MONTH_AHEAD_RE.match(text, boundary.end()) is not None
    )


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    start = 0
    for boundary in _BOUNDARY_RE.finditer(text):
        if not _keeps_going(text, boundary):
            out.append(text[start : boundary.end()].strip())
            start = boundary.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _is_noise_sentence(text: str) -> bool:
    return (
        not has_letters(text)
        or _GREETING_LINE_RE.match(text) is not None
        or _SIGNOFF_RE.match(text) is not None
    )


def sentences(body: str) -> tuple[Sentence, ...]:
    """The body's content as sentences and bullet items, greetings and sign-offs left out."""
    out: list[Sentence] = []
    for text, bullet in _units(content_lines(body)):
        if bullet:
            # The item's first sentence is the task; what follows explains it.
            first, *rest = split_sentences(squash(text)) or [""]
            parts = [(first, True)] + [(r, False) for r in rest]
        else:
            body_text = squash(_GREETING_PREFIX_RE.sub("", text, count=1))
            parts = [(p, False) for p in split_sentences(body_text)]
        out.extend(Sentence(p, b) for p, b in parts if p and not _is_noise_sentence(p))
    return tuple(out)


# Month names live here, not with the dates: sentence splitting must not end a sentence at "3. Mai".

_MONTH_NAMES = (
    ("january", "jan", "januar", "janvier"),
    ("february", "feb", "februar", "février", "fevrier"),
    ("march", "mar", "märz", "maerz", "mars"),
    ("april", "apr", "avril"),
    ("may", "mai"),
    ("june", "jun", "juni", "juin"),
    ("july", "jul", "juli", "juillet"),
    ("august", "aug", "août", "aout"),
    ("september", "sep", "sept", "septembre"),
    ("october", "oct", "oktober", "okt", "octobre"),
    ("november", "nov", "novembre"),
    ("december", "dec", "dezember", "dez", "décembre", "decembre"),
)
MONTHS: dict[str, int] = {n: i for i, names in enumerate(_MONTH_NAMES, 1) for n in names}
MONTH_PATTERN = alternation(MONTHS)
_MONTH_AHEAD_RE = re.compile(rf"(?:{MONTH_PATTERN})(?!\w)", re.IGNORECASE)
