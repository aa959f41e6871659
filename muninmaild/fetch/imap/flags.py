"""Pure helpers of writing to a mailbox: what SELECT allows, a message's flags, flag lists.

A server tells in SELECT's `PERMANENTFLAGS` which flags it keeps: new keywords only when the
list holds `\\*` (RFC 3501 7.1); a keyword already listed may always be set. A mailbox opened
`[READ-ONLY]` keeps nothing. No `PERMANENTFLAGS` at all means every flag is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from muninmaild.fetch.imap.responses import Lines, parse_examine

_PERMANENT = re.compile(rb"\[PERMANENTFLAGS \(([^)]*)\)\]", re.IGNORECASE)
_READ_ONLY = re.compile(rb"\[READ-ONLY\]", re.IGNORECASE)
_FETCH_START = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)", re.IGNORECASE)
ANY_KEYWORD = "\\*"


@dataclass(frozen=True)
class SelectedMailbox:
    """What SELECT told: the mailbox's UIDVALIDITY and which flags it keeps."""

    uidvalidity: int
    permanent: frozenset[str] | None  # None: the server sent no PERMANENTFLAGS
    read_only: bool = False

    @property
    def takes_new_keywords(self) -> bool:
        return not self.read_only and (self.permanent is None or ANY_KEYWORD in self.permanent)

    def allows(self, keyword: str) -> bool:
        if self.read_only:
            return False
        if self.permanent is None:
            return True
        known = {flag.lower() for flag in self.permanent}
        return ANY_KEYWORD in self.permanent or keyword.lower() in known

    def refusal(self, keywords: Iterable[str]) -> str | None:
        """Why these keywords cannot be written, in words; None when they all can."""
        refused = sorted(k for k in set(keywords) if not self.allows(k))
        if not refused:
            return None
        if self.read_only:
            return "the server opened the mailbox read-only"
        kept = " ".join(sorted(self.permanent or ())) or "none"
        return (
            f"the server allows no new keywords here (PERMANENTFLAGS {kept}, without \\*): "
            f"{', '.join(refused)} not written"
        )


def parse_select(lines: Lines) -> SelectedMailbox:
    info = parse_examine(lines)
    permanent: frozenset[str] | None = None
    read_only = False
    for line in lines:
        if isinstance(line, bytearray):
            continue
        if found := _PERMANENT.search(line):
            permanent = frozenset(found.group(1).decode("utf-8", "replace").split())
        if _READ_ONLY.search(line):
            read_only = True
    return SelectedMailbox(info.uidvalidity, permanent, read_only)


def parse_flags(lines: Lines) -> dict[int, frozenset[str]]:
    """The flags of each message of a `UID FETCH ... (FLAGS)` answer, by UID."""
    found: dict[int, frozenset[str]] = {}
    for line in lines:
        if isinstance(line, bytearray) or not _FETCH_START.match(line):
            continue
        uid, flags = _UID.search(line), _FLAGS.search(line)
        if uid and flags:
            names = flags.group(1).decode("utf-8", "replace").split()
            found[int(uid.group(1))] = frozenset(names)
    return found


def has_keyword(flags: Iterable[str], keyword: str) -> bool:
    """Keywords are case-insensitive (RFC 3501 2.3.2)."""
    return keyword.lower() in {flag.lower() for flag in flags}


def flag_list(keywords: Iterable[str]) -> str:
    return "(" + " ".join(keywords) + ")"
