"""Forwarded messages that a mail client quoted, made plain: they are content, not history.

Apple Mail writes "Begin forwarded message:" above a quote; Yahoo, and Gmail's header line,
start the quote itself with "---- Forwarded Message ----". Only a forward below the sender's
own text counts: one inside a quote, or below an attribution ("On ... wrote:"), is part of a
reply's history. A forward inside a forward comes out when the outer one has been unquoted.
"""

from __future__ import annotations

from muninmaild.mail.history_marks import FORWARD_INTRO, is_attribution

# Forwards inside forwards unquoted, at most.
_MAX_NESTING = 5


def is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def unwrap_forwards(lines: list[str], quoted: list[int]) -> list[str]:
    """`lines` with each quoted forward unquoted by its own depth; the same list when none.

    `quoted` are the indices of the quoted lines, in order.
    """
    for _ in range(_MAX_NESTING):
        unwrapped = _unwrap_once(lines, quoted)
        if unwrapped is lines:
            break
        lines = unwrapped
        quoted = [index for index, line in enumerate(lines) if is_quoted(line)]
    return lines


def _unwrap_once(lines: list[str], quoted: list[int]) -> list[str]:
    intros = _intros(lines, quoted)
    if not intros:
        return lines
    done = 0
    for intro in intros:
        if intro < done:
            continue
        span = _forwarded_span(lines, intro)
        if span is not None:
            start, done, depth = span
            unquoted = [_unquote(line, depth) for line in lines[start:done]]
            lines = lines[:start] + unquoted + lines[done:]
    return lines


def _intros(lines: list[str], quoted: list[int]) -> list[int]:
    """Lines that may introduce a quoted forward: quoted ones, and those just above a quote.

    Only these are matched against the markers, so a reply without a forward costs a look at
    each quoted line and nothing more.
    """
    found = []
    quoted_set = set(quoted)
    for index in quoted:
        if _may_be_intro(lines[index]):
            found.append(index)
        elif index and index - 1 not in quoted_set:
            above = _previous_text(lines, index)
            if above is not None and above not in quoted_set and _may_be_intro(lines[above]):
                found.append(above)
    return sorted(set(found))


def _may_be_intro(line: str) -> bool:
    if "--" not in line and not line.rstrip().endswith(":"):
        return False
    return FORWARD_INTRO.match(_unquote(line, _depth(line))) is not None


def _forwarded_span(lines: list[str], index: int) -> tuple[int, int, int] | None:
    """(start, end, depth) of the quoted forward that lines[index] introduces, if it does."""
    depth = _depth(lines[index])
    if depth:
        above = _previous_text(lines, index)
        if above is not None:
            text = lines[above]
            if _depth(text) or is_attribution(text):
                return None
        start = index
    else:
        below = _next_text(lines, index + 1)
        if below is None or not _depth(lines[below]):
            return None
        start, depth = below, _depth(lines[below])
    end = start
    while end < len(lines) and (not lines[end].strip() or _depth(lines[end]) >= depth):
        end += 1
    return start, end, depth


def _previous_text(lines: list[str], index: int) -> int | None:
    for above in range(index - 1, -1, -1):
        if lines[above].strip():
            return above
    return None


def _next_text(lines: list[str], start: int) -> int | None:
    for below in range(start, len(lines)):
        if lines[below].strip():
            return below
    return None


def _depth(line: str) -> int:
    """How many levels deep a line is quoted: "> > a" and ">> a" are two."""
    depth = 0
    for char in line:
        if char == ">":
            depth += 1
        elif char not in " \t":
            break
    return depth


def _unquote(line: str, levels: int) -> str:
    for _ in range(levels):
        stripped = line.lstrip()
        if not stripped.startswith(">"):
            break
        line = stripped[2:] if stripped.startswith("> ") else stripped[1:]
    return line
