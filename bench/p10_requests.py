"""P10: model requests and input tokens for a realistic mix of mail, against the naive way.

The mix (`bench/mixgen.py`): newsletters, notifications, replies in plain text and in HTML with
quoted history, new mail, and repeats (a message delivered to a second mailbox), queued as the
fetcher would queue them: parsed by the daemon's own parser, the repeats in a second account.
The real daemon (`cerebras` backend, the real SDK) drains the queue against our model server
(`bench/model_proc.py`, answering at once), which logs the user message of every request.

- naive: the whole body, one request each. Computed, not run: the request the daemon builds,
  with the untrimmed body and no cap, counted in tokens as the model server counts them
  (a quarter of the characters of the messages' JSON).
- before: the daemon with `ai.skip = []` and `ai.cache = false` (what it did before both
  existed; the body is trimmed, HTML replies included).
- after: `ai.skip = ["bulk", "automated"]` and `ai.cache = true`.

Input tokens are the prompt tokens the server reported, as the daemon stored them per message
(`token_usage`). The server's log tells which message each request was for (its Date), so
requests for skipped mail, repeated requests, and HTML replies whose quoted history reached the
model are counted from what the model was actually sent. Counts do not vary from run to run,
so each contender runs once, whatever `--runs` says.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from email.utils import format_datetime
from typing import Any

from bench import mixgen
from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute, compare
from bench.drain import drain, processor_config
from bench.procs import ModelServer
from bench.queue import SqliteProbe, SqliteTemplate
from muninmaild.ai.base import ModelInput
from muninmaild.ai.prompt import build_messages
from muninmaild.config.settings import DEFAULT_FLAGS
from muninmaild.mail.headers import TRIAGE_HEADERS
from muninmaild.mail.parse import parse_message
from muninmaild.records import NewMessage
from tests.fakes.model_server import _count_tokens as server_tokens

TITLE = "fewer, smaller model requests: a realistic mix of mail"
CONCURRENCY = 8
BIG = 1_000_000_000
_DATE_LINE = re.compile(r"^Date: (.*)$", re.MULTILINE)


@dataclass
class Figures:
    """One contender's run: what the model was sent, and what the daemon stored."""

    requests: int = 0
    tokens_in: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)  # input tokens by kind of mail
    origins: dict[str, int] = field(default_factory=dict)
    skipped_asked: int = 0  # requests for mail ai.skip would leave to the rules
    repeated: int = 0  # requests beyond the first for the same message
    html_asked: int = 0  # HTML replies the model was asked about
    html_without_history: int = 0
    html_with_new_text: int = 0


def queue(mails: list[mixgen.Mail]) -> list[NewMessage]:
    """The mix as the fetchers queue it; the k-th repeat of a message arrives in an account of
    its own (a second copy in the same account would be recognised by its Message-ID)."""
    out = []
    copies: Counter[int] = Counter()
    for mail in mails:
        parsed = replace(parse_message(mail.raw), size=len(mail.raw))
        account = "work"
        if mail.repeat_of is not None:
            copies[mail.repeat_of] += 1
            account = f"copy-{copies[mail.repeat_of]}"
        out.append(NewMessage(account, "INBOX", 1, mail.index + 1, parsed))
    return out


def naive_tokens(message: NewMessage) -> int:
    """The input tokens of the request with the whole body, as the model server counts them."""
    mail = message.mail
    item = ModelInput(
        email_id=0,
        subject=mail.subject[:500],
        from_addr=mail.from_addr[:500],
        to_addrs=mail.to_addrs[:1000],
        date=format_datetime(mail.date) if mail.date else "",
        body=mail.body_text,
        headers={k: v[:300] for k, v in mail.headers.items() if k in TRIAGE_HEADERS},
        attachment_names=tuple(a.filename for a in mail.attachments if a.filename)[:20],
        has_calendar=mail.has_calendar,
    )
    return server_tokens(json.dumps(build_messages(item, DEFAULT_FLAGS)))


def config(base_url: str, *, skip: bool, cache: bool) -> str:
    ai = "\n".join(
        [
            'backend = "cerebras"',
            f'base_url = "{base_url}"',
            'api_key = "bench"',
            f"requests_per_minute = {BIG}",
            f"tokens_per_minute = {BIG}",
            "requests_per_hour = 0",
            "requests_per_day = 0",
            "tokens_per_hour = 0",
            "tokens_per_day = 0",
            "timeout = 30",
            f"skip = {json.dumps(['bulk', 'automated'] if skip else [])}",
            f"cache = {'true' if cache else 'false'}",
        ]
    )
    return processor_config(CONCURRENCY, ai)


def run_daemon(
    ctx: Context, template: SqliteTemplate, mails: list[mixgen.Mail], name: str, on: bool
) -> Figures:
    server = ModelServer(ctx.root, 0.0, bodies=True)
    figures = Figures()
    try:
        daemon = ctx.daemon(None, config(server.base_url, skip=on, cache=on), name)
        template.copy_to(daemon.db_path)
        probe = SqliteProbe(daemon.db_path)
        try:
            drain([daemon], probe, len(mails))
            stored(probe, mails, figures)
        finally:
            probe.close()
    finally:
        server.stop()
    read_requests(server.user_messages(), mails, figures)
    return figures


def stored(probe: SqliteProbe, mails: list[mixgen.Mail], figures: Figures) -> None:
    """Input tokens by kind of mail, and answers by origin, from the daemon's database."""
    rows = probe.query(
        "SELECT e.uid, SUM(t.tokens_in) FROM token_usage t JOIN emails e ON e.id = t.email_id "
        "GROUP BY e.id"
    )
    by_kind: Counter[str] = Counter()
    for uid, tokens in rows:
        by_kind[kind_of(mails[int(uid) - 1])] += int(tokens)
    figures.by_kind = dict(by_kind)
    figures.tokens_in = sum(by_kind.values())
    origins = probe.query("SELECT COALESCE(origin, 'none'), COUNT(*) FROM results GROUP BY 1")
    figures.origins = {str(origin): int(n) for origin, n in origins}


