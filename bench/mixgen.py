"""A realistic mix of mail for P10, the same bytes for the same seed.

Of every 100 messages, about:

- 18 newsletters: a `List-Id` and `List-Unsubscribe`, HTML (alone or beside a text part),
  3-12 KB of text;
- 17 notifications: short machine mail, from no-reply or notification senders, or with
  `Auto-Submitted: auto-generated` (half of them also carry a `List-Unsubscribe`);
- 20 replies in plain text: new text above one to three levels of quoted history (`>`, an
  "On ... wrote:" line in one of four languages) and a signature;
- 20 replies in HTML only, in the markup of Gmail, Thunderbird, Apple Mail, Outlook (desktop
  and web), Yahoo or a bare blockquote, the history holding an older quote now and then;
- 15 new messages from people, without history;
- 10 repeats: an earlier message, byte for byte, delivered to a second mailbox (the same
  notification to two addresses, a message to two lists).

Every message's Date is its own (message i is sent at EPOCH + 37 i seconds; a repeat keeps the
date of the message it repeats), which tells the model server's request log which message a
request was for. A reply's new text names `ticket N<i>` and its quoted history `order H<i>`,
so the log also tells whether the history reached the model.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from bench.mailgen import (
    DAYS,
    DOMAINS,
    EPOCH,
    FIRST,
    LAST,
    WORDS,
    _html,
    _quoted_printable,
    _sentence,
    _wrap,
)

KINDS = ("newsletter", "notification", "plain_reply", "html_reply", "new", "repeat")
WEIGHTS = (18, 17, 20, 20, 15, 10)
SKIPPED_KINDS = ("newsletter", "notification")  # with ai.skip = ["bulk", "automated"]
HTML_SHAPES = ("gmail", "thunderbird", "apple", "outlook", "outlook_web", "yahoo", "blockquote")
STEP_S = 37


@dataclass(frozen=True)
class Mail:
    """One generated message: its bytes, its kind, and the message it repeats (or itself)."""

    index: int
    kind: str  # a kind of KINDS but "repeat": a repeat has the kind of what it repeats
    raw: bytes
    repeat_of: int | None = None
    shape: str = ""  # an HTML reply's client markup

    @property
    def original(self) -> int:
        return self.index if self.repeat_of is None else self.repeat_of


def mix(count: int, seed: int = 10) -> list[Mail]:
    """`count` messages of the mix, in the order they arrive."""
    rng = random.Random(seed)
    made: list[Mail] = []
    for i in range(count):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        if kind == "repeat" and made:
            first = made[rng.randrange(len(made))]
            source = made[first.original]
            made.append(Mail(i, source.kind, source.raw, source.index, source.shape))
            continue
        if kind == "repeat":
            kind = "new"
        made.append(_make(rng, i, kind))
    return made


def index_of(date_header: str) -> int | None:
    """The message a request was for, from the Date the prompt shows; None if not ours."""
    try:
        when = parsedate_to_datetime(date_header.strip())
    except (TypeError, ValueError, IndexError):
        return None
    seconds = (when - EPOCH).total_seconds()
    return int(seconds) // STEP_S if seconds >= 0 and seconds % STEP_S == 0 else None


def new_marker(i: int) -> str:
    return f"N{i:05d}"


def history_marker(i: int) -> str:
    return f"H{i:05d}"


# -- the kinds -----------------------------------------------------------------------------------


def _make(rng: random.Random, i: int, kind: str) -> Mail:
    if kind == "newsletter":
        return Mail(i, kind, _newsletter(rng, i))
    if kind == "notification":
        return Mail(i, kind, _notification(rng, i))
    if kind == "plain_reply":
        return Mail(i, kind, _plain_reply(rng, i))
    if kind == "html_reply":
        shape = rng.choice(HTML_SHAPES)
        return Mail(i, kind, _html_reply(rng, i, shape), shape=shape)
    return Mail(i, kind, _new_mail(rng, i))


def _date(i: int) -> datetime:
    return EPOCH + timedelta(seconds=STEP_S * i)


def _head(i: int, sender: str, subject: str, extra: list[str]) -> list[str]:
    return [
        f"Received: from mx{i % 3}.example.net by mx.example.com; {format_datetime(_date(i))}",
        f"Message-ID: <mix-{i}@{DOMAINS[i % len(DOMAINS)]}>",
        f"Date: {format_datetime(_date(i))}",
        f"From: {sender}",
        "To: Robin Hansen <robin@example.com>",
        f"Subject: {subject}",
        "MIME-Version: 1.0",
        *extra,
    ]


def _message(head: list[str], content_type: str, body: str) -> bytes:
    crlf = body.replace("\r\n", "\n").replace("\n", "\r\n")
    head = [
        *head,
        f'Content-Type: {content_type}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + _quoted_printable(crlf)


def _alternative(head: list[str], text: str, html: str, boundary: str) -> bytes:
    parts = []
    for content_type, body in (("text/plain", text), ("text/html", html)):
        crlf = body.replace("\n", "\r\n")
        parts.append(
            f'--{boundary}\r\nContent-Type: {content_type}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            + _quoted_printable(crlf)
            + b"\r\n"
        )
    head = [*head, f'Content-Type: multipart/alternative; boundary="{boundary}"']
    return (
        ("\r\n".join(head) + "\r\n\r\n").encode() + b"".join(parts) + f"--{boundary}--\r\n".encode()
    )


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    address = f"{first.lower()}.{last.lower()}@{rng.choice(DOMAINS)}"
    return f"{first} {last}".replace("é", "e"), address.replace("é", "e").replace("í", "i")


def _paragraphs(rng: random.Random, size: int) -> list[str]:
    paragraphs, length = [], 0
    while length < size:
        paragraph = " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
        paragraphs.append(paragraph)
        length += len(paragraph)
    return paragraphs


def _newsletter(rng: random.Random, i: int) -> bytes:
    brand = rng.choice(("Example News", "Cloud Weekly", "The Shop", "Dev Digest", "Travel Deals"))
    sender = f"{brand} <news@{rng.choice(DOMAINS)}>"
    subject = f"{brand}: {rng.choice(WORDS)} {rng.choice(WORDS)} and more this week"
    head = _head(
        i,
        sender,
        subject,
        [
            f"List-Id: <weekly.{brand.lower().replace(' ', '-')}.example>",
            "List-Unsubscribe: <https://example.com/unsubscribe?u=1>, <mailto:leave@example.com>",
            "Precedence: bulk",
        ],
    )
    text = "\n\n".join(_paragraphs(rng, rng.randint(3000, 12000)))
    if rng.random() < 0.5:
        return _message(head, "text/html", _html(text))
    return _alternative(head, text, _html(text), f"news-{i}")


NOTIFICATIONS = (
    ("GitHub <notifications@github.example>", "[team/app] Issue #{n}: {w} {w2} fails", False),
    ("Shop <no-reply@shop.example>", "Your order {n} has shipped", False),
    ("Calendar <calendar-noreply@calendar.example>", "Reminder: {W} review at 10:00", False),
    ("Monitoring <alerts@monitor.example>", "[FIRING] {W} {w2} on server {n}", True),
    ("Bank <donotreply@bank.example>", "Your statement for {w} is ready", False),
    ("CI <builds@ci.example>", "Build {n} passed on main", True),
)


def _notification(rng: random.Random, i: int) -> bytes:
    sender, subject, auto = rng.choice(NOTIFICATIONS)
    word, word2 = rng.choice(WORDS), rng.choice(WORDS)
    subject = subject.format(n=rng.randint(100, 9999), w=word, w2=word2, W=word.capitalize())
    extra = ["Auto-Submitted: auto-generated"] if auto else []
    if rng.random() < 0.5:
        extra.append("List-Unsubscribe: <https://example.com/settings/notifications>")
    lines = _wrap(" ".join(_sentence(rng) for _ in range(rng.randint(2, 8))))
    footer = [
        "",
        "--",
        "You are receiving this because of your account settings.",
        "Manage notifications: https://example.com/settings/notifications",
    ]
    return _message(_head(i, sender, subject, extra), "text/plain", "\n".join(lines + footer))


def _attribution(rng: random.Random, name: str, address: str, when: datetime) -> str:
    """An "On ... wrote:" line in English (most), German, French or Spanish."""
    day = rng.choice(DAYS)
    language = rng.choices(("en", "de", "fr", "es"), (7, 1, 1, 1))[0]
    if language == "de":
        return f"Am {when:%d.%m.%Y} um {when:%H:%M} schrieb {name} <{address}>:"
    if language == "fr":
        return f"Le {when:%d/%m/%Y} à {when:%H:%M}, {name} <{address}> a écrit :"
    if language == "es":
        return f"El {when:%d/%m/%Y} a las {when:%H:%M}, {name} (<{address}>) escribió:"
    return f"On {day}, {when:%b %d, %Y} at {when:%H:%M}, {name} <{address}> wrote:"


def _history(rng: random.Random, i: int) -> list[tuple[str, str, str, list[str]]]:
    """The quoted earlier messages, newest first: (name, address, attribution, paragraphs)."""
    levels = []
    for level in range(rng.choices((1, 2, 3), (5, 3, 2))[0]):
        name, address = _person(rng)
        when = _date(i) - timedelta(hours=rng.randint(1, 48) * (level + 1))
        paragraphs = _paragraphs(rng, rng.randint(600, 2000))
        if level == 0:
            paragraphs[0] = f"Can we settle order {history_marker(i)} first? " + paragraphs[0]
        levels.append((name, address, _attribution(rng, name, address, when), paragraphs))
    return levels


def _new_text(rng: random.Random, i: int) -> list[str]:
    paragraphs = _paragraphs(rng, rng.randint(200, 1500))
    paragraphs[0] = f"About ticket {new_marker(i)}: " + paragraphs[0]
    return paragraphs


def _signature(rng: random.Random, name: str) -> list[str]:
    return ["-- ", name, f"{rng.choice(LAST)} & Partners, +1 555 0{rng.randint(100, 199)}"]


def _plain_reply(rng: random.Random, i: int) -> bytes:
    name, address = _person(rng)
    lines = [f"Hi {rng.choice(FIRST)},", ""]
    for paragraph in _new_text(rng, i):
        lines += [*_wrap(paragraph), ""]
    lines += [*_signature(rng, name), ""]
    for level, (_, _, attribution, paragraphs) in enumerate(_history(rng, i)):
        lines.append("> " * level + attribution)
        depth = level + 1
        for paragraph in paragraphs:
            lines += ["> " * depth + line for line in _wrap(paragraph, 72 - 2 * depth)]
            lines.append("> " * depth)
    subject = f"Re: {rng.choice(WORDS)} {rng.choice(WORDS)} for {rng.choice(DAYS)}"
    head = _head(i, f"{name} <{address}>", subject, [f"In-Reply-To: <old-{i}@example.com>"])
    return _message(head, "text/plain", "\n".join(lines))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _html_paragraphs(paragraphs: list[str]) -> str:
    return "".join(f"<div>{_esc(p)}</div><div><br></div>" for p in paragraphs)


GMAIL_QUOTE = (
    'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"'
)


def _quoted_html(shape: str, history: list[tuple[str, str, str, list[str]]]) -> str:
    """The history in the client's markup, the older levels nested in the newer."""
    inner = ""
    for name, address, attribution, paragraphs in reversed(history):
        old = _html_paragraphs(paragraphs) + inner
        inner = _quote(shape, name, address, _esc(attribution), old)
    return inner


