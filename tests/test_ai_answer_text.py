"""What local servers wrap around the JSON, taken off; the language and privacy of the prompt."""

from __future__ import annotations

import json

import pytest

from muninmaild.ai.prompt import BODY_START, WITHHELD, build_messages, system_prompt
from muninmaild.ai.schema import answer_schema, json_text, parse_answer
from muninmaild.config.settings import DEFAULT_FLAGS
from muninmaild.errors import ModelAnswerInvalid
from tests.test_ai_prompt import make_item
from tests.test_ai_schema import FLAGS, answer


@pytest.mark.parametrize(
    "wrapped",
    [
        "<think>\nThe user wants JSON.\n</think>\n{json}",
        "<think>Is it {{urgent}}? Yes.</think>\n\n```json\n{json}\n```",
        "<THINKING>hm</THINKING>{json}",
        "Here is the triage:\n```\n{json}\n```\nAnything else?",
        "Sure! {json} Hope that helps.",
    ],
)
def test_think_blocks_fences_and_words_around_the_json_are_dropped(wrapped: str) -> None:
    content = wrapped.format(json=answer())
    assert parse_answer(content, FLAGS) == parse_answer(answer(), FLAGS)


def test_a_fence_inside_a_json_string_is_left_alone() -> None:
    content = answer(summary="He pasted ```code``` into the mail.")
    assert json_text(content) == content.strip()
    assert "```code```" in parse_answer(content, FLAGS).summary


def test_an_unclosed_think_block_is_no_answer() -> None:
    with pytest.raises(ModelAnswerInvalid, match="not JSON"):
        parse_answer("<think>The email asks for the report, so", FLAGS)


def test_the_schema_carries_no_informational_fields() -> None:
    assert "description" not in json.dumps(answer_schema(FLAGS))


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("English", "written in English whatever the email's language"),
        ("German", "written in German whatever the email's language"),
        ("auto", "written in the language the email is written in"),
    ],
)
def test_the_language_of_summaries_and_todos(language: str, words: str) -> None:
    system = system_prompt(DEFAULT_FLAGS, language)
    assert words in system
    task_language = "the email's language" if language == "auto" else language
    assert f"(a short imperative sentence in {task_language})" in system


def test_the_shape_is_spelled_out_only_when_asked() -> None:
    assert '"todos": [{"task"' not in system_prompt(DEFAULT_FLAGS)
    assert '"todos": [{"task"' in system_prompt(DEFAULT_FLAGS, spell_out=True)


def test_a_withheld_body_is_said_and_never_sent() -> None:
    item = make_item(body="", body_withheld=True, attachment_names=("offer.pdf",))
    user = build_messages(item, DEFAULT_FLAGS)[1]["content"]
    assert BODY_START not in user
    assert user.endswith(WITHHELD)
    assert "Subject: Q3 report" in user and "attachments: offer.pdf" in user
