"""Deciding what to write to a mailbox from the server's answers (writeback/plan.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from muninmaild.config.settings import DEFAULT_FLAGS, FlagSpec
from muninmaild.fetch.imap.flags import SelectedMailbox
from muninmaild.records import KeywordTarget
from muninmaild.writeback import plan

QUEUED = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
SPECS = (
    FlagSpec("requires_response", "reply"),
    FlagSpec("urgent", "urgent", keyword="$label1"),
    FlagSpec("invoice", "a bill"),
)
OPEN = SelectedMailbox(5, frozenset({"\\Seen", "\\*"}))


def target(uid: int, *flags: str, uidvalidity: int = 5) -> KeywordTarget:
    return KeywordTarget(uid, "work", "INBOX", uidvalidity, uid, flags, QUEUED)


def test_each_flag_becomes_its_keyword_once() -> None:
    assert plan.keywords_for(["requires_response", "urgent", "invoice"], SPECS) == (
        "munin_requires_response",
        "$label1",
        "munin_invoice",
    )
    # A flag no longer configured keeps its default keyword; two flags, one keyword: once.
    assert plan.keywords_for(["retired"], SPECS) == ("munin_retired",)
    same = (FlagSpec("a", "", keyword="$Label1"), FlagSpec("b", "", keyword="$label1"))
    assert plan.keywords_for(["a", "b"], same) == ("$Label1",)
    assert [s.imap_keyword for s in DEFAULT_FLAGS] == [
        "munin_requires_response",
        "munin_urgent",
        "munin_meeting_request",
    ]


def test_after_select_a_recreated_mailbox_is_skipped_and_a_refusal_waits() -> None:
    targets = [target(1, "urgent"), target(2, "invoice", uidvalidity=4)]
    out = plan.after_select(targets, OPEN, SPECS)
    assert out.writable == [targets[0]] and out.refusal is None
    (stale,) = out.settled
    assert stale.state == "skipped" and "UIDVALIDITY 4 is now 5" in (stale.note or "")

    closed = SelectedMailbox(5, frozenset({"\\Seen", "$label1"}))
    refused = plan.after_select([target(1, "urgent"), target(3, "invoice")], closed, SPECS)
    assert [t.uid for t in refused.writable] == [1]  # $label1 is listed: it may be set
    assert out.takes_new_keywords and not refused.takes_new_keywords
    (waiting,) = refused.settled
    assert waiting.state == "pending" and waiting.retry_in_s == plan.RECHECK_S
    assert refused.refusal is not None and "munin_invoice not written" in refused.refusal


def test_only_missing_keywords_are_stored_and_a_set_one_is_recorded_unwritten() -> None:
    targets = [target(1, "urgent", "invoice"), target(2, "urgent"), target(3, "invoice")]
    present = {
        1: frozenset({"\\Seen", "$LABEL1"}),  # half written before a restart
        2: frozenset({"$label1"}),  # written before a restart, not recorded
    }
    out = plan.to_store(targets, present, SPECS)
    assert out.groups == {("munin_invoice",): [1]}
    done, gone = out.settled
    assert (done.target.uid, done.state, done.note) == (2, "written", plan.ALREADY_SET)
    assert (gone.target.uid, gone.state) == (3, "skipped")


def test_after_store_kept_keywords_are_written_and_dropped_ones_a_refusal() -> None:
    targets = [target(1, "urgent"), target(2, "invoice"), target(3, "urgent")]
    present = {1: frozenset({"$label1"}), 2: frozenset({"\\Seen"})}
    outcomes, refusal = plan.after_store(targets, present, SPECS)
    assert [(o.target.uid, o.state) for o in outcomes] == [
        (1, "written"),
        (2, "pending"),
        (3, "skipped"),
    ]
    assert outcomes[0].keywords == ("$label1",)
    assert refusal == "the server answered OK to the STORE but did not keep the keywords"