def _quote(shape: str, name: str, address: str, attribution: str, old: str) -> str:
    if shape == "gmail":
        return (
            '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
            f'{attribution}<br></div><blockquote class="gmail_quote" {GMAIL_QUOTE}>'
            f"{old}</blockquote></div>"
        )
    if shape == "thunderbird":
        return (
            f'<div class="moz-cite-prefix">{attribution}<br></div>'
            f'<blockquote type="cite" cite="mid:old@example.com">{old}</blockquote>'
        )
    if shape == "apple":
        return (
            f'<div><br><blockquote type="cite"><div>{attribution}</div>'
            f'<br class="Apple-interchange-newline"><div>{old}</div></blockquote></div>'
        )
    block = (
        f"<b>From:</b> {_esc(name)} &lt;{address}&gt;<br><b>Sent:</b> Monday, 2 November 2026 "
        "09:15<br><b>To:</b> Robin Hansen &lt;robin@example.com&gt;<br><b>Subject:</b> Plan"
    )
    if shape == "outlook":
        return (
            '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm'
            f' 0cm"><p class="MsoNormal">{block}</p></div></div>{old}'
        )
    if shape == "outlook_web":
        return (
            '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
            f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif">{block}'
            f"</font><div>&nbsp;</div></div><div>{old}</div>"
        )
    if shape == "yahoo":
        return (
            '<div id="yahoo_quoted_1" class="yahoo_quoted"><div style="font-size:13px;">'
            f"<div>{attribution}</div><div><br></div><div>{old}</div></div></div>"
        )
    return f"<blockquote>{old}</blockquote>"  # a bare blockquote, no attribution


