"""The IMAP fetcher's pure helpers, with answers as aioimaplib hands them over (from Dovecot)."""

from __future__ import annotations

import pytest

from muninmaild.fetch.imap.responses import (
    FetchedItem,
    Lines,
    MailboxInfo,
    chunked,
    encode_mailbox,
    has_new_mail,
    parse_examine,
    parse_fetch,
    parse_search,
    plan_groups,
    quote_mailbox,
    says_bye,
    status_text,
    uid_set,
)

EXAMINE = [
    b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    b"OK [PERMANENTFLAGS ()] Read-only mailbox.",
    b"3 EXISTS",
    b"3 RECENT",
    b"OK [UNSEEN 1] First unseen.",
    b"OK [UIDVALIDITY 1795945488] UIDs valid",
    b"OK [UIDNEXT 4] Predicted next UID",
    b"[READ-ONLY] Examine completed (0.001 + 0.000 secs).",
]
BODY_1 = bytearray(b"Subject: one\r\n\r\nbody\r\n")
BODY_2 = bytearray(b"Subject: two\r\n\r\nbody\r\n")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (EXAMINE, MailboxInfo(1795945488, 4, (3,))),
        ([b"OK [CLOSED] Previous mailbox closed.", *EXAMINE], MailboxInfo(1795945488, 4, (3,))),
        ([b"0 EXISTS", b"OK [UIDVALIDITY 7] x", b"done"], MailboxInfo(7, None, (0,))),
        ([b"3 EXISTS", b"4 EXISTS", b"OK [uidvalidity 9] x", b"ok"], MailboxInfo(9, None, (3, 4))),
    ],
)
def test_examine_answers(lines: Lines, expected: MailboxInfo) -> None:
    assert parse_examine(lines) == expected


def test_mail_arriving_during_examine_shows_as_two_exists_counts() -> None:
    assert parse_examine([b"3 EXISTS", b"4 EXISTS", b"OK [UIDVALIDITY 9] x", b"ok"]).grew_meanwhile
    assert not parse_examine(EXAMINE).grew_meanwhile


def test_examine_without_uidvalidity_is_an_error() -> None:
    with pytest.raises(ValueError, match="UIDVALIDITY"):
        parse_examine([b"3 EXISTS", b"Examine completed."])


@pytest.mark.parametrize(
    ("lines", "above", "expected"),
    [
        ([b"2 3", b"Search completed (0.001 + 0.000 secs)."], 1, [2, 3]),
        ([b"7", b"Search completed."], 9, []),  # UID 10:* answers the highest UID, 7
        ([b"", b"Search completed."], 0, []),
        ([b"Search completed."], 0, []),  # no untagged line at all
        ([b"5 3 9 3", b"done"], 0, [3, 5, 9]),
        ([b"1 2", b"3 4", b"done 5"], 2, [3, 4]),
    ],
)
def test_search_answers(lines: Lines, above: int, expected: list[int]) -> None:
    assert parse_search(lines, above) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                b"1 FETCH (UID 1 RFC822.SIZE 22 BODY[] {22}",
                BODY_1,
                b")",
                b"2 FETCH (UID 2 RFC822.SIZE 22 BODY[] {22}",
                BODY_2,
                b")",
                b"Fetch completed (0.001 + 0.000 secs).",
            ],
            {1: FetchedItem(1, 22, bytes(BODY_1)), 2: FetchedItem(2, 22, bytes(BODY_2))},
        ),
        (  # UID and size after the literal
            [b"5 FETCH (BODY[] {22}", BODY_1, b" UID 41 RFC822.SIZE 22)", b"Fetch completed."],
            {41: FetchedItem(41, 22, bytes(BODY_1))},
        ),
        (  # sizes only
            [b"1 FETCH (UID 3 RFC822.SIZE 66)", b"2 FETCH (UID 4 RFC822.SIZE 70)", b"done"],
            {3: FetchedItem(3, 66, None), 4: FetchedItem(4, 70, None)},
        ),
        (  # an unsolicited flag change does not hide the message's body
            [
                b"1 FETCH (UID 8 RFC822.SIZE 22 BODY[] {22}",
                BODY_1,
                b")",
                b"1 FETCH (UID 8 FLAGS (\\Seen))",
                b"done",
            ],
            {8: FetchedItem(8, 22, bytes(BODY_1))},
        ),
        (  # the body section as NIL
            [b"1 FETCH (UID 9 RFC822.SIZE 0 BODY[] NIL)", b"done"],
            {9: FetchedItem(9, 0, None)},
        ),
        ([b"3 FETCH (FLAGS (\\Seen))", b"done"], {}),  # no UID: nothing to keep
        ([b"Fetch completed."], {}),
    ],
)
def test_fetch_answers(lines: Lines, expected: dict[int, FetchedItem]) -> None:
    assert parse_fetch(lines) == expected


@pytest.mark.parametrize(
    ("pushed", "new", "bye"),
    [
        ([b"6 EXISTS", b"6 RECENT"], True, False),
        ([b"OK Still here"], False, False),
        ([b"3 FETCH (FLAGS (\\Seen))"], False, False),
        ([b"2 EXPUNGE"], False, False),
        ([b"BYE Server shutting down."], False, True),
    ],
)
def test_idle_pushes(pushed: Lines, new: bool, bye: bool) -> None:
    assert (has_new_mail(pushed), says_bye(pushed)) == (new, bye)


@pytest.mark.parametrize(
    ("uids", "expected"),
    [
        ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"),
        ([5], "5"),
        ([3, 1, 2, 2], "1:3"),
        ([], ""),
        ([1, 3, 5], "1,3,5"),
    ],
)
def test_uid_sets(uids: list[int], expected: str) -> None:
    assert uid_set(uids) == expected


@pytest.mark.parametrize(
    ("name", "encoded", "quoted"),
    [
        ("INBOX", "INBOX", '"INBOX"'),
        ("Sent Items", "Sent Items", '"Sent Items"'),
        ("A&B", "A&-B", '"A&-B"'),
        ("Entwürfe", "Entw&APw-rfe", '"Entw&APw-rfe"'),
        ("台北", "&U,BTFw-", '"&U,BTFw-"'),  # RFC 3501's own example
        ('say "hi"\\', 'say "hi"\\', '"say \\"hi\\"\\\\"'),
    ],
)
def test_mailbox_names(name: str, encoded: str, quoted: str) -> None:
    assert encode_mailbox(name) == encoded
    assert quote_mailbox(name) == quoted


@pytest.mark.parametrize(
    ("sizes", "max_size", "max_bytes", "expected"),
    [
        ({1: 10, 2: 10, 3: 10}, 100, 25, [[1, 2], [3]]),
        ({1: 50, 2: 10}, 100, 25, [[1], [2]]),  # one message over the budget still goes alone
        ({1: 10, 2: 500, 3: 10}, 100, 25, [[1, 2, 3]]),  # oversize: only its header is fetched
        ({}, 100, 25, []),
    ],
)
def test_fetch_groups_by_bytes(
    sizes: dict[int, int], max_size: int, max_bytes: int, expected: list[list[int]]
) -> None:
    assert plan_groups(sorted(sizes), sizes, max_size, max_bytes) == expected


def test_chunks_and_status_text() -> None:
    assert list(chunked([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert status_text([b"x", b"[AUTHENTICATIONFAILED] Authentication failed."]) == (
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    assert status_text([]) == "no reason given"
