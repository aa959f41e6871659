"""HTML replies reach the model with their new text and without their quoted history.

The corpus (tests/data/html_replies, see its README) holds one reply per client and language
shape; each file names the lines that must reach the model and the history that must not.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muninmaild.ai.prepare import model_input
from muninmaild.mail.html import html_to_text
from muninmaild.mail.parse import parse_message
from muninmaild.mail.trim import trim_for_model
from muninmaild.records import ClaimedMessage

BIG = 100_000
CORPUS = Path(__file__).parent / "data" / "html_replies"
LANGUAGES = {"en", "de", "fr", "es", "it", "nl", "pt", "ru", "pl", "sv"}
CLIENTS = {"gmail", "thunderbird", "apple", "yahoo", "outlook", "blockquote"}


@dataclass(frozen=True)
class Sample:
    name: str
    body: str
    keep: tuple[str, ...]
    drop: tuple[str, ...]


def _load(path: Path) -> Sample:
    head, body = path.read_text(encoding="utf-8").split("-->", 1)
    lines = head.splitlines()
    return Sample(
        name=path.name,
        body=body,
        keep=tuple(line.removeprefix("keep: ") for line in lines if line.startswith("keep: ")),
        drop=tuple(line.removeprefix("drop: ") for line in lines if line.startswith("drop: ")),
    )


SAMPLES = [_load(path) for path in sorted(CORPUS.glob("*.html"))]
REPLIES = [sample for sample in SAMPLES if sample.drop]
INLINE = [sample for sample in SAMPLES if "inline" in sample.name]


def _model_body(source: str) -> str:
    return trim_for_model(html_to_text(source), BIG)


def test_corpus_covers_every_client_and_language() -> None:
    parts = {piece for sample in SAMPLES for piece in sample.name[:-5].split("_")}
    assert parts >= LANGUAGES | CLIENTS
    assert len(REPLIES) >= 50
    assert all(sample.keep for sample in SAMPLES)
    assert len(INLINE) >= 2


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.name for sample in SAMPLES])
def test_model_input_holds_the_new_text_and_none_of_the_history(sample: Sample) -> None:
    body = _model_body(sample.body)
    for line in sample.keep:
        assert line in body
    for piece in sample.drop:
        assert piece not in body


@pytest.mark.parametrize("sample", INLINE, ids=[sample.name for sample in INLINE])
def test_answers_between_quotes_are_all_kept_in_order(sample: Sample) -> None:
    body = _model_body(sample.body)
    positions = [body.find(answer) for answer in sample.keep]
    assert -1 not in positions
    assert positions == sorted(positions)


@pytest.mark.parametrize("sample", REPLIES[:: len(REPLIES) // 8], ids=lambda sample: sample.name)
def test_html_only_mail_reaches_the_model_without_its_history(sample: Sample) -> None:
    raw = (
        b"From: Bob Example <bob@example.org>\r\nTo: Ann Example <ann@example.org>\r\n"
        b"Subject: Re: Plan\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    ) + sample.body.replace("\n", "\r\n").encode()
    parsed = parse_message(raw)
    assert parsed.body_was_html
    claimed = ClaimedMessage(
        id=1,
        token="t",
        attempts=0,
        account="main",
        subject=parsed.subject,
        from_addr=parsed.from_addr,
        to_addrs=parsed.to_addrs,
        sent_at=None,
        body_text=parsed.body_text,
    )
    body = model_input(claimed, BIG).body
    assert all(line in body for line in sample.keep)
    assert not any(piece in body for piece in sample.drop)


# History shapes to put below generated new text: {} is left for nothing, the shapes are whole.
_GQ = 'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"'
_HTML_HISTORIES = [
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Mar 3, 2026 at 10:04 AM'
    f' Ann &lt;ann@example.org&gt; wrote:<br></div><blockquote class="gmail_quote" {_GQ}>'
    "<div>The old question?</div></blockquote></div>",
    '<div class="moz-cite-prefix">Am 03.03.26 um 10:04 schrieb Ann Example:<br></div>'
    '<blockquote type="cite"><p>Die alte Frage?</p></blockquote>',
    '<div dir="ltr"><br>3 марта 2026 г., в 10:04, Ann &lt;ann@example.org&gt; написал(а):<br>'
    '<br></div><blockquote type="cite"><div dir="ltr">Старый вопрос?</div></blockquote>',
    '<div class="ydp1yahoo_quoted" id="ydp1yahoo_quoted_1"><div>El martes, 3 de marzo de 2026,'
    " 10:04, Ann &lt;ann@example.org&gt; escribió:</div><div>¿La vieja pregunta?</div></div>",
    '<div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>Od:</b> Ann<br><b>Wysłane:</b>'
    " wtorek<br><b>Do:</b> Bob<br><b>Temat:</b> Plan</div><div>Stare pytanie?</div>",
    "<blockquote><p>A quote without attribution.</p></blockquote>",
]
_FIRST_WORDS = ["Thanks", "Yes", "Budget", "Danke", "Merci", "Grazie", "Спасибо", "Tack"]
_TRICKY_WORDS = [
    "wrote:",
    "schrieb",
    "пишет:",
    "On",
    "From:",
    "Sent:",
    "--",
    ">",
    "<ann@example.org>:",
    "10:04",
    "---------- Forwarded message ---------",
    "Begin forwarded message:",
    "-----Original Message-----",
]
_WORD = st.one_of(
    st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=10),
    st.sampled_from(_TRICKY_WORDS),
)
_NEW_LINE = st.builds(
    lambda first, rest: " ".join([first, *rest]) + ".",
    st.sampled_from(_FIRST_WORDS),
    st.lists(_WORD, max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(
    new=st.lists(_NEW_LINE, min_size=1, max_size=5),
    history=st.sampled_from(_HTML_HISTORIES),
    paragraphs=st.booleans(),
)
def test_new_text_above_an_html_quote_is_all_that_remains(
    new: list[str], history: str, paragraphs: bool
) -> None:
    tag = "p" if paragraphs else "div"
    source = "".join(f"<{tag}>{html.escape(line)}</{tag}>" for line in new) + history
    result = _model_body(source)
    assert [line for line in result.split("\n") if line] == [" ".join(line.split()) for line in new]
