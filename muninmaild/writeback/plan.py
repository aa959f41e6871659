"""What to write to one mailbox, decided from what the server said (pure functions).

The writer asks the server three things in turn, and each answer goes through one function
here: SELECT (is the mailbox the one the messages were fetched from, does it keep the
keywords?), the messages' FLAGS (which keywords are missing, which messages are gone?), and
the FLAGS again after the STORE (did the server keep them?).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from muninmaild.config.settings import FlagSpec
from muninmaild.fetch.imap.flags import SelectedMailbox, has_keyword
from muninmaild.records import KeywordOutcome, KeywordTarget

RECHECK_S = 3600.0  # a mailbox that refused keywords is asked again after this long
ALREADY_SET = "already set on the server; nothing written"


def keywords_for(flags: Iterable[str], specs: Sequence[FlagSpec]) -> tuple[str, ...]:
    """The IMAP keywords of a message's flags: `[ai.flags.<name>] keyword`, else
    `munin_<flag>` (also for a flag no longer configured). Each keyword once, in flag order."""
    by_name = {spec.name: spec.imap_keyword for spec in specs}
    out: list[str] = []
    for flag in flags:
        keyword = by_name.get(flag, f"munin_{flag}")
        if not has_keyword(out, keyword):
            out.append(keyword)
    return tuple(out)


@dataclass
class Selected:
    """The targets of one mailbox after SELECT."""

    writable: list[KeywordTarget] = field(default_factory=list)
    settled: list[KeywordOutcome] = field(default_factory=list)  # stale or refused
    refusal: str | None = None
    takes_new_keywords: bool = True


def after_select(
    targets: Sequence[KeywordTarget], mailbox: SelectedMailbox, specs: Sequence[FlagSpec]
) -> Selected:
    """Each target's note names its own keywords; the mailbox's refusal all that were refused."""
    out = Selected(takes_new_keywords=mailbox.takes_new_keywords)
    refused: list[str] = []
    for target in targets:
        wanted = keywords_for(target.flags, specs)
        if target.uidvalidity != mailbox.uidvalidity:
            note = (
                f"not written: the mailbox was recreated (UIDVALIDITY {target.uidvalidity} is "
                f"now {mailbox.uidvalidity}), so UID {target.uid} is another message or none"
            )
            out.settled.append(KeywordOutcome(target, "skipped", wanted, note))
        elif (refusal := mailbox.refusal(wanted)) is not None:
            refused += wanted
            out.settled.append(KeywordOutcome(target, "pending", (), refusal, RECHECK_S))
        else:
            out.writable.append(target)
    out.refusal = mailbox.refusal(refused)
    return out


@dataclass
class Stores:
    """What to STORE (missing keywords -> UIDs), and what is settled without a STORE."""

    groups: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    settled: list[KeywordOutcome] = field(default_factory=list)


def to_store(
    targets: Sequence[KeywordTarget],
    present: Mapping[int, frozenset[str]],
    specs: Sequence[FlagSpec],
) -> Stores:
    """Only the keywords a message lacks are stored: after a restart mid-write, what reached
    the server before is found there, recorded, and not written again."""
    out = Stores()
    for target in targets:
        wanted = keywords_for(target.flags, specs)
        flags = present.get(target.uid)
        if flags is None:
            note = "not written: the message is no longer in the mailbox"
            out.settled.append(KeywordOutcome(target, "skipped", wanted, note))
            continue
        missing = tuple(k for k in wanted if not has_keyword(flags, k))
        if missing:
            out.groups.setdefault(missing, []).append(target.uid)
        else:
            out.settled.append(KeywordOutcome(target, "written", wanted, ALREADY_SET))
    return out


def after_store(
    targets: Sequence[KeywordTarget],
    present: Mapping[int, frozenset[str]],
    specs: Sequence[FlagSpec],
) -> tuple[list[KeywordOutcome], str | None]:
    """Outcomes of the stored targets, and a refusal if the server dropped keywords silently
    (some answer OK to a STORE they do not keep, as Dovecot does without the ACL right)."""
    outcomes: list[KeywordOutcome] = []
    refusal = None
    for target in targets:
        wanted = keywords_for(target.flags, specs)
        flags = present.get(target.uid)
        if flags is None:
            note = "the message left the mailbox while its keywords were written"
            outcomes.append(KeywordOutcome(target, "skipped", wanted, note))
            continue
        if all(has_keyword(flags, k) for k in wanted):
            outcomes.append(KeywordOutcome(target, "written", wanted))
            continue
        refusal = "the server answered OK to the STORE but did not keep the keywords"
        outcomes.append(KeywordOutcome(target, "pending", (), refusal, RECHECK_S))
    return outcomes, refusal
