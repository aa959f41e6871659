"""The answer schema sent to the model, and the validation of what comes back."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muninmaild.ai.schema import (
    SUMMARY_MAX_CHARS,
    TASK_MAX_CHARS,
    TODOS_MAX,
    answer_schema,
    parse_answer,
)
from muninmaild.errors import ModelAnswerInvalid
from muninmaild.records import Analysis

FLAGS = ("requires_response", "urgent", "meeting_request")


def answer(**changes: Any) -> str:
    base: dict[str, Any] = {
        "summary": "Anna asks for the Q3 report by Friday.",
        "flags": ["requires_response", "urgent"],
        "todos": [{"task": "Send the Q3 report to Anna", "priority": "high", "due": "2024-10-04"}],
    }
    base.update(changes)
    return json.dumps(base)


def todo(**changes: Any) -> dict[str, Any]:
    return {"task": "Call Bob", "priority": "low", "due": None, **changes}


def invalid(content: str | None) -> str:
    with pytest.raises(ModelAnswerInvalid) as caught:
        parse_answer(content, FLAGS)
    return str(caught.value)


# -- the schema --


def walk_objects(node: object) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found.extend(walk_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk_objects(value))
    return found


def test_schema_objects_are_closed_and_require_every_property() -> None:
    objects = walk_objects(answer_schema(FLAGS))
    assert len(objects) == 2  # the answer and a to-do
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])


def test_schema_lists_the_flags_and_priorities_as_enums() -> None:
    schema: Any = answer_schema(FLAGS)
    assert schema["properties"]["flags"]["items"]["enum"] == list(FLAGS)
    todo_props = schema["properties"]["todos"]["items"]["properties"]
    assert todo_props["priority"]["enum"] == ["low", "medium", "high"]


def test_schema_makes_due_nullable_through_any_of_not_a_type_list() -> None:
    schema: Any = answer_schema(FLAGS)
    due = schema["properties"]["todos"]["items"]["properties"]["due"]
    assert {"type": "null"} in due["anyOf"]
    assert "type" not in due
    assert all(not isinstance(node.get("type"), list) for node in walk_objects(schema))
    assert '"type": [' not in json.dumps(schema)


def test_schema_is_json_and_fresh_each_time() -> None:
    first = answer_schema(FLAGS)
    json.dumps(first)
    first["properties"] = {}
    assert answer_schema(FLAGS)["properties"] != {}


# -- good answers --


def test_parses_a_good_answer() -> None:
    analysis = parse_answer(answer(), FLAGS)
    assert analysis.summary == "Anna asks for the Q3 report by Friday."
    assert analysis.flags == ("requires_response", "urgent")
    assert len(analysis.todos) == 1
    assert analysis.todos[0].task == "Send the Q3 report to Anna"
    assert analysis.todos[0].priority == "high"
    assert analysis.todos[0].due == date(2024, 10, 4)


def test_accepts_whitespace_and_a_markdown_fence() -> None:
    fenced = f"\n  ```json\n{answer()}\n```  \n"
    assert parse_answer(fenced, FLAGS) == parse_answer(answer(), FLAGS)
    assert parse_answer(f"```\n{answer()}\n```", FLAGS) == parse_answer(answer(), FLAGS)


def test_drops_unknown_and_repeated_flags_keeping_order() -> None:
    content = answer(flags=["urgent", "spam", "urgent", " meeting_request "])
    assert parse_answer(content, FLAGS).flags == ("urgent", "meeting_request")


def test_null_due_and_empty_due_mean_no_date() -> None:
    content = answer(todos=[todo(due=None), todo(due="  ")])
    assert [t.due for t in parse_answer(content, FLAGS).todos] == [None, None]


def test_priority_is_read_whatever_its_case() -> None:
    content = answer(todos=[todo(priority="High"), todo(priority=" MEDIUM ")])
    assert [t.priority for t in parse_answer(content, FLAGS).todos] == ["high", "medium"]


def test_long_texts_and_lists_are_capped() -> None:
    content = answer(
        summary="s" * (SUMMARY_MAX_CHARS + 500),
        todos=[todo(task="t" * 1000)] * (TODOS_MAX + 5),
    )
    analysis = parse_answer(content, FLAGS)
    assert len(analysis.summary) == SUMMARY_MAX_CHARS
    assert len(analysis.todos) == TODOS_MAX
    assert all(len(t.task) == TASK_MAX_CHARS for t in analysis.todos)


def test_texts_are_stripped_and_extra_keys_ignored() -> None:
    content = answer(summary="  Hello.  ", mood="cheerful", todos=[todo(task=" Call Bob ", x=1)])
    analysis = parse_answer(content, FLAGS)
    assert analysis.summary == "Hello."
    assert analysis.todos[0].task == "Call Bob"


def test_empty_lists_are_fine() -> None:
    analysis = parse_answer(answer(flags=[], todos=[]), FLAGS)
    assert analysis.flags == ()
    assert analysis.todos == ()


# -- bad answers, each with a message a person can act on --


def test_not_json_says_so_with_the_position() -> None:
    message = invalid('{"summary": "x", ')
    assert message.startswith("the model's answer is not JSON: ")
    assert "line 1" in message


def test_empty_or_missing_content() -> None:
    assert invalid(None) == "the model's answer is empty"
    assert invalid("   \n") == "the model's answer is empty"


def test_answer_must_be_an_object() -> None:
    assert invalid("[1, 2]") == (
        "the model's answer breaks the schema: the answer must be an object, not an array"
    )


def test_missing_keys_are_named() -> None:
    message = invalid(json.dumps({"summary": "x"}))
    assert message == "the model's answer breaks the schema: the answer lacks flags, todos"
    assert "todos[0] lacks due" in invalid(answer(todos=[{"task": "x", "priority": "low"}]))


def test_bad_priority_names_its_place_and_the_choices() -> None:
    content = answer(todos=[todo(), todo(), todo(priority="urgent")])
    assert invalid(content) == (
        "the model's answer breaks the schema: todos[2].priority must be one of low, medium, high"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"summary": 42}, "summary must be a string, not a number"),
        ({"summary": "   "}, "summary must not be empty"),
        ({"summary": None}, "summary must be a string, not null"),
        ({"flags": "urgent"}, "flags must be an array, not a string"),
        ({"flags": ["urgent", 3]}, "flags[1] must be a string, not a number"),
        ({"todos": {}}, "todos must be an array, not an object"),
        ({"todos": ["call"]}, "todos[0] must be an object, not a string"),
        ({"todos": [todo(task="")]}, "todos[0].task must not be empty"),
        ({"todos": [todo(task=True)]}, "todos[0].task must be a string, not true/false"),
        ({"todos": [todo(priority=None)]}, "todos[0].priority must be one of low, medium, high"),
        ({"todos": [todo(due=20241004)]}, "todos[0].due must be a date (YYYY-MM-DD) or null"),
        ({"todos": [todo(due="2024-02-30")]}, "todos[0].due must be a date (YYYY-MM-DD) or null"),
        ({"todos": [todo(due="04/10/2024")]}, "todos[0].due must be a date (YYYY-MM-DD) or null"),
        ({"todos": [todo(due="20241004")]}, "todos[0].due must be a date (YYYY-MM-DD) or null"),
        ({"todos": [todo(due="next Friday")]}, "'next Friday'"),
    ],
)
def test_wrong_types_and_values_are_rejected(changes: dict[str, Any], expected: str) -> None:
    message = invalid(answer(**changes))
    assert message.startswith("the model's answer breaks the schema: ")
    assert expected in message


def test_a_fence_around_garbage_is_still_garbage() -> None:
    assert invalid("```json\nnot json\n```").startswith("the model's answer is not JSON")


def test_deeply_nested_json_is_rejected_not_crashing() -> None:
    assert invalid("[" * 100_000 + "]" * 100_000).startswith("the model's answer")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["summary", "flags", "todos", "task", "priority", "due", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def outcome(content: str) -> Analysis | str:
    """The analysis, or the message of the rejection: anything else escaping is a bug."""
    try:
        return parse_answer(content, FLAGS)
    except ModelAnswerInvalid as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_any_json_is_either_parsed_or_rejected_cleanly(value: object) -> None:
    result = outcome(json.dumps(value))
    if isinstance(result, str):
        assert result.startswith("the model's answer")
    else:
        assert result.summary
        assert set(result.flags) <= set(FLAGS)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_is_either_parsed_or_rejected_cleanly(text: str) -> None:
    result = outcome(text)
    assert isinstance(result, Analysis) or result.startswith("the model's answer")
