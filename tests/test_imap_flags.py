"""Reading what SELECT allows and what flags messages carry (fetch/imap/flags.py).

The answers are aioimaplib's lines as Dovecot 2.3 sends them (untagged lines without `* `).
"""

from __future__ import annotations

import pytest

from muninmaild.fetch.imap.flags import (
    SelectedMailbox,
    flag_list,
    has_keyword,
    parse_flags,
    parse_select,
)

SELECT_OPEN = [
    b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    b"OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
    b"3 EXISTS",
    b"0 RECENT",
    b"OK [UIDVALIDITY 1764756000] UIDs valid",
    b"OK [UIDNEXT 4] Predicted next UID",
    b"[READ-WRITE] Select completed (0.001 + 0.000 secs).",
]
# Dovecot with the ACL plugin and no `w` right on the mailbox.
SELECT_NO_KEYWORDS = [
    b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft munin_urgent)",
    b"OK [PERMANENTFLAGS (\\Seen)] Flags permitted.",
    b"OK [UIDVALIDITY 7] UIDs valid",
    b"[READ-WRITE] Select completed.",
]


def test_a_mailbox_with_a_star_keeps_any_keyword() -> None:
    box = parse_select(SELECT_OPEN)
    assert box.uidvalidity == 1764756000 and not box.read_only
    assert box.allows("munin_urgent") and box.allows("$label1")
    assert box.refusal(["munin_urgent"]) is None


def test_without_a_star_only_listed_keywords_are_kept() -> None:
    box = parse_select(SELECT_NO_KEYWORDS)
    assert box.permanent == frozenset({"\\Seen"}) and not box.takes_new_keywords
    assert parse_select(SELECT_OPEN).takes_new_keywords
    assert not box.allows("munin_urgent")  # in FLAGS, but not in PERMANENTFLAGS
    listed = SelectedMailbox(7, frozenset({"\\Seen", "Munin_Urgent"}))
    assert listed.allows("munin_urgent")  # keywords are case-insensitive
    refusal = box.refusal(["munin_urgent", "$label1"])
    assert refusal is not None
    assert "PERMANENTFLAGS \\Seen, without \\*" in refusal
    assert "$label1, munin_urgent not written" in refusal


def test_no_permanentflags_means_everything_is_kept_and_read_only_nothing() -> None:
    absent = parse_select([b"OK [UIDVALIDITY 5] UIDs valid", b"Select completed."])
    assert absent.permanent is None and absent.allows("anything") and absent.takes_new_keywords
    read_only = parse_select([*SELECT_OPEN[:-1], b"[READ-ONLY] Select completed."])
    assert read_only.read_only and not read_only.allows("munin_urgent")
    assert not read_only.takes_new_keywords
    assert read_only.refusal(["munin_urgent"]) == "the server opened the mailbox read-only"


def test_select_without_uidvalidity_is_an_error() -> None:
    with pytest.raises(ValueError, match="UIDVALIDITY"):
        parse_select([b"OK [PERMANENTFLAGS (\\*)] Flags permitted.", b"Select completed."])


def test_flags_by_uid_in_either_order_and_with_other_items() -> None:
    lines = [
        b"1 FETCH (UID 4 FLAGS (\\Seen munin_urgent))",
        b"2 FETCH (FLAGS () UID 7)",
        b"3 FETCH (FLAGS (\\Recent $label1) UID 9 MODSEQ (12))",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    assert parse_flags(lines) == {
        4: frozenset({"\\Seen", "munin_urgent"}),
        7: frozenset(),
        9: frozenset({"\\Recent", "$label1"}),
    }


def test_keyword_helpers() -> None:
    assert has_keyword({"\\Seen", "MUNIN_URGENT"}, "munin_urgent")
    assert not has_keyword({"munin_urgent_x"}, "munin_urgent")
    assert flag_list(["munin_urgent", "$label1"]) == "(munin_urgent $label1)"
