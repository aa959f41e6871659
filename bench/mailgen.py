"""Realistic mail for the benchmarks, the same bytes for the same seed.

Most messages are plain text of 2-8 KB; about a third are multipart/alternative with an HTML
part, one in ten is HTML only, and one in twenty carries a 50 KB attachment. Headers look like
delivered mail: Received lines, a Message-ID, a mailing list now and then, quoted-printable or
8-bit UTF-8 bodies, an ISO-8859-1 one here and there. Built by hand rather than with
`email.message`, which would take longer than the benchmark it feeds.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

_WORD_TEXT = (
    "the project meeting budget report quarter review please send update draft agenda team "
    "customer invoice contract deadline schedule call tomorrow friday monday week plan launch "
    "server release notes feedback question answer thanks regards approval design document "
    "numbers figures office travel hotel flight booking payment order shipment delivery "
    "support ticket issue incident outage database backup migration security access account "
    "password policy training workshop conference slides presentation minutes summary action "
    "item owner status risk change request estimate proposal offer price discount renewal "
    "we you they it is are was were will would could should can may might have has had "
    "and or but if when while because so that this these those with from into about over"
)
WORDS = tuple(_WORD_TEXT.split())
NON_ASCII = ("Grüße", "naïve", "café", "Müller", "déjà", "façade", "Åse", "Zürich", "über")
FIRST = ("Anna", "Ben", "Chloé", "David", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jonas")
LAST = ("Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ivanova", "Jung")
DOMAINS = ("example.com", "example.org", "corp.example", "mail.example.net", "lists.example")
SUBJECTS = (
    "Re: {w1} {w2} for {day}",
    "{W1} {w2}: please review",
    "Fwd: {w1} {w2}",
    "[{list}] {W1} {w2} {w3}",
    "Meeting about the {w1} on {day}",
    "Urgent: {w1} {w2} needed",
    "{W1} update",
    "Invoice {num} for {w1}",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
EPOCH = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def messages(count: int, seed: int = 1, prefix: str = "bench") -> Iterator[bytes]:
    """`count` messages; message i has Message-ID <prefix-i@...>."""
    rng = random.Random(seed)
    for i in range(count):
        yield message(rng, i, prefix)


def message(rng: random.Random, i: int, prefix: str = "bench") -> bytes:
    sender = _person(rng)
    head = [
        *_received(rng, i),
        f"Message-ID: <{prefix}-{i}@{rng.choice(DOMAINS)}>",
        f"Date: {format_datetime(EPOCH + timedelta(seconds=37 * i))}",
        f"From: {sender}",
        f"To: {_person(rng)}",
        "MIME-Version: 1.0",
        f"Subject: {_subject(rng, i)}",
    ]
    if rng.random() < 0.3:
        head.append(f"Cc: {_person(rng)}, {_person(rng)}")
    if rng.random() < 0.15:
        head += ["List-Id: <team.lists.example>", "List-Unsubscribe: <mailto:leave@example.org>"]
    if rng.random() < 0.4:
        head.append(f"In-Reply-To: <{prefix}-{max(0, i - 1)}@example.com>")
    text = _body(rng, rng.randint(2000, 8000), sender)
    kind = rng.random()
    attach = rng.random() < 0.05
    if kind < 0.1:
        parts = [_html_part(rng, text)]
    elif kind < 0.4:
        parts = [_alternative(rng, text)]
    else:
        parts = [_text_part(rng, text)]
    if attach:
        parts.append(_attachment(rng, i))
    if len(parts) == 1:
        head += parts[0][0]
        body = parts[0][1]
    else:
        boundary = f"mixed-{i}-{rng.getrandbits(32):08x}"
        head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        body = _multipart(boundary, parts)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _person(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return f'"{first} {last}" <{first.lower()}.{last.lower()}@{rng.choice(DOMAINS)}>'.replace(
        "é", "e"
    ).replace("í", "i")


def _received(rng: random.Random, i: int) -> list[str]:
    hops = []
    for hop in range(rng.randint(2, 4)):
        hops.append(
            f"Received: from relay{hop}.{rng.choice(DOMAINS)} (relay{hop} [192.0.2.{hop + 1}])"
            f"\r\n\tby mx.example.com with ESMTPS id {i:06d}{hop}{rng.getrandbits(24):06x}"
            f"\r\n\tfor <alice@example.com>; {format_datetime(EPOCH + timedelta(seconds=37 * i))}"
        )
    return hops


def _subject(rng: random.Random, i: int) -> str:
    w1, w2, w3 = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
    return rng.choice(SUBJECTS).format(
        w1=w1, w2=w2, w3=w3, W1=w1.capitalize(), day=rng.choice(DAYS), list="team", num=i
    )


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), rng.choice(NON_ASCII))
    if rng.random() < 0.15:
        words[0:0] = ["please"]
    end = "?" if rng.random() < 0.15 else "."
    return " ".join(words).capitalize() + end


def _body(rng: random.Random, size: int, sender: str) -> str:
    lines: list[str] = [f"Hello {rng.choice(FIRST)},", ""]
    length = 0
    while length < size:
        para = " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))
        wrapped = _wrap(para)
        lines += [*wrapped, ""]
        length += len(para) + 1
    if rng.random() < 0.4:
        lines += [f"On {rng.choice(DAYS)}, {sender} wrote:"]
        lines += ["> " + line for line in _wrap(_sentence(rng) + " " + _sentence(rng))]
        lines.append("")
    lines += ["-- ", f"{rng.choice(FIRST)} {rng.choice(LAST)}", "Example Corp, +1 555 0100"]
    return "\n".join(lines)


def _wrap(text: str, width: int = 72) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out


Part = tuple[list[str], bytes]


def _text_part(rng: random.Random, text: str) -> Part:
    crlf = text.replace("\n", "\r\n")
    choice = rng.random()
    if choice < 0.1:
        head = ['Content-Type: text/plain; charset="iso-8859-1"', "Content-Transfer-Encoding: 8bit"]
        return head, crlf.encode("latin-1", "replace")
    if choice < 0.3:
        head = ['Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: 8bit"]
        return head, crlf.encode()
    head = [
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    return head, _quoted_printable(crlf)


def _quoted_printable(text: str) -> bytes:
    import quopri

    return quopri.encodestring(text.encode()).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _html(text: str) -> str:
    paragraphs = "".join(
        f'<p style="font-family: Arial, sans-serif; margin: 0 0 12px">{p}</p>\n'
        for p in text.replace("&", "&amp;").replace("<", "&lt;").split("\n\n")
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>td{padding:4px}</style>'
        '</head><body><table width="100%"><tr><td>\n' + paragraphs + "</td></tr></table>"
        '<div class="footer"><a href="https://example.com/unsubscribe">Unsubscribe</a></div>'
        "</body></html>"
    )


def _html_part(rng: random.Random, text: str) -> Part:
    head = [
        'Content-Type: text/html; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    return head, _quoted_printable(_html(text).replace("\n", "\r\n"))


def _alternative(rng: random.Random, text: str) -> Part:
    boundary = f"alt-{rng.getrandbits(48):012x}"
    body = _multipart(boundary, [_text_part(rng, text), _html_part(rng, text)])
    return [f'Content-Type: multipart/alternative; boundary="{boundary}"'], body


def _attachment(rng: random.Random, i: int) -> Part:
    data = rng.randbytes(50 * 1024)
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    head = [
        f'Content-Type: application/pdf; name="report-{i}.pdf"',
        f'Content-Disposition: attachment; filename="report-{i}.pdf"',
        "Content-Transfer-Encoding: base64",
    ]
    return head, encoded


def _multipart(boundary: str, parts: list[Part]) -> bytes:
    out = [b"This is a multi-part message in MIME format.\r\n"]
    for head, body in parts:
        out.append(f"--{boundary}\r\n".encode() + "\r\n".join(head).encode() + b"\r\n\r\n")
        out.append(body + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)
