"""Pure helpers of the IMAP fetcher: reading aioimaplib's answers and writing command arguments.

aioimaplib parses nothing: an answer is a list of lines (`bytes`) with the message literals as
`bytearray` items between them, and the tagged status text last. Untagged lines come without
their leading `* `, and those of a SEARCH also without the word SEARCH.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

Lines = Sequence[bytes | bytearray]

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]", re.IGNORECASE)
_EXISTS = re.compile(rb"^(\d+) EXISTS\b", re.IGNORECASE)
_FETCH_START = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class MailboxInfo:
    """What EXAMINE told about a mailbox.

    `exists` holds every EXISTS count in the answer: two different ones mean mail arrived while
    the server was answering.
    """

    uidvalidity: int
    uidnext: int | None
    exists: tuple[int, ...] = ()

    @property
    def grew_meanwhile(self) -> bool:
        return len(set(self.exists)) > 1

    @property
    def count(self) -> int | None:
        """The message count at the end of the answer; None if the server sent none."""
        return self.exists[-1] if self.exists else None


@dataclass(frozen=True)
class FetchedItem:
    """One message of a UID FETCH answer; `data` is the requested section, None if absent."""

    uid: int
    size: int | None
    data: bytes | None


def parse_examine(lines: Lines) -> MailboxInfo:
    """UIDVALIDITY, UIDNEXT and EXISTS out of a SELECT or EXAMINE answer."""
    uidvalidity = uidnext = None
    exists: list[int] = []
    for line in lines:
        if isinstance(line, bytearray):
            continue
        if found := _UIDVALIDITY.search(line):
            uidvalidity = int(found.group(1))
        if found := _UIDNEXT.search(line):
            uidnext = int(found.group(1))
        if found := _EXISTS.match(line):
            exists.append(int(found.group(1)))
    if uidvalidity is None:
        raise ValueError("the server sent no UIDVALIDITY for the mailbox")
    return MailboxInfo(uidvalidity, uidnext, tuple(exists))


def parse_search(lines: Lines, above: int = 0) -> list[int]:
    """The UIDs of a UID SEARCH answer that are above `above`, in order.

    `UID SEARCH UID n:*` always answers the highest UID, even when it is below n; and the
    tagged status text (last line) is no result.
    """
    found: set[int] = set()
    for line in lines[:-1]:
        if isinstance(line, bytes):
            found.update(int(t) for t in line.split() if t.isdigit())
    return sorted(uid for uid in found if uid > above)


def parse_fetch(lines: Lines) -> dict[int, FetchedItem]:
    """The messages of a UID FETCH answer by UID.

    A message's UID and size may come before or after its literal; a server may also mix in
    unsolicited FETCH lines (flag changes) without data, which never hide a message's data.
    """
    found: dict[int, FetchedItem] = {}
    for uid, size, data in _fetch_records(lines):
        if uid is None:
            continue
        before = found.get(uid)
        if before is None or (before.data is None and data is not None):
            found[uid] = FetchedItem(uid, size if size is not None else _size(before), data)
    return found


def _size(item: FetchedItem | None) -> int | None:
    return item.size if item else None


def _fetch_records(lines: Lines) -> Iterator[tuple[int | None, int | None, bytes | None]]:
    uid = size = None
    data: bytes | None = None
    started = False
    for line in lines:
        if isinstance(line, bytearray):
            data = bytes(line)
            continue
        if _FETCH_START.match(line):
            if started:
                yield uid, size, data
            uid = size = None
            data, started = None, True
        elif not started:
            continue
        if found := _UID.search(line):
            uid = int(found.group(1))
        if found := _SIZE.search(line):
            size = int(found.group(1))
    if started:
        yield uid, size, data


def has_new_mail(pushed: Lines) -> bool:
    """Whether lines the server pushed during IDLE announce new messages."""
    return any(isinstance(line, bytes) and _EXISTS.match(line) for line in pushed)


def says_bye(pushed: Lines) -> bool:
    return any(isinstance(line, bytes) and line.upper().startswith(b"BYE") for line in pushed)


def status_text(lines: Lines, limit: int = 200) -> str:
    """The server's words in a tagged answer (its last line), for an error message."""
    last = lines[-1] if lines else b""
    text = bytes(last).decode("utf-8", "replace").strip()
    return text[:limit] or "no reason given"


def uid_set(uids: Sequence[int]) -> str:
    """A compact IMAP sequence set: [1, 2, 3, 7, 9, 10] -> "1:3,7,9:10"."""
    parts: list[str] = []
    ordered = sorted(set(uids))
    start = prev = None
    for uid in [*ordered, None]:
        if prev is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    return ",".join(parts)


def chunked(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def plan_groups(
    uids: Sequence[int], sizes: Mapping[int, int], max_size: int, max_bytes: int
) -> list[list[int]]:
    """Consecutive UIDs in groups whose bodies add up to at most `max_bytes` (at least one
    message each). An oversize message counts for little: only its header is fetched."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        cost = size if size <= max_size else 0
        if current and total + cost > max_bytes:
            groups.append(current)
            current, total = [], 0
        current.append(uid)
        total += cost
    if current:
        groups.append(current)
    return groups


def quote_string(text: str) -> str:
    """An IMAP quoted string (RFC 3501 section 9)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_mailbox(name: str) -> str:
    """A mailbox name for a command: modified UTF-7 (RFC 3501 section 5.1.3), then quoted."""
    return quote_string(encode_mailbox(name))


def encode_mailbox(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []
    for char in [*name, ""]:
        if char and not (" " <= char <= "~"):
            pending.append(char)
            continue
        if pending:
            out.append("&" + _modified_base64("".join(pending)) + "-")
            pending.clear()
        out.append("&-" if char == "&" else char)
    return "".join(out)


def _modified_base64(text: str) -> str:
    raw = base64.b64encode(text.encode("utf-16-be")).decode("ascii")
    return raw.rstrip("=").replace("/", ",")
