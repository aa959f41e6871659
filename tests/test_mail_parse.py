"""parse_message: sensible fields for real mail, and no exception for any bytes at all."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muninmaild.mail.headers import KEPT_HEADERS
from muninmaild.mail.parse import HEADER_CAP, MAX_BODY_CHARS, MAX_DEFECTS, MAX_PARTS, parse_message
from muninmaild.records import Attachment, ParsedMail

CPYTHON_DIR = Path(__file__).parent / "data" / "cpython_email"
CPYTHON_MESSAGES = sorted(CPYTHON_DIR.glob("msg_*.txt"))


def mail(*headers: str, body: bytes | str = b"body\r\n") -> bytes:
    """A raw message from header lines and a body, CRLF line ends."""
    raw_body = body.encode("utf-8") if isinstance(body, str) else body
    return "\r\n".join(headers).encode("utf-8") + b"\r\n\r\n" + raw_body


def multipart(*parts: bytes, subtype: str = "mixed", boundary: str = "BOUND") -> bytes:
    """A multipart body; each part is its own header lines, a blank line and content."""
    head = f"Content-Type: multipart/{subtype}; boundary={boundary}\r\n\r\n".encode()
    sep = f"--{boundary}\r\n".encode()
    body = b"".join(sep + part + b"\r\n" for part in parts)
    return head + body + f"--{boundary}--\r\n".encode()


def part(content_type: str, content: bytes, *extra: str) -> bytes:
    lines = [f"Content-Type: {content_type}", *extra]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + content


def nested(depth: int) -> bytes:
    head = b"Subject: deep\r\n"
    tail = b""
    for level in range(depth):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        tail = b"\r\n--b%d--\r\n" % level + tail
    return head + b"Content-Type: text/plain\r\n\r\nhello from the bottom" + tail


def assert_well_formed(parsed: ParsedMail, raw: bytes) -> None:
    for value in (parsed.subject, parsed.from_addr, parsed.to_addrs, parsed.cc_addrs):
        assert isinstance(value, str)
        assert "\r" not in value
        assert "\n" not in value
    assert parsed.message_id is None or parsed.message_id.startswith("<")
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert isinstance(parsed.body_text, str)
    assert "\x00" not in parsed.body_text
    assert all(isinstance(d, str) for d in parsed.defects)
    assert all(isinstance(v, str) and "\n" not in v for v in parsed.headers.values())
    assert set(parsed.headers) <= set(KEPT_HEADERS)
    assert parsed.size == len(raw)
    # Every text field can be stored: no lone surrogates, which UTF-8 cannot encode.
    texts = [parsed.subject, parsed.from_addr, parsed.body_text, *parsed.headers.values()]
    texts += [parsed.message_id or "", *parsed.defects, parsed.to_addrs, parsed.cc_addrs]
    texts += [f"{a.filename or ''}{a.content_type}" for a in parsed.attachments]
    for text in texts:
        text.encode("utf-8")


# --- CPython's own test messages --------------------------------------------------------------


def test_cpython_test_messages_are_all_present() -> None:
    assert len(CPYTHON_MESSAGES) == 48


@pytest.mark.parametrize("path", CPYTHON_MESSAGES, ids=lambda p: p.name)
def test_every_cpython_email_test_message_parses_into_well_formed_fields(path: Path) -> None:
    raw = path.read_bytes()
    assert_well_formed(parse_message(raw), raw)


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("msg_01.txt", "subject", "This is a test message"),
        ("msg_01.txt", "message_id", "<15090.61304.110929.45684@aaa.zzz.org>"),
        ("msg_01.txt", "date", datetime(2001, 5, 4, 18, 5, 44, tzinfo=UTC)),
        ("msg_02.txt", "from_addr", "ppp-request@zzz.org"),
        ("msg_07.txt", "from_addr", "Barry <barry@digicool.com>"),
        ("msg_07.txt", "attachments", (Attachment("dingusfish.gif", "image/gif", 3512),)),
        ("msg_08.txt", "body_text", ""),
        ("msg_10.txt", "body_text", "This is a 7bit encoded message.\n"),
        ("msg_11.txt", "subject", "The enclosing message"),
        ("msg_22.txt", "cc_addrs", ""),
        ("msg_26.txt", "attachments", (Attachment("clock.bmp", "application/riscos", 630),)),
        ("msg_45.txt", "body_text", "This is the signed contents.\n"),
    ],
)
def test_cpython_test_messages_yield_the_expected_field_values(
    name: str, field: str, expected: object
) -> None:
    parsed = parse_message((CPYTHON_DIR / name).read_bytes())
    assert getattr(parsed, field) == expected


@pytest.mark.parametrize(
    ("name", "body_start"),
    [
        ("msg_01.txt", "\nHi,\n\nDo you like this message?"),
        ("msg_07.txt", "Hi there,"),
        ("msg_16.txt", "This report relates to a message you sent"),
        ("msg_43.txt", "BANNED FILENAME ALERT"),
    ],
)
def test_cpython_test_messages_yield_the_readable_body(name: str, body_start: str) -> None:
    assert parse_message((CPYTHON_DIR / name).read_bytes()).body_text.startswith(body_start)


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        ("msg_15.txt", "start boundary not found"),
        ("msg_25.txt", "no boundary in multipart"),
        ("msg_35.txt", "missing header body separator"),
        ("msg_39.txt", "invalid base64 padding"),
    ],
)
def test_parser_defects_are_reported_as_readable_words(name: str, defect: str) -> None:
    assert defect in parse_message((CPYTHON_DIR / name).read_bytes()).defects


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Subject: =?iso-8859-1?q?caf=E9?=", "café"),
        ("Subject: Re: =?utf-8?b?w6ljaGFuZ2U=?= now", "Re: échange now"),
        ("Subject: =?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("Subject: folded\r\n  over\r\n\tthree lines", "folded over three lines"),
        ("Subject:    padded   ", "padded"),
        ("Subject: =?utf-8?q?Hello=0D=0ABcc:_evil@example.org?=", "Hello Bcc: evil@example.org"),
        ("Subject: =?utf-8?q?nul=00byte?=", "nul byte"),
        ("Subject: =?utf-8?q?line=E2=80=A8separator?=", "line separator"),
        ("Subject: =?utf-8?b?w6k?= unpadded", "é unpadded"),
        ("Subject: =?utf-8?b?/w==?= lying word", "ÿ lying word"),
    ],
)
def test_subject_is_decoded_to_a_single_clean_line(header: str, expected: str) -> None:
    assert parse_message(mail(header)).subject == expected


def test_header_injection_through_an_encoded_crlf_comes_out_single_line() -> None:
    raw = mail("Subject: =?utf-8?b?" + base64.b64encode(b"hi\r\nX-Evil: 1").decode() + "?=")
    parsed = parse_message(raw)
    assert parsed.subject == "hi X-Evil: 1"
    assert "x-evil" not in parsed.headers


@pytest.mark.parametrize(
    ("raw_subject", "expected"),
    [
        ("Grüße aus Köln".encode(), "Grüße aus Köln"),
        ("Grüße aus Köln".encode("latin-1"), "Grüße aus Köln"),
        ("“quoted” \u2013 dash".encode("cp1252"), "“quoted” \u2013 dash"),
        (b"bad \x81 byte", "bad \ufffd byte"),
    ],
)
def test_non_utf8_raw_subject_is_decoded_as_utf8_then_cp1252(
    raw_subject: bytes, expected: str
) -> None:
    raw = b"Subject: " + raw_subject + b"\r\n\r\nbody"
    assert parse_message(raw).subject == expected


def test_raw_8bit_and_encoded_words_mix_in_one_header() -> None:
    raw = "Subject: Grüße =?utf-8?q?caf=C3=A9?=\r\n\r\nbody".encode()
    assert parse_message(raw).subject == "Grüße café"


def test_unknown_charset_in_an_encoded_word_is_decoded_with_replacement_and_noted() -> None:
    parsed = parse_message(mail("Subject: =?x-foo?q?caf=C3=A9?= and =?x-foo?q?caf=E9?="))
    assert parsed.subject == "café and café"
    assert "unknown charset 'x-foo' decoded as utf-8 or cp1252" in parsed.defects


def test_address_headers_are_decoded_and_repeats_joined() -> None:
    parsed = parse_message(
        mail(
            "From: =?utf-8?q?Ren=C3=A9e?= <renee@example.org>",
            "To: a@example.org",
            "To: b@example.org",
            "Cc: c@example.org,\r\n d@example.org",
        )
    )
    assert parsed.from_addr == "Renée <renee@example.org>"
    assert parsed.to_addrs == "a@example.org, b@example.org"
    assert parsed.cc_addrs == "c@example.org, d@example.org"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@example.org>", "<abc@example.org>"),
        ("  <abc@example.org> (added by relay)", "<abc@example.org>"),
        ("<first@example.org> <second@example.org>", "<first@example.org>"),
        ("abc@example.org", "<abc@example.org>"),
        ("no id here", None),
        ("", None),
        ("<" + "a" * 2000 + "@example.org>", None),
    ],
)
def test_message_id_is_normalised_to_its_angle_bracket_token(
    value: str, expected: str | None
) -> None:
    assert parse_message(mail(f"Message-ID: {value}")).message_id == expected


def test_missing_message_id_is_none() -> None:
    assert parse_message(mail("Subject: x")).message_id is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 03 Mar 2026 10:00:00 +0100", datetime(2026, 3, 3, 9, 0, tzinfo=UTC)),
        ("Tue, 03 Mar 2026 10:00:00 -0000", datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        ("3 Mar 2026 10:00:00 GMT", datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        ("yesterday-ish", None),
        ("Tue, 99 Mar 2026 10:00:00 +0000", None),
        ("Fri, 31 Dec 9999 23:30:00 -0100", None),
        ("", None),
    ],
)
def test_date_is_timezone_aware_or_none(value: str, expected: datetime | None) -> None:
    assert parse_message(mail(f"Date: {value}")).date == expected


def test_date_keeps_the_senders_offset() -> None:
    parsed = parse_message(mail("Date: Tue, 03 Mar 2026 10:00:00 +0530"))
    assert parsed.date is not None
    assert parsed.date.utcoffset() == timedelta(hours=5, minutes=30)
    assert parsed.date.tzinfo == timezone(timedelta(hours=5, minutes=30))


def test_triage_headers_are_kept_decoded_under_lower_case_names() -> None:
    parsed = parse_message(
        mail(
            "List-Unsubscribe: <mailto:leave@example.org>",
            "LIST-ID: News <news.example.org>",
            "Precedence: bulk",
            "Auto-Submitted: auto-generated",
            "X-Priority: 1",
            "In-Reply-To: <parent@example.org>",
            "Reply-To: =?utf-8?q?B=C3=BCro?= <office@example.org>",
            "X-Unrelated: dropped",
        )
    )
    assert parsed.headers == {
        "list-unsubscribe": "<mailto:leave@example.org>",
        "list-id": "News <news.example.org>",
        "precedence": "bulk",
        "auto-submitted": "auto-generated",
        "x-priority": "1",
        "in-reply-to": "<parent@example.org>",
        "reply-to": "Büro <office@example.org>",
    }


def test_kept_headers_are_capped_and_the_cut_is_noted() -> None:
    parsed = parse_message(mail("References: " + "<r@example.org> " * 1000))
    assert len(parsed.headers["references"]) == HEADER_CAP
    assert f"header 'references' cut to {HEADER_CAP} characters" in parsed.defects


# --- bodies and charsets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "payload", "expected"),
    [
        ("text/plain; charset=utf-8", "café".encode(), "café"),
        ("text/plain; charset=koi8-r", "привет".encode("koi8-r"), "привет"),
        ("text/plain; charset=gb2312", "邮件".encode("gb18030"), "邮件"),
        ("text/plain; charset=iso-8859-1", "“smart”".encode("cp1252"), "“smart”"),
        ('text/plain; charset="UTF-8"', "quoted charset é".encode(), "quoted charset é"),
        ("text/plain", "no charset é".encode(), "no charset é"),
        ("text/plain", "no charset, latin-1 é".encode("latin-1"), "no charset, latin-1 é"),
        ("text/plain; charset=us-ascii", "8-bit in ascii é".encode(), "8-bit in ascii é"),
    ],
)
def test_body_is_decoded_from_its_declared_charset(
    content_type: str, payload: bytes, expected: str
) -> None:
    parsed = parse_message(mail(f"Content-Type: {content_type}", body=payload))
    assert parsed.body_text == expected
    assert parsed.defects == ()


def test_lying_charset_falls_back_to_cp1252_and_is_noted() -> None:
    raw = mail("Content-Type: text/plain; charset=utf-8", body="café crème".encode("latin-1"))
    parsed = parse_message(raw)
    assert parsed.body_text == "café crème"
    assert "text declared as 'utf-8' is not; decoded as utf-8 or cp1252" in parsed.defects


@pytest.mark.parametrize("charset", ["x-foo", "base64", "zlib", "rot13", "x\x00y", "x" * 500])
def test_unknown_charset_is_decoded_with_replacement_and_noted(charset: str) -> None:
    raw = mail("Content-Type: text/plain; charset=x", body=b"caf\xc3\xa9 ok \x81")
    raw = raw.replace(b"charset=x", b'charset="' + charset.encode() + b'"')
    parsed = parse_message(raw)
    assert parsed.body_text == "caf\u00c3\u00a9 ok \ufffd"
    assert any(d.startswith("unknown charset") for d in parsed.defects)


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("base64", base64.encodebytes("Grüße\n".encode())),
        ("quoted-printable", b"Gr=C3=BC=C3=9Fe=\r\n\r\n"),
        ("8bit", "Grüße\n".encode()),
        ("x-made-up", "Grüße\n".encode()),
    ],
)
def test_transfer_encodings_are_undone(encoding: str, payload: bytes) -> None:
    raw = mail(
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Transfer-Encoding: {encoding}",
        body=payload,
    )
    assert parse_message(raw).body_text.startswith("Grüße")


def test_codecs_that_decode_to_lone_surrogates_give_replacement_characters() -> None:
    raw = multipart(
        part("text/plain; charset=utf-7", b"a +2AA- b"),
        b"Content-Type: image/p\xffng\r\n\r\nx",  # a raw 8-bit byte in the header
    )
    raw = b"Subject: =?utf-7?q?+2AA-?= =?unicode_escape?q?=5Cud800?=\r\n" + raw
    parsed = parse_message(raw)
    assert parsed.subject == "\ufffd\ufffd"  # adjacent encoded words join without a space
    assert parsed.body_text == "a \ufffd b"
    assert parsed.attachments == (Attachment(None, "image/p\ufffdng", 1),)


def test_nul_bytes_are_removed_from_headers_and_body() -> None:
    raw = b"Subject: a\x00b\r\nFrom: x\x00@example.org\r\n\r\nhel\x00lo\x00"
    parsed = parse_message(raw)
    assert parsed.subject == "a b"
    assert parsed.body_text == "hello"


def test_crlf_line_ends_in_the_body_become_newlines() -> None:
    assert (
        parse_message(mail("Subject: t", body=b"one\r\ntwo\rthree\n")).body_text
        == "one\ntwo\nthree\n"
    )


def test_body_is_capped_at_a_million_characters() -> None:
    parsed = parse_message(mail("Subject: t", body=b"word " * 300_000))
    assert len(parsed.body_text) == MAX_BODY_CHARS


def test_html_only_message_is_turned_into_text() -> None:
    raw = mail(
        "Subject: newsletter",
        "Content-Type: text/html; charset=utf-8",
        body="<html><head><style>p{}</style></head><body><p>Hello &amp; welcome</p>"
        "<ul><li>one</li><li>two</li></ul></body></html>",
    )
    parsed = parse_message(raw)
    assert parsed.body_was_html
    assert parsed.body_text == "Hello & welcome\n\n- one\n- two"


def test_plain_alternative_is_preferred_over_html() -> None:
    body = multipart(
        part("text/plain; charset=utf-8", b"plain words"),
        part("text/html; charset=utf-8", b"<p>html words</p>"),
        subtype="alternative",
    )
    parsed = parse_message(b"Subject: alt\r\n" + body)
    assert parsed.body_text == "plain words"
    assert not parsed.body_was_html


def test_blank_plain_part_gives_way_to_the_html_part() -> None:
    body = multipart(
        part("text/plain", b"  \r\n"),
        part("text/html", b"<p>the real text</p>"),
        subtype="alternative",
    )
    parsed = parse_message(b"Subject: alt\r\n" + body)
    assert parsed.body_text == "the real text"
    assert parsed.body_was_html


def test_text_attachment_is_not_taken_as_the_body() -> None:
    body = multipart(
        part("text/plain", b"notes", "Content-Disposition: attachment; filename=notes.txt"),
        part("text/plain", b"the body"),
    )
    parsed = parse_message(b"Subject: x\r\n" + body)
    assert parsed.body_text == "the body"
    assert parsed.attachments == (Attachment("notes.txt", "text/plain", 5),)


def test_boundaryless_multipart_is_read_as_plain_text() -> None:
    raw = mail("Content-Type: multipart/mixed", body=b"just text")
    parsed = parse_message(raw)
    assert parsed.body_text == "just text"
    assert parsed.attachments == ()


# --- attachments and calendars ----------------------------------------------------------------


PDF = "Content-Type: application/pdf"
ATTACHED = "Content-Disposition: attachment"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((PDF, f"{ATTACHED}; filename=a.pdf"), Attachment("a.pdf", "application/pdf", 4)),
        (("Content-Type: image/png",), Attachment(None, "image/png", 4)),
        ((f'{PDF}; name="b.pdf"',), Attachment("b.pdf", "application/pdf", 4)),
        (
            (PDF, f"{ATTACHED}; filename*=utf-8''%C3%A9t%C3%A9.pdf"),
            Attachment("été.pdf", "application/pdf", 4),
        ),
        (
            (PDF, f'{ATTACHED}; filename="=?utf-8?q?caf=C3=A9.pdf?="'),
            Attachment("café.pdf", "application/pdf", 4),
        ),
        ((PDF, f'{ATTACHED}; filename="Grüße.pdf"'), Attachment("Grüße.pdf", "application/pdf", 4)),
        (("Content-Type: text/csv", ATTACHED), Attachment(None, "text/csv", 4)),
    ],
)
def test_attachments_are_listed_with_name_type_and_size(
    headers: tuple[str, ...], expected: Attachment
) -> None:
    attachment = "\r\n".join(headers).encode() + b"\r\n\r\nDATA"
    body = multipart(part("text/plain", b"see attached"), attachment)
    parsed = parse_message(b"Subject: files\r\n" + body)
    assert parsed.attachments == (expected,)
    assert parsed.body_text == "see attached"


def test_base64_attachment_size_is_the_decoded_size() -> None:
    payload = base64.encodebytes(bytes(range(256)) * 10)
    body = multipart(
        part("application/octet-stream", payload, "Content-Transfer-Encoding: base64"),
    )
    assert parse_message(b"Subject: bin\r\n" + body).attachments[0].size == 2560


@pytest.mark.parametrize("content_type", ["text/calendar; method=REQUEST", "application/ics"])
def test_calendar_part_sets_has_calendar(content_type: str) -> None:
    body = multipart(
        part("text/plain", b"invitation"),
        part(content_type, b"BEGIN:VCALENDAR\r\nEND:VCALENDAR"),
    )
    parsed = parse_message(b"Subject: meet\r\n" + body)
    assert parsed.has_calendar
    assert parsed.body_text == "invitation"


def test_message_without_calendar_has_no_calendar() -> None:
    assert not parse_message(mail("Subject: x")).has_calendar


def test_forwarded_message_body_is_found_inside_message_rfc822() -> None:
    inner = b"Subject: inner\r\nContent-Type: text/plain\r\n\r\nforwarded words"
    raw = mail("Subject: Fwd: inner", "Content-Type: message/rfc822", body=inner)
    parsed = parse_message(raw)
    assert parsed.subject == "Fwd: inner"
    assert parsed.body_text == "forwarded words"


def test_generated_message_with_attachment_round_trips() -> None:
    message = EmailMessage()
    message["Subject"] = "Rapport trimestriel \u2013 été"
    message["From"] = "Zoë <zoe@example.org>"
    message["To"] = "team@example.org"
    message.set_content("Bonjour,\nvoici le rapport.\n")
    message.add_attachment(b"%PDF" * 100, maintype="application", subtype="pdf", filename="r.pdf")
    parsed = parse_message(message.as_bytes())
    assert parsed.subject == "Rapport trimestriel \u2013 été"
    assert parsed.from_addr == "Zoë <zoe@example.org>"
    assert parsed.body_text == "Bonjour,\nvoici le rapport.\n"
    assert parsed.attachments == (Attachment("r.pdf", "application/pdf", 400),)


# --- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 1000,
        bytes(range(256)) * 50,
        b"\r\n\r\n\r\n",
        b"Subject",
        b":::\r\n:\r\n",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b'Content-Type: multipart/mixed; boundary="\x80\xff"\r\n\r\n--\x80\xff\r\n\r\nx',
        b"Content-Type: text/plain; charset*=x-foo''%ff\r\n\r\n\xff",
        b"Content-Type: text/plain; charset=\r\n\r\nx",
        b"Content-Type: ;;;==;\r\nContent-Disposition: ;filename*0*=%%%\r\n\r\nx",
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n"
        b"\r\nbegin 644 f\r\n!!!\r\nend\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n====%%%",
        b"Date: \xff\xfe\r\nMessage-ID: <\x80@\x81>\r\nFrom: =?utf-8?b?\xff?=\r\n\r\n",
        b"Subject: " + b"=?" * 50_000 + b"\r\n\r\n",
    ],
    ids=lambda raw: repr(raw[:24]),
)
def test_hostile_bytes_never_raise_and_give_well_formed_fields(raw: bytes) -> None:
    assert_well_formed(parse_message(raw), raw)


def test_empty_input_gives_an_empty_message() -> None:
    parsed = parse_message(b"")
    assert parsed == ParsedMail(
        message_id=None, subject="", from_addr="", to_addrs="", cc_addrs="", date=None
    )


def test_header_line_of_200_kb_is_capped() -> None:
    raw = b"Subject: " + b"x" * 200_000 + b"\r\nFrom: a@example.org\r\n\r\nbody"
    parsed = parse_message(raw)
    assert parsed.subject == "x" * HEADER_CAP
    assert parsed.from_addr == "a@example.org"
    assert parsed.body_text == "body"


def test_ten_megabyte_attachment_is_measured_and_not_kept() -> None:
    data = base64.encodebytes(b"\x01" * 10_000_000)
    body = multipart(
        part("text/plain", b"big file attached"),
        part(
            "application/zip",
            data,
            "Content-Transfer-Encoding: base64",
            f"{ATTACHED}; filename=big.zip",
        ),
    )
    parsed = parse_message(b"Subject: big\r\n" + body)  # its time: bench P7
    assert parsed.attachments == (Attachment("big.zip", "application/zip", 10_000_000),)
    assert parsed.body_text == "big file attached"
    assert len(repr(parsed)) < 2_000


def test_thousand_parts_are_all_listed() -> None:
    parts = [part("image/png", b"x", f"{ATTACHED}; filename=f{i}.png") for i in range(1000)]
    parsed = parse_message(b"Subject: many\r\n" + multipart(part("text/plain", b"hi"), *parts))
    assert len(parsed.attachments) == 1000
    assert parsed.attachments[999].filename == "f999.png"
    assert parsed.body_text == "hi"


def test_parts_beyond_the_cap_are_skipped_and_noted() -> None:
    parts = [part("image/png", b"x") for _ in range(MAX_PARTS + 10)]
    parsed = parse_message(b"Subject: many\r\n" + multipart(*parts))
    assert len(parsed.attachments) == MAX_PARTS - 1
    assert f"more than {MAX_PARTS} parts; the rest were skipped" in parsed.defects


def test_nesting_100_deep_still_finds_the_body() -> None:
    parsed = parse_message(nested(100))
    assert parsed.body_text == "hello from the bottom"
    assert parsed.subject == "deep"


def test_nesting_too_deep_for_the_parser_keeps_the_headers_and_notes_it() -> None:
    parsed = parse_message(nested(2000))
    assert parsed.subject == "deep"
    assert parsed.body_text == ""
    assert parsed.defects[0].startswith("message could not be parsed (RecursionError")


def test_defects_are_deduplicated_and_capped() -> None:
    parts = [part(f"text/plain; charset=x-bogus-{i}", b"x") for i in range(200)]
    parts += [part("text/plain; charset=x-same", b"x") for _ in range(5)]
    parsed = parse_message(b"Subject: bad\r\n" + multipart(*parts))
    assert len(parsed.defects) <= MAX_DEFECTS
    assert len(set(parsed.defects)) == len(parsed.defects)


@pytest.mark.parametrize(
    "raw", [bytearray(b"Subject: x\r\n\r\nb"), memoryview(b"Subject: x\r\n\r\nb")]
)
def test_bytes_like_input_is_accepted(raw: bytes) -> None:
    assert parse_message(raw).subject == "x"


def test_wrong_input_type_does_not_raise() -> None:
    parsed = parse_message("Subject: not bytes")  # type: ignore[arg-type]
    assert parsed.size == 0
    assert parsed.defects


# --- random structures ------------------------------------------------------------------------

CONTENT_TYPES = [
    "text/plain", "text/html", "text/calendar", "image/png", "application/octet-stream",
    "message/rfc822", "multipart/mixed", "text/", "/", "", "x" * 300,
]  # fmt: skip
CHARSETS = ["utf-8", "latin-1", "x-foo", "base64", "utf-7", "", '"', "utf-16", "gb2312"]
ENCODINGS = ["7bit", "base64", "quoted-printable", "x-uuencode", "8bit", "bogus"]
HEADER_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["=?utf-8?q?a=0Db?=", "=?x?b?AAAA?=", "=?", "?=", "\r\n x", "\x00"]),
)


@st.composite
def leaf_parts(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    filename = draw(st.one_of(st.none(), HEADER_TEXT))
    lines = [
        f"Content-Type: {content_type}; charset={charset}",
        f"Content-Transfer-Encoding: {encoding}",
    ]
    if filename is not None:
        lines.append(f'{ATTACHED}; filename="{filename}"')
    head = "\r\n".join(lines).encode("utf-8", "surrogatepass")
    return head + b"\r\n\r\n" + draw(st.binary(max_size=200))


def wrap_parts(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    boundaries = st.sampled_from(["b1", "b2", "", "=?x", "a b"])
    subtypes = st.sampled_from(["mixed", "alternative", "related", "digest", "report"])
    return st.builds(
        lambda kids, boundary, subtype: multipart(*kids, subtype=subtype, boundary=boundary),
        children,
        boundaries,
        subtypes,
    )


MIME_TREES = st.recursive(
    leaf_parts(), lambda kids: wrap_parts(st.lists(kids, max_size=4)), max_leaves=12
)


@st.composite
def random_messages(draw: st.DrawFn) -> bytes:
    names = ["Subject", "From", "To", "Cc", "Date", "Message-ID", "List-Id", "X-Priority"]
    headers = draw(st.lists(st.tuples(st.sampled_from(names), HEADER_TEXT), max_size=6))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = head.encode("utf-8", "surrogatepass") + draw(MIME_TREES)
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=20)) + raw[cut:]
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=random_messages())
def test_random_mime_structures_never_raise(raw: bytes) -> None:
    assert_well_formed(parse_message(raw), raw)


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(max_size=2_000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert_well_formed(parse_message(raw), raw)
