"""Hostile mail: generated messages that have broken mail software, plus CPython's test messages.

Each generator returns raw bytes as they would sit in a mailbox. Sizes are what the scenario of
the issue names: a 10 MB attachment, 1,000 parts, nesting 100 deep, a 200 KB header line.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from pathlib import Path

CPYTHON_DIR = Path(__file__).resolve().parent.parent / "data" / "cpython_email"
HEAD = b"From: Mallory <mallory@example.com>\r\nTo: robin@example.com\r\n"


def _message(subject: bytes, body: bytes, *headers: bytes) -> bytes:
    lines = [HEAD + b"Subject: " + subject, *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _multipart(parts: list[bytes], boundary: bytes = b"BOUND") -> tuple[bytes, bytes]:
    """The Content-Type header and the body of a multipart/mixed message."""
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    header = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"'
    return header, body + b"--" + boundary + b"--\r\n"


def ten_mb_attachment() -> bytes:
    data = base64.encodebytes(random.Random(10).randbytes(10 * 1024 * 1024))
    attachment = (
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n\r\n' + data
    )
    header, body = _multipart([b"Content-Type: text/plain\r\n\r\nPlease see the file.", attachment])
    return _message(b"A big file", body, b"MIME-Version: 1.0", header)


def thousand_parts() -> bytes:
    parts = [b"Content-Type: text/plain\r\n\r\nThe first part."]
    parts += [
        b"Content-Type: image/png\r\nContent-Disposition: attachment; filename=f%d.png\r\n\r\nx" % i
        for i in range(999)
    ]
    header, body = _multipart(parts)
    return _message(b"Many parts", body, b"MIME-Version: 1.0", header)


def nested(depth: int) -> bytes:
    head, tail = b"", b""
    for level in range(depth):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        tail = b"\r\n--b%d--\r\n" % level + tail
    body = head + b"Content-Type: text/plain\r\n\r\nhello from the bottom" + tail
    return HEAD + b"Subject: nested %d deep\r\nMIME-Version: 1.0\r\n" % depth + body


def charset_body(charset: bytes, body: bytes) -> bytes:
    return _message(b"Declared " + charset, body, b"Content-Type: text/plain; charset=" + charset)


def nul_bytes() -> bytes:
    return _message(b"Nul\x00in\x00subject", b"body\x00with\x00nuls\r\n", b"X-Nul: a\x00b")


def long_header_line() -> bytes:
    return _message(b"x" * 200_000, b"short body", b"X-Long: " + b"y" * 200_000)


def header_injection() -> list[bytes]:
    return [
        # An encoded CR LF that would start a new header if decoded into one line.
        _message(b"=?utf-8?q?Hello=0D=0ABcc:_victim@example.com?=", b"injected?"),
        _message(b"=?utf-8?b?" + base64.b64encode(b"Hi\r\nX-Evil: 1") + b"?=", b"b64 CRLF"),
        # A bare CR and a bare LF inside a header value.
        HEAD + b"Subject: one\rBcc: victim@example.com\r\n\r\nbare CR",
        HEAD + b"Subject: two\nBcc: victim@example.com\n\nbare LF",
        # An address header that smuggles a second address line.
        _message(b"addr", b"x", b"Reply-To: =?utf-8?q?a@example.com=0ABcc:_b@example.com?="),
    ]


def non_utf8_subjects() -> list[bytes]:
    return [
        _message(b"Caf\xe9 cr\xe8me", b"latin-1 subject"),
        _message("予定の確認".encode("shift_jis"), b"Shift-JIS subject"),
        _message(b"\xff\xfe\xfd broken utf-8 \xc3", b"invalid utf-8"),
        _message(b"=?x-unknown-cs?q?caf=E9?= and =?utf-8?b?!!notbase64?=", b"bad words"),
        # Encoded words that decode to lone surrogates, which no database can store.
        _message(b"=?utf-7?q?+2AA-?= and =?unicode_escape?q?=5Cud800?=", b"surrogates"),
    ]


def charsets() -> list[bytes]:
    return [
        charset_body(b"x-no-such-charset", b"caf\xe9 \x80\x81\x82"),
        charset_body(b"utf-8", b"caf\xe9 is latin-1, not utf-8"),  # a lying charset
        charset_body(b"us-ascii", "naïve déjà vu".encode()),  # lying too
        charset_body(b"base64", b"a codec that is not a text codec"),
        charset_body(b'"utf-8', b"unbalanced quote"),
        charset_body(b"utf-7", b"+2AA- a lone surrogate"),
        charset_body(b"unicode_escape", b"\\ud800 and \\x00 escaped"),
        charset_body(b"utf-16", b"\x00\xd8 odd bytes"),
    ]


def odd_shapes() -> list[bytes]:
    header, body = _multipart([b"Content-Type: text/plain\r\n\r\npart"], b"")
    return [
        b"",
        b"\r\n\r\n",
        b"no headers at all, only a line of text\r\n",
        random.Random(3).randbytes(64 * 1024),
        HEAD + b"Subject: no boundary\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nbody",
        _message(b"empty boundary", body, header),
        HEAD + b"Subject: endless header" + b" folded\r\n" * 5000 + b"\r\nbody",
        _message(
            b"html", b"<html><script>x()</script><p>Hello &amp; <b>bye", b"Content-Type: text/html"
        ),
        # Raw 8-bit bytes in a part's Content-Type, which the parser keeps undecoded.
        _message(
            b"8-bit type",
            _multipart([b"Content-Type: image/p\xffng\r\n\r\nx"])[1],
            _multipart([])[0],
        ),
    ]


GENERATED: dict[str, Callable[[], bytes | list[bytes]]] = {
    "ten_mb_attachment": ten_mb_attachment,
    "thousand_parts": thousand_parts,
    "nested_100": lambda: nested(100),
    "nested_2000": lambda: nested(2000),
    "nul_bytes": nul_bytes,
    "long_header_line": long_header_line,
    "header_injection": header_injection,
    "non_utf8_subjects": non_utf8_subjects,
    "charsets": charsets,
    "odd_shapes": odd_shapes,
}


def hostile_messages() -> list[bytes]:
    """Every generated message, then CPython's 48 test messages."""
    found: list[bytes] = []
    for make in GENERATED.values():
        made = make()
        found += made if isinstance(made, list) else [made]
    found += [path.read_bytes() for path in sorted(CPYTHON_DIR.glob("msg_*.txt"))]
    return found