def _html_reply(rng: random.Random, i: int, shape: str) -> bytes:
    name, address = _person(rng)
    new = _html_paragraphs(_new_text(rng, i))
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
        f'<body><div dir="ltr">{new}<div>{_esc(name)}</div></div>'
        f"{_quoted_html(shape, _history(rng, i))}</body></html>"
    )
    subject = f"Re: {rng.choice(WORDS)} {rng.choice(WORDS)}"
    head = _head(i, f"{name} <{address}>", subject, [f"In-Reply-To: <old-{i}@example.com>"])
    return _message(head, "text/html", html)


def _new_mail(rng: random.Random, i: int) -> bytes:
    name, address = _person(rng)
    paragraphs = _paragraphs(rng, rng.randint(500, 4000))
    text = "\n\n".join(
        [f"Hello {rng.choice(FIRST)},", *paragraphs, "\n".join(_signature(rng, name))]
    )
    subject = f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} for {rng.choice(DAYS)}"
    head = _head(i, f"{name} <{address}>", subject, [])
    if rng.random() < 0.3:
        return _alternative(head, text, _html(text), f"new-{i}")
    return _message(head, "text/plain", text)


def counts(mails: list[Mail]) -> dict[str, int]:
    """How many of each kind arrived (repeats counted apart)."""
    found = dict.fromkeys(KINDS, 0)
    for mail in mails:
        found["repeat" if mail.repeat_of is not None else mail.kind] += 1
    return found


def iter_raw(mails: list[Mail]) -> Iterator[bytes]:
    return (mail.raw for mail in mails)
