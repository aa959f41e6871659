"""html_to_text: readable lines from mail HTML, and no exception for broken markup."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muninmaild.mail import html as html_module
from muninmaild.mail.html import html_to_text


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("plain words", "plain words"),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<div>one</div><div>two</div>", "one\ntwo"),
        ("a<br>b", "a\nb"),
        ("a<br/><br/>b", "a\n\nb"),
        ("a</br>b", "a\nb"),
        ("<h1>Title</h1>text", "Title\n\ntext"),
        ("<blockquote>said</blockquote>reply", "> said\n\nreply"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<b>bold</b> and <i>italic</i>", "bold and italic"),
    ],
)
def test_block_elements_become_line_breaks(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_list_items_get_a_dash() -> None:
    assert html_to_text("<p>Agenda</p><ul><li>budget</li><li>dates</li></ul>") == (
        "Agenda\n\n- budget\n- dates"
    )


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<script>alert('x')</script>shown", "shown"),
        ("<style>p { color: red }</style>shown", "shown"),
        ("<head><title>Title</title><meta charset=utf-8></head><body>shown</body>", "shown"),
        ("<head><title>no closing head</title><body>shown", "shown"),
        ("<template><p>later</p></template>shown", "shown"),
        ("<!-- a comment -->shown", "shown"),
        ("<!--[if mso]><p>outlook only</p><![endif]-->shown", "shown"),
        ("<script>never closed", ""),
    ],
)
def test_invisible_contents_are_skipped(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("&lt;tag&gt;", "<tag>"),
        ("caf&eacute; &#233; &#xE9;", "café é é"),
        ("a&nbsp;&nbsp;b", "a b"),
        ("&bogus; stays", "&bogus; stays"),
    ],
)
def test_entities_are_unescaped(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("  lots   of\n\n  space\t here  ", "lots of space here"),
        ("<p>a</p>\n\n<p></p><p></p>\n<p>b</p>", "a\n\nb"),
        ("<div>\n  <div>\n  nested  </div>\n</div>", "nested"),
        ("<pre>line one\nline two</pre>", "line one\nline two"),
        ("Preview\u200c\u200b\u034f\ufeff text", "Preview text"),
        ("", ""),
    ],
)
def test_whitespace_is_collapsed_with_at_most_one_blank_line(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>unclosed <b>bold <i>and italic", "unclosed bold and italic"),
        ("a < b and c > d", "a < b and c > d"),
        ("text <a href='unterminated", "text <a href='unterminated"),
        ("</p></div>stray closers", "stray closers"),
        ("<![foo[bar]]>after the odd section", "after the odd section"),
        ("<!DOCTYPE html><html><body>doc</body></html>", "doc"),
        ("<p>ok</p><![CDATA[data]]>", "ok"),
        ("<<<>>>", "<<<>>>"),
        ("<![0 never closed", "<![0 never closed"),
    ],
)
def test_malformed_html_still_gives_its_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_parser_failure_falls_back_to_stripping_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(source: str) -> str:
        raise RuntimeError("parser broke")

    monkeypatch.setattr(html_module, "_run_parser", broken)
    assert html_to_text("<style>p{}</style><p>a &amp; b</p>\n\n\n<p>c</p>") == "a & b c"


def test_newsletter_layout_reads_top_to_bottom() -> None:
    html = """
    <html><head><style>.x{}</style></head><body>
    <table width="100%"><tr><td>
      <h2>Weekly news</h2>
      <p>Hello Ann,<br>here is what happened.</p>
      <table><tr><td>Item</td><td>Price</td></tr></table>
      <p><a href="https://example.org/unsub">Unsubscribe</a></p>
    </td></tr></table></body></html>
    """
    assert html_to_text(html) == (
        "Weekly news\n\nHello Ann,\nhere is what happened.\n\nItem Price\n\nUnsubscribe"
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                ["<p>", "</p>", "<br>", "<li>", "<script>", "</script>", "<head>", "<body>",
                 "<!--", "-->", "<![", "]]>", "<!", "&amp", "&#", "<pre>", "</", "<", ">", "\n",
                 "<blockquote>", "</blockquote>", '<div class="gmail_attr">', "<div>", "</div>"]
            ),
        ),
        max_size=30,
    )
)  # fmt: skip
def test_random_markup_never_raises_and_keeps_lines_tidy(pieces: list[str]) -> None:
    text = html_to_text("".join(pieces))
    assert isinstance(text, str)
    assert "\n\n\n" not in text
    assert text == text.strip()


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("new<blockquote>old</blockquote>", "new\n\n> old"),
        ("<blockquote><p>one</p><p>two</p></blockquote>", "> one\n\n> two"),
        ("<blockquote>a<br>b</blockquote>", "> a\n> b"),
        ("<blockquote>a<blockquote>b</blockquote>c</blockquote>", "> a\n\n> > b\n\n> c"),
        ("<blockquote><ul><li>x</li><li>y</li></ul></blockquote>", "> - x\n> - y"),
        ("<blockquote><pre>one\ntwo</pre></blockquote>", "> one\n> two"),
        ("<blockquote><table><tr><td>a</td><td>b</td></tr></table></blockquote>", "> a b"),
    ],
)
def test_blockquotes_come_out_behind_quote_marks(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    "attrs",
    [
        'class="gmail_attr"',
        'dir="ltr" class="gmail_attr"',
        'class="moz-cite-prefix"',
        'class="ydp5c1c3f0fyahoo_quoted" id="ydp5c1c3f0fyahoo_quoted_1234"',
        'id="yahoo_quoted_1234"',
        'class="protonmail_quote"',
    ],
)
def test_the_clients_quote_containers_are_quoted(attrs: str) -> None:
    html = f"<div>new</div><div {attrs}>On Tue, Ann wrote:<br><div>old</div></div><div>after</div>"
    assert html_to_text(html) == "new\n> On Tue, Ann wrote:\n> old\nafter"


@pytest.mark.parametrize(
    "attrs",
    ['class="gmail_quote"', 'id="divRplyFwdMsg"', 'id="appendonsend"', 'class="gmail_signature"'],
)
def test_containers_that_may_hold_a_forward_are_not_quoted(attrs: str) -> None:
    html = f"<div>new</div><div {attrs}>From: Ann<br>the content</div>"
    assert html_to_text(html) == "new\nFrom: Ann\nthe content"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("</blockquote></div>stray closers", "stray closers"),
        ("<blockquote>never closed", "> never closed"),
        ('<div class="gmail_attr">never closed', "> never closed"),
        ("<blockquote>a</blockquote></blockquote>b", "> a\n\nb"),
        ('<div class="gmail_attr"><div>a</div></div></div>b', "> a\nb"),
        ("<blockquote/>after", "after"),
        ("<blockquote>  </blockquote>after", "after"),
    ],
)
def test_unbalanced_quote_markup_keeps_the_depth_sane(html: str, expected: str) -> None:
    assert html_to_text(html) == expected
