"""The fast MIME path builds exactly FeedParser's tree, or declines and leaves it to FeedParser."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator
from email import policy
from email.message import Message
from email.parser import BytesParser

import pytest

from bench.mailgen import messages as bench_messages
from muninmaild.mail import parse
from muninmaild.mail.mime import message_tree
from tests.reliability.hostile import hostile_messages

Dump = list[tuple[object, ...]]


def dump(msg: Message) -> Dump:
    """Everything a later reader of the tree can see, part by part."""
    out: Dump = []
    for part in msg.walk():
        # What FeedParser stored: get_payload() would turn undecodable bytes into U+FFFD.
        payload = getattr(part, "_payload")  # noqa: B009
        out.append(
            (
                type(part),
                list(part.raw_items()),
                part.get_unixfrom(),
                part.preamble,
                part.epilogue,
                part.get_default_type(),
                [(type(d).__name__, str(d)) for d in part.defects],
                payload if isinstance(payload, str) else len(payload),
            )
        )
    return out


EDGE_LEVELS = 8


def feedparser(raw: bytes) -> Message:
    return BytesParser(policy=policy.compat32).parsebytes(raw)


def variants(raw: bytes, rng: random.Random) -> Iterator[bytes]:
    """The message, and the ways real and broken mail differs from it."""
    yield raw
    yield raw.replace(b"\r\n", b"\n")
    yield raw.replace(b"\r\n", b"\r")
    yield raw.rstrip(b"\r\n")
    yield raw + b"\r\ntrailing text after it all\r\n"
    yield b"From someone@example.com Mon Jan  1 00:00:00 2024\r\n" + raw
    yield b" a first header line that continues nothing\r\n" + raw
    yield b": a header without a name\r\n" + raw
    boundaries = re.findall(rb'boundary="?([^"\r\n;]+)', raw)
    # The outermost and innermost levels: a message nested two thousand deep would otherwise
    # give 16,000 variants of 140 KB, two thirds of the run, each like the ones kept.
    if len(boundaries) > 2 * EDGE_LEVELS:
        boundaries = boundaries[:EDGE_LEVELS] + boundaries[-EDGE_LEVELS:]
    for boundary in boundaries:
        sep = b"--" + boundary
        yield raw.replace(sep + b"--", sep)  # no closing boundary
        yield raw.replace(sep + b"\r\n", sep + b"  \t\r\n", 1)  # white space after one
        yield raw.replace(sep + b"\r\n", sep + b"\r\n" + sep + b"\r\n", 1)  # an empty part
        yield raw.replace(sep + b"--", sep + b"--\r\n" + sep + b"\r\nafter the end\r\n")
        yield raw.replace(sep + b"\r\n", b"text " + sep + b" inline\r\n" + sep + b"\r\n", 1)
        yield raw.replace(sep + b"--", sep + b"--", 1).replace(sep, sep + b"x", 1)
        yield raw.replace(b"\r\n" + sep, b"\r\npreamble line\r\n" + sep, 1)
        yield raw.replace(sep + b"\r\n", sep + b"\r\n\tcontinuing nothing\r\n", 1)
    for _ in range(3):  # cut anywhere, or a byte changed anywhere
        cut = rng.randrange(len(raw) + 1)
        yield raw[:cut]
        if raw:
            at = rng.randrange(len(raw))
            yield raw[:at] + bytes([rng.choice(b"\r\n-:\t \x80=")]) + raw[at + 1 :]


@functools.cache
def corpus() -> list[bytes]:
    found = hostile_messages()
    return [raw for raw in found if len(raw) < 1_000_000] + list(bench_messages(300, seed=5))


def test_trees_are_feedparsers_trees_on_every_variant() -> None:
    rng = random.Random(11)
    taken = declined = 0
    for original in corpus():
        for raw in variants(original, rng):
            tree = message_tree(raw)
            if tree is None:
                declined += 1
                continue
            taken += 1
            assert dump(tree) == dump(feedparser(raw)), raw[:300]
    # Both sides were exercised: most variants take the fast path, the odd ones do not.
    assert taken > 2_000 and declined > 500, (taken, declined)


def test_most_realistic_mail_takes_the_fast_path() -> None:
    raws = list(bench_messages(500, seed=9))
    assert sum(message_tree(raw) is not None for raw in raws) == len(raws)


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody",
        b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary",
        b"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"--b\r\n\r\nx\r\n--b--\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n",
        b"Subject: x\r\nnot a header line\r\n\r\nbody",
        b"Subject: headers that never end\r\n",
        b"From x@example.com Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\nbody",
    ],
    ids=[
        "message part",
        "digest",
        "no boundary",
        "encoded multipart",
        "no closing boundary",
        "not a header",
        "no blank line",
        "unix from",
    ],
)
def test_shapes_it_leaves_to_feedparser(raw: bytes) -> None:
    assert message_tree(raw) is None


def test_parsed_mail_is_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where the fast path declines, both sides are FeedParser's already: nothing to compare.
    raws = [raw for raw in corpus() if message_tree(raw) is not None]
    assert len(raws) > len(corpus()) * 3 // 4
    fast = [parse.parse_message(raw) for raw in raws]
    monkeypatch.setattr(parse, "message_tree", lambda raw: None)
    assert [parse.parse_message(raw) for raw in raws] == fast


def test_a_message_without_headers_is_still_a_message() -> None:
    tree = message_tree(b"\r\njust a body\r\n")
    assert tree is not None and len(tree) == 0  # no headers: falsy, and still the tree
    assert parse.parse_message(b"\r\njust a body\r\n").body_text == "just a body\n"
