"""HTML mail bodies turned into plain text for triage, with the stdlib parser only."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# Contents of these elements are never shown to a reader.
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Elements that end a paragraph: a blank line around them.
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "ul", "ol", "dl", "pre", "hr"}
)
# Elements that end a line.
_LINE = frozenset(
    {
        "div",
        "li",
        "tr",
        "dt",
        "dd",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "address",
        "form",
        "center",
        "figure",
        "figcaption",
        "main",
        "caption",
        "fieldset",
        "legend",
    }
)
_CELL = frozenset({"td", "th"})
# Quoted history: every blockquote, and the divs the common clients put around a quoted
# message or its attribution line ("On ... wrote:"). Its lines are written as a plain-text
# client would, behind "> ", so trimming tells them from the new text. The containers of a
# whole reply or forward (gmail_quote, Outlook's divRplyFwdMsg) are not here: a forwarded
# message inside them is content, and Outlook's "From:/Sent:" block is recognised as text.
_QUOTE_DIV_MARKERS = ("gmail_attr", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote")
_QUOTE_PREFIX = "> "

_WHITESPACE = re.compile(r"\s+")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
# Zero-width characters pad the hidden preview text of newsletters.
_INVISIBLE = re.compile("[\u00ad\u034f\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
_DECLARATION = re.compile(r"<!(?!--)[^>]*>")
_OPEN_DECLARATION = re.compile(r"<!(?!--)")
_ANY_TAG = re.compile(r"<[^>]*>")
_SKIPPED_BLOCK = re.compile(
    r"<(script|style|head|title|template)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL
)


class _TextCollector(HTMLParser):
    """Collects the visible text; line breaks are owed and paid before the next text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._open_skipped: dict[str, int] = {}
        self._in_pre = 0
        self._owed_breaks = 0
        # One entry per open div: whether it is a quote; a blockquote always is one.
        self._divs: list[bool] = []
        self._blockquotes = 0
        self._quote_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            quote = _is_quote_div(attrs)
            self._divs.append(quote)
            self._quote_depth += quote
        elif tag == "blockquote":
            self._blockquotes += 1
            self._quote_depth += 1
        elif tag in _SKIPPED:
            self._open_skipped[tag] = self._open_skipped.get(tag, 0) + 1
        elif tag == "body":
            # A missing </head> must not hide the whole body.
            self._open_skipped.pop("head", None)
            self._open_skipped.pop("title", None)
        self._block_edge(tag)
        if tag == "pre":
            self._in_pre += 1
        elif tag == "li" and not self._skipping():
            self._emit("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag != "br":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._divs:
            self._quote_depth -= self._divs.pop()
        elif tag == "blockquote" and self._blockquotes > 0:
            self._blockquotes -= 1
            self._quote_depth -= 1
        elif tag in _SKIPPED and self._open_skipped.get(tag, 0) > 0:
            self._open_skipped[tag] -= 1
        elif tag == "pre" and self._in_pre > 0:
            self._in_pre -= 1
        self._block_edge(tag)

    def handle_data(self, data: str) -> None:
        if self._skipping():
            return
        if self._in_pre:
            self._preformatted(data)
            return
        text = data.replace("\n", " ").replace("\r", " ")
        if text.strip():
            self._emit(text)
        elif self.chunks and not self._owed_breaks and not self.chunks[-1].endswith(" "):
            self.chunks.append(" ")

    def _preformatted(self, data: str) -> None:
        for index, line in enumerate(data.split("\n")):
            if index:
                self._owe(1)
            if line:
                self._emit(line)

    def _block_edge(self, tag: str) -> None:
        if tag == "br":
            # Each <br> counts (a stray </br> too): two in a row make a blank line.
            self._owed_breaks = min(self._owed_breaks + 1, 2)
        elif tag in _PARAGRAPH:
            self._owe(2)
        elif tag in _LINE:
            self._owe(1)
        elif tag in _CELL and self.chunks and not self._owed_breaks:
            self.chunks.append(" ")

    def _owe(self, count: int) -> None:
        self._owed_breaks = max(self._owed_breaks, count)

    def _emit(self, text: str) -> None:
        line_start = not self.chunks
        if self._owed_breaks and self.chunks:
            self.chunks.append("\n" * self._owed_breaks)
            line_start = True
        self._owed_breaks = 0
        # Quote containers are blocks, so a line never changes depth halfway.
        if self._quote_depth and line_start:
            self.chunks.append(_QUOTE_PREFIX * self._quote_depth)
        self.chunks.append(text)

    def _skipping(self) -> bool:
        return any(self._open_skipped.values())


def _is_quote_div(attrs: list[tuple[str, str | None]]) -> bool:
    for name, value in attrs:
        if value and name in ("class", "id") and any(m in value for m in _QUOTE_DIV_MARKERS):
            return True
    return False


def html_to_text(html: str) -> str:
    """Visible text of an HTML document, one block per line; never raises.

    Quoted parts (see _QUOTE_DIV_MARKERS) come out behind "> ", one per level.
    """
    try:
        return _tidy(_collect(html))
    except Exception:
        return _last_resort(html)


def _collect(source: str) -> str:
    try:
        return _run_parser(source)
    except Exception:
        # The stdlib parser asserts on some odd declarations: drop the closed ones, show the
        # unclosed ones as text, and retry.
        return _run_parser(_OPEN_DECLARATION.sub("&lt;!", _DECLARATION.sub(" ", source)))


def _run_parser(source: str) -> str:
    collector = _TextCollector()
    collector.feed(source)
    collector.close()
    return "".join(collector.chunks)


def _last_resort(source: str) -> str:
    try:
        text = _ANY_TAG.sub(" ", _SKIPPED_BLOCK.sub(" ", source))
        return _tidy(_WHITESPACE.sub(" ", html.unescape(text)))
    except Exception:
        return ""


def _tidy(text: str) -> str:
    """Collapses spaces within lines and keeps at most one blank line in a row."""
    lines: list[str] = []
    for raw_line in _INLINE_SPACE.sub(" ", _INVISIBLE.sub("", text)).split("\n"):
        line = raw_line.strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)
