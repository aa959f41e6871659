"""Raw message bytes into a ParsedMail, whatever the bytes are.

The compat32 policy is used on purpose: it is several times faster than the modern policy and
never raises while parsing; everything it leaves undecoded is decoded here, defensively.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import policy
from email.errors import MessageDefect
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from muninmaild.mail.headers import KEPT_HEADERS
from muninmaild.mail.html import html_to_text
from muninmaild.mail.mime import message_tree
from muninmaild.records import Attachment, ParsedMail

MAX_PARTS = 2_000
MAX_DEFECTS = 50
MAX_BODY_CHARS = 1_000_000
MAX_HTML_CHARS = 4_000_000
HEADER_CAP = 2_000
ADDRESS_CAP = 20_000
NAME_CAP = 255
_MESSAGE_ID_CAP = 998
_PARAM_HEADERS = ("content-disposition", "content-type")
_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})
# Labels mail software uses for charsets Python either lacks or reads too strictly.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
}

_SURROGATES = re.compile("[\udc80-\udcff]")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
_HEADER_BREAKS = re.compile(r"[\s\x00-\x1f\x7f]+")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_CAMEL_WORD = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass
class _Scan:
    parts: list[Message] = field(default_factory=list)
    plain: Message | None = None
    html: Message | None = None
    attachments: list[Attachment] = field(default_factory=list)
    has_calendar: bool = False


def parse_message(raw: bytes) -> ParsedMail:
    """Parses one message; never raises, whatever `raw` holds."""
    try:
        parsed = _parse(bytes(raw))
    except Exception as exc:  # the contract is to never raise, so keep at least the headers
        parsed = _headers_only(raw, exc)
    return _storable(parsed)


def _storable(mail: ParsedMail) -> ParsedMail:
    """Every text field without lone surrogates, which no database can store as UTF-8.

    Codecs a message may name (utf-7, unicode_escape) decode to them, and the parser keeps raw
    8-bit header bytes as them; one such message would otherwise fail its whole batch, again
    at every retry, and block its mailbox.
    """

    def fix(text: str) -> str:
        return text if text.isascii() else _ANY_SURROGATE.sub("\ufffd", text)

    return replace(
        mail,
        message_id=fix(mail.message_id) if mail.message_id else mail.message_id,
        subject=fix(mail.subject),
        from_addr=fix(mail.from_addr),
        to_addrs=fix(mail.to_addrs),
        cc_addrs=fix(mail.cc_addrs),
        headers={name: fix(value) for name, value in mail.headers.items()},
        body_text=fix(mail.body_text),
        attachments=tuple(
            Attachment(fix(a.filename) if a.filename else a.filename, fix(a.content_type), a.size)
            for a in mail.attachments
        ),
        defects=tuple(fix(d) for d in mail.defects),
    )


def _parse(raw: bytes) -> ParsedMail:
    msg = _message(raw)
    notes: list[str] = []
    envelope = _envelope(msg, notes)
    scan = _scan(msg, notes)
    body, was_html = _body(scan, notes)
    return replace(
        envelope,
        body_text=body,
        body_was_html=was_html,
        attachments=tuple(scan.attachments),
        has_calendar=scan.has_calendar,
        defects=_all_defects(scan.parts, notes),
        size=len(raw),
    )


def _message(raw: bytes) -> Message:
    try:
        tree = message_tree(raw)
    except Exception:  # whatever that was, the standard parser decides what to make of it
        tree = None
    return tree if tree is not None else BytesParser(policy=policy.compat32).parsebytes(raw)


def _headers_only(raw: object, exc: Exception) -> ParsedMail:
    data = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
    notes = [f"message could not be parsed ({_describe(exc)}); body skipped"]
    envelope = ParsedMail(None, "", "", "", "", None)
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(data, headersonly=True)
        envelope = _envelope(msg, notes)
    except Exception as second:
        notes.append(f"headers could not be parsed ({_describe(second)})")
    return replace(envelope, defects=tuple(notes), size=len(data))


# --- headers ---------------------------------------------------------------------------------


def _envelope(msg: Message, notes: list[str]) -> ParsedMail:
    """The message with its header fields filled in and an empty body."""
    raw = _raw_headers(msg)
    return ParsedMail(
        message_id=_message_id(_header(raw, "message-id", HEADER_CAP, notes)),
        subject=_header(raw, "subject", HEADER_CAP, notes),
        from_addr=_header(raw, "from", HEADER_CAP, notes),
        to_addrs=_header(raw, "to", ADDRESS_CAP, notes),
        cc_addrs=_header(raw, "cc", ADDRESS_CAP, notes),
        date=_date(_header(raw, "date", HEADER_CAP, notes)),
        headers={
            name: _header(raw, name, HEADER_CAP, notes) for name in KEPT_HEADERS if name in raw
        },
    )


def _raw_headers(msg: Message) -> dict[str, list[str]]:
    """Values as parsed: msg.get() would already have replaced raw 8-bit bytes with U+FFFD."""
    found: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        found.setdefault(str(name).strip().lower(), []).append(str(value))
    return found


def _header(raw: dict[str, list[str]], name: str, cap: int, notes: list[str]) -> str:
    """One header decoded to a single line; repeated address headers are joined."""
    values = raw.get(name, [])
    if name not in ("to", "cc"):
        values = values[:1]
    try:
        decoded = (_decode_header_value(value, cap, notes) for value in values)
        text = ", ".join(value for value in decoded if value)
    except Exception as exc:
        notes.append(f"header {name!r} unreadable ({_describe(exc)})")
        return ""
    if len(text) > cap:
        notes.append(f"header {name!r} cut to {cap} characters")
        text = text[:cap]
    return text


def _decode_header_value(value: str, cap: int, notes: list[str]) -> str:
    """A raw header value (RFC 2047 words, raw 8-bit bytes, folding) as one clean line."""
    # Encoded words never shrink text by more than a few times, so this keeps what is shown.
    text = _undo_surrogates(value[: cap * 8])
    if "=?" in text:
        text = _decode_words(text, notes)
    return _HEADER_BREAKS.sub(" ", text).strip()


def _undo_surrogates(text: str) -> str:
    """The parser keeps raw 8-bit header bytes as surrogates; read them as utf-8 or cp1252."""
    if not _SURROGATES.search(text):
        return text
    return _guess_decode(text.encode("utf-8", "surrogateescape"))


def _decode_words(text: str, notes: list[str]) -> str:
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return _decode_words_loosely(text, notes)


def _decode_words_loosely(text: str, notes: list[str]) -> str:
    try:
        pieces = decode_header(text)
    except Exception:
        return text
    decoded: list[str] = []
    for data, charset in pieces:
        if isinstance(data, str):
            decoded.append(data)
        elif charset is None:
            # decode_header turned the plain runs into bytes with this codec.
            decoded.append(data.decode("raw-unicode-escape", "replace"))
        else:
            decoded.append(_decode_bytes(data, charset, notes))
    return " ".join(decoded)


def _message_id(text: str) -> str | None:
    match = _MESSAGE_ID.search(text)
    if match is not None:
        token = match.group(0)
    elif text and " " not in text and "@" in text:
        token = f"<{text.strip('<>')}>"
    else:
        return None
    return token if len(token) <= _MESSAGE_ID_CAP else None


def _date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        parsed.astimezone(UTC)  # raises for an offset that pushes the date past year 9999
    except Exception:
        return None
    return parsed


# --- charsets --------------------------------------------------------------------------------


def _decode_bytes(data: bytes, charset: str | None, notes: list[str]) -> str:
    """Bytes in a declared charset to text; unknown or lying charsets fall back with a note."""
    codec = _codec(charset, notes)
    if codec is None:
        return _guess_decode(data)
    try:
        return data.decode(codec)
    except Exception:
        if charset:
            notes.append(f"text declared as {_short(charset)} is not; decoded as utf-8 or cp1252")
        return _guess_decode(data)


def _codec(charset: str | None, notes: list[str]) -> str | None:
    if not charset:
        return "utf-8"
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except Exception:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        notes.append(f"unknown charset {_short(charset)} decoded as utf-8 or cp1252")
        return None
    return info.name


def _guess_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _short(value: object) -> str:
    return repr(value)[:60]


# --- parts -----------------------------------------------------------------------------------


def _walk(msg: Message, notes: list[str]) -> Iterator[Message]:
    """Depth-first, in document order, without recursion: deep nesting cannot overflow."""
    stack = [msg]
    visited = 0
    while stack:
        if visited >= MAX_PARTS:
            notes.append(f"more than {MAX_PARTS} parts; the rest were skipped")
            return
        part = stack.pop()
        visited += 1
        yield part
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(c for c in reversed(children) if isinstance(c, Message))


def _scan(msg: Message, notes: list[str]) -> _Scan:
    scan = _Scan()
    for part in _walk(msg, notes):
        scan.parts.append(part)
        if part.is_multipart():
            continue
        try:
            _classify(part, scan, notes)
        except Exception as exc:
            notes.append(f"unreadable part ({_describe(exc)})")
    return scan


def _classify(part: Message, scan: _Scan, notes: list[str]) -> None:
    content_type = _content_type(part)
    if content_type in _CALENDAR_TYPES:
        scan.has_calendar = True
    filename = _filename(part, notes)
    if _is_attachment(part, content_type, filename):
        scan.attachments.append(Attachment(filename, content_type, _payload_size(part)))
    elif content_type == "text/plain" and scan.plain is None:
        scan.plain = part
    elif content_type == "text/html" and scan.html is None:
        scan.html = part


def _content_type(part: Message) -> str:
    content_type = part.get_content_type()[:NAME_CAP]
    # A multipart without a usable boundary is left as one block of text by the parser.
    return "text/plain" if content_type.startswith("multipart/") else content_type


def _filename(part: Message, notes: list[str]) -> str | None:
    name = _readable_params(part).get_filename()
    if not isinstance(name, str):
        return None
    return _decode_header_value(name, NAME_CAP, notes)[:NAME_CAP] or None


def _readable_params(part: Message) -> Message:
    """The part itself, or a stand-in whose raw 8-bit parameter bytes are already decoded."""
    raw = _raw_headers(part)
    wanted = [(name, raw[name][0]) for name in _PARAM_HEADERS if name in raw]
    if not any(_SURROGATES.search(value) for _, value in wanted):
        return part
    stand_in = Message()
    for name, value in wanted:
        stand_in[name] = _undo_surrogates(value)
    return stand_in


def _is_attachment(part: Message, content_type: str, filename: str | None) -> bool:
    if part.get_content_disposition() == "attachment" or filename is not None:
        return True
    return not content_type.startswith("text/")


def _payload_size(part: Message) -> int:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return len(payload)
    raw = part.get_payload()
    return len(raw) if isinstance(raw, str) else 0


# --- body ------------------------------------------------------------------------------------


def _body(scan: _Scan, notes: list[str]) -> tuple[str, bool]:
    text = _part_text(scan.plain, notes) if scan.plain is not None else ""
    if text.strip() or scan.html is None:
        return _clean_body(text), False
    source = _part_text(scan.html, notes)
    if len(source) > MAX_HTML_CHARS:
        notes.append(f"HTML body cut to {MAX_HTML_CHARS} characters before conversion")
        source = source[:MAX_HTML_CHARS]
    converted = _clean_body(html_to_text(source))
    return (converted, True) if converted.strip() else (_clean_body(text), False)


def _part_text(part: Message, notes: list[str]) -> str:
    try:
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return ""
        return _decode_bytes(payload, part.get_content_charset(), notes)
    except Exception as exc:
        notes.append(f"body part unreadable ({_describe(exc)})")
        return ""


def _clean_body(text: str) -> str:
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return text[:MAX_BODY_CHARS]


# --- defects ---------------------------------------------------------------------------------


def _all_defects(parts: list[Message], notes: list[str]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for part in parts:
        for defect in getattr(part, "defects", ()):
            found[_defect_text(defect)] = None
    for note in notes:
        found[note] = None
    return tuple(found)[:MAX_DEFECTS]


def _defect_text(defect: object) -> str:
    """'StartBoundaryNotFoundDefect("x")' becomes 'start boundary not found: x'."""
    if not isinstance(defect, MessageDefect):
        return _short(defect)
    name = type(defect).__name__.removesuffix("Defect")
    words = _CAMEL_WORD.sub(" ", name).lower()
    detail = _HEADER_BREAKS.sub(" ", str(defect)).strip()
    return f"{words}: {detail}"[:200] if detail else words


def _describe(exc: BaseException) -> str:
    detail = _HEADER_BREAKS.sub(" ", str(exc)).strip()[:120]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
