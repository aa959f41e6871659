"""The message tree for the MIME shapes most mail has, without the standard parser's line loop.

The standard library's FeedParser hands every line of a message through a generator, a line
buffer and, inside a multipart, a boundary regex compiled for that message: about half of the
time a message takes to parse, and 50 KB of base64 is 650 lines. Most mail is simpler than what that
machinery is for: headers, a blank line, then either one body or parts between boundary lines.
For that shape this module builds the same tree FeedParser would (compat32 `Message` objects with
the same headers, payloads, preambles, epilogues and defects): header blocks are found with one
regular expression and read as FeedParser's `_parse_headers` reads them, through the policy's
own `header_source_parse`; boundaries are found with `str.find` (bench/README.md, P1, has the
figures).

Anything else gets None, and the caller uses FeedParser for the whole message: a header line
that is not one (FeedParser notes a defect and reads it as body), headers without the blank line
that ends them, a Unix "From " line, `message/*` parts (parsed as messages of their own), a
multipart without a boundary or with a transfer encoding it must not have, `multipart/digest`,
a boundary string anywhere but on a boundary line, a part that is empty, a missing first or
closing boundary, or anything after the closing one. tests/test_mail_mime.py checks the trees
against FeedParser's on the bench corpus, the hostile corpus and generated variants of both.
"""

from __future__ import annotations

import re
from email import errors
from email.message import Message
from email.policy import compat32
from itertools import pairwise

# Header lines (FeedParser's headerRE without "From ") up to and including the blank line.
# Lines end as FeedParser splits them: \r\n, \r or \n; a \r\n is never a \r then a blank line.
_LINE_END = r"(?:\r\n|\r(?!\n)|\n)"
_HEADER_BLOCK = re.compile(rf"(?:(?:[\041-\071\073-\176]*:|[\t ])[^\r\n]*{_LINE_END})*{_LINE_END}")
_EOL = re.compile(_LINE_END)
_LINE = re.compile(rf"[^\r\n]+{_LINE_END}")  # a header line; the blank one is not matched
# What may follow the separator on a boundary line: FeedParser's boundary regex after `--b`.
_BOUNDARY_TAIL = re.compile(r"(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$")
_PLAIN_MULTIPART_ENCODINGS = ("7bit", "8bit", "binary")


def message_tree(raw: bytes) -> Message | None:
    """The tree FeedParser would build from `raw`, or None when this shape is not handled."""
    return _tree(raw.decode("ascii", "surrogateescape"))


def _tree(text: str, *, part: bool = False) -> Message | None:
    block = _HEADER_BLOCK.match(text)
    if block is None:
        return None
    msg = _headers(_LINE.findall(text, 0, block.end()))
    body = text[block.end() :]
    maintype = msg.get_content_maintype()
    if maintype == "message":
        return None
    # In a part, the line break before the next boundary belongs to the boundary (RFC 2046):
    # FeedParser takes it off the part's payload, or off a multipart part's epilogue.
    if maintype == "multipart":
        if not _split(msg, body):
            return None
        if part:
            msg.epilogue = _without_eol(msg.epilogue) if msg.epilogue else None
        return msg
    msg.set_payload(_without_eol(body) if part else body)
    return msg


def _headers(lines: list[str]) -> Message:
    """FeedParser's `_parse_headers`, for lines that all passed its header test."""
    msg = Message(policy=compat32)
    value: list[str] = []
    for line in lines:
        if line[0] in " \t":  # a continuation line
            if value:
                value.append(line)
            else:
                msg.defects.append(errors.FirstHeaderLineIsContinuationDefect(line))
            continue
        if value:
            msg.set_raw(*compat32.header_source_parse(value))
            value = []
        if line.find(":") == 0:
            msg.defects.append(errors.InvalidHeaderDefect("Missing header name."))
            continue
        value = [line]
    if value:
        msg.set_raw(*compat32.header_source_parse(value))
    return msg


def _split(msg: Message, body: str) -> bool:
    """Attach the parts of a multipart `body` to `msg`; False if its shape is not handled."""
    boundary = msg.get_boundary()
    if boundary is None or msg.get_content_type() == "multipart/digest":
        return False
    encoding = str(msg.get("content-transfer-encoding", "8bit")).lower()
    if encoding not in _PLAIN_MULTIPART_ENCODINGS:
        return False
    lines = _boundary_lines(body, "--" + boundary)
    if lines is None or len(lines) < 2 or not lines[-1][2]:
        return False
    if any(close for _, _, close in lines[:-1]):
        return False
    preamble = body[: lines[0][0]]
    if preamble:
        msg.preamble = _without_eol(preamble)
    for (_, start, _), (end, _, _) in pairwise(lines):
        part = _tree(body[start:end], part=True) if end > start else None
        if part is None:
            return False
        msg.attach(part)
    msg.epilogue = body[lines[-1][1] :]
    return True


def _boundary_lines(body: str, separator: str) -> list[tuple[int, int, bool]] | None:
    """(start, end, is the closing one) of every boundary line; None if the separator also
    turns up anywhere else, where FeedParser's reading of it is not worth copying."""
    found = []
    at = body.find(separator)
    while at != -1:
        if at and body[at - 1] not in "\r\n":
            return None
        eol = _EOL.search(body, at)
        end = eol.end() if eol else len(body)
        tail = _BOUNDARY_TAIL.match(body[at:end], len(separator))
        if tail is None:
            return None
        found.append((at, end, tail.group("end") is not None))
        at = body.find(separator, end)
    return found


def _without_eol(text: str) -> str:
    """FeedParser's `(\\r\\n|\\r|\\n)\\Z` cut, without a regex search through the whole part."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\r", "\n")) else text
