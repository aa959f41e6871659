"""P10's mix of mail and how its request log is read (the benchmark's own logic, no daemon)."""

from __future__ import annotations

from email.utils import format_datetime

from bench import mixgen
from bench.p10_requests import Figures, naive_tokens, queue, read_requests
from muninmaild.ai.prepare import model_input
from muninmaild.mail.parse import parse_message
from muninmaild.records import ClaimedMessage

MAILS = mixgen.mix(300)


def test_the_mix_is_the_same_for_the_same_seed_and_has_every_kind() -> None:
    assert [m.raw for m in mixgen.mix(50)] == [m.raw for m in MAILS[:50]]
    found = mixgen.counts(MAILS)
    assert set(found) == set(mixgen.KINDS) and all(found.values())
    assert {m.shape for m in MAILS if m.kind == "html_reply"} == set(mixgen.HTML_SHAPES)
    repeats = [m for m in MAILS if m.repeat_of is not None]
    assert all(m.raw == MAILS[m.repeat_of].raw for m in repeats if m.repeat_of is not None)


def test_each_message_s_date_names_it() -> None:
    for mail in MAILS:
        parsed = parse_message(mail.raw)
        assert parsed.date is not None
        assert mixgen.index_of(format_datetime(parsed.date)) == mail.original
    assert mixgen.index_of("Mon, 02 Nov 2026 08:00:01 +0000") is None
    assert mixgen.index_of("not a date") is None


def test_replies_reach_the_model_with_their_new_text_and_without_their_history() -> None:
    for mail in MAILS:
        if mail.kind not in ("plain_reply", "html_reply") or mail.repeat_of is not None:
            continue
        parsed = parse_message(mail.raw)
        claimed = ClaimedMessage(
            mail.index, "t", 1, "work", parsed.subject, parsed.from_addr, parsed.to_addrs,
            parsed.date, parsed.body_text, parsed.headers,
        )  # fmt: skip
        body = model_input(claimed, 12_000).body
        assert mixgen.new_marker(mail.index) in body, (mail.shape, body[:300])
        assert mixgen.history_marker(mail.index) not in body, (mail.shape, body)
        assert mixgen.history_marker(mail.index) in parsed.body_text  # it was there


def test_repeats_are_queued_in_accounts_of_their_own() -> None:
    queued = queue(MAILS)
    seen = {(m.account, m.mail.message_id) for m in queued}
    assert len(seen) == len(queued)  # no copy the store would recognise by its Message-ID
    assert all(n > 100 for n in map(naive_tokens, queued[:20]))


def test_the_request_log_tells_skipped_repeated_and_html_history() -> None:
    def body_of(i: int, text: str) -> str:
        date = format_datetime(parse_message(MAILS[i].raw).date)  # type: ignore[arg-type]
        return f"From: x\nDate: {date}\nSubject: s\n\n{text}"

    news = next(m.index for m in MAILS if m.kind == "newsletter")
    html = [m.index for m in MAILS if m.kind == "html_reply" and m.repeat_of is None][:2]
    bodies = [
        body_of(news, "news"),
        body_of(html[0], f"{mixgen.new_marker(html[0])} only"),
        body_of(html[1], f"{mixgen.new_marker(html[1])} {mixgen.history_marker(html[1])}"),
        body_of(html[1], "asked twice"),
    ]
    figures = Figures()
    read_requests(bodies, MAILS, figures)
    assert (figures.requests, figures.skipped_asked, figures.repeated) == (4, 1, 1)
    assert (figures.html_asked, figures.html_without_history, figures.html_with_new_text) == (
        2,
        1,
        2,
    )