def kind_of(mail: mixgen.Mail) -> str:
    return "repeat" if mail.repeat_of is not None else mail.kind


def read_requests(bodies: list[str], mails: list[mixgen.Mail], figures: Figures) -> None:
    """What the model was sent: which message each request was for, and what of it."""
    figures.requests = len(bodies)
    asked: Counter[int] = Counter()
    for body in bodies:
        date = _DATE_LINE.search(body)
        index = mixgen.index_of(date.group(1)) if date else None
        if index is None or index >= len(mails):
            raise RuntimeError(f"a request for no message of the mix: {body[:200]!r}")
        asked[index] += 1
        mail = mails[index]
        if asked[index] == 1 and mail.kind in mixgen.SKIPPED_KINDS:
            figures.skipped_asked += 1
        if mail.kind == "html_reply" and asked[index] == 1:
            figures.html_asked += 1
            figures.html_with_new_text += mixgen.new_marker(index) in body
            figures.html_without_history += mixgen.history_marker(index) not in body
    figures.repeated = sum(n - 1 for n in asked.values())


def run(ctx: Context) -> ScenarioResult:
    n = ctx.size.p10_messages
    mails = mixgen.mix(n)
    messages = queue(mails)
    naive = [naive_tokens(m) for m in messages]
    naive_by_kind: Counter[str] = Counter()
    for mail, tokens in zip(mails, naive, strict=True):
        naive_by_kind[kind_of(mail)] += tokens
    ctx.log(f"P10: preparing a SQLite queue of {n} mixed messages")
    template = SqliteTemplate(ctx.folder("tpl-p10") / "queue.db", messages, ["processor"])
    before = run_daemon(ctx, template, mails, "p10-before", on=False)
    ctx.log(f"P10 before: {before.requests} requests, {before.tokens_in} input tokens")
    after = run_daemon(ctx, template, mails, "p10-after", on=True)
    ctx.log(f"P10 after: {after.requests} requests, {after.tokens_in} input tokens")
    return result(n, mails, sum(naive), dict(naive_by_kind), before, after)


def result(
    n: int,
    mails: list[mixgen.Mail],
    naive: int,
    naive_by_kind: dict[str, int],
    before: Figures,
    after: Figures,
) -> ScenarioResult:
    kinds = mixgen.counts(mails)
    unique_asked = sum(
        1 for m in mails if m.repeat_of is None and m.kind not in mixgen.SKIPPED_KINDS
    )
    out = ScenarioResult("P10", f"{TITLE} ({n:,})")
    mix_note = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    naive_label = "naive: whole body, one request each"
    out.rows += [
        compare(
            "P10",
            "input tokens per message, skip and cache on",
            "tok/msg",
            [after.tokens_in / n],
            naive_label,
            [naive / n],
            Goal("<=", 0.5, "<= 0.5x naive"),
            mix_note,
        ),
        compare(
            "P10",
            "input tokens per message, skip and cache off (before)",
            "tok/msg",
            [before.tokens_in / n],
            naive_label,
            [naive / n],
            None,
            "the body trimmed (quoted history, signatures), every message one request",
        ),
        compare(
            "P10",
            "model requests per message, skip and cache on",
            "req/msg",
            [after.requests / n],
            naive_label,
            [1.0],
            None,
            f"{after.requests} requests for {n} messages; {unique_asked} are neither skipped "
            f"nor repeats; answers: {_origins(after.origins)}",
        ),
        compare(
            "P10",
            "model requests per message, skip and cache off (before)",
            "req/msg",
            [before.requests / n],
            naive_label,
            [1.0],
            None,
        ),
        absolute(
            "P10",
            "requests for skipped or repeated mail, skip and cache on",
            "req",
            [float(after.skipped_asked + after.repeated)],
            Goal("<=", 0, "none"),
            note=f"{after.skipped_asked} for skipped mail, {after.repeated} repeated; before: "
            f"{before.skipped_asked} and {before.repeated}",
        ),
        absolute(
            "P10",
            "HTML replies that reach the model without their history",
            "%",
            [100.0 * after.html_without_history / max(after.html_asked, 1)],
            None,
            note=f"{after.html_without_history} of {after.html_asked} HTML replies asked; "
            f"their new text reached it in {after.html_with_new_text} (before: "
            f"{before.html_without_history} of {before.html_asked}; naive: none)",
        ),
    ]
    out.details = {
        "messages": n,
        "mix": kinds,
        "naive_tokens": naive,
        "naive_tokens_by_kind": naive_by_kind,
        "before": before.__dict__,
        "after": after.__dict__,
        "unique_asked": unique_asked,
        "tokens_saved": 1 - after.tokens_in / naive if naive else math.nan,
    }
    return out


def _origins(found: dict[str, int]) -> str:
    return ", ".join(f"{n} {origin}" for origin, n in sorted(found.items()))


def figures_table(details: dict[str, Any]) -> list[str]:
    """Input tokens by kind of mail, naive / before / after, for bench/README.md."""
    lines = ["| kind | messages | naive | before | after |", "|---|---:|---:|---:|---:|"]
    for kind, count in details["mix"].items():
        naive = details["naive_tokens_by_kind"].get(kind, 0)
        before = details["before"]["by_kind"].get(kind, 0)
        after = details["after"]["by_kind"].get(kind, 0)
        lines.append(f"| {kind} | {count} | {naive:,} | {before:,} | {after:,} |")
    return lines
