"""The JSON schema of one model answer, and the validation of an answer against it.

The schema is sent with every request (structured output, strict mode), and the answer is still
validated here: an OpenAI-compatible server may ignore the schema, and a strict server's answer can
be cut short. The schema keeps to the keywords every strict implementation accepts (type,
properties, required, additionalProperties, items, enum, anyOf) and carries no descriptions
(Cerebras documents informational fields as unsupported; the system prompt says the same words);
uniqueness, length caps and the date format are enforced by `parse_answer`, because an
unsupported keyword would make the server reject every request. Cerebras accepts at most 5,000
characters of schema and 500 enum values: `check_flags` refuses a flag list that breaks either
when the configuration is loaded.

Tolerance: harmless slips are repaired (whitespace, a `<think>` block or other text before the
JSON, a Markdown code fence around it, unknown or repeated flags, a priority in capitals, extra
keys, an empty due date, over-long text, too many to-dos); anything that changes the meaning
(wrong types, missing keys, an empty summary or task, a date that is not a date) makes the whole
answer invalid, so it is asked again or retried.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date

from muninmaild.config.settings import FlagSpec
from muninmaild.errors import ConfigError, ModelAnswerInvalid
from muninmaild.records import PRIORITIES, Analysis, Priority, Todo

SUMMARY_MAX_CHARS = 2000
TASK_MAX_CHARS = 300
TODOS_MAX = 20
# Cerebras' documented limits for structured outputs.
SCHEMA_MAX_CHARS = 5000
ENUM_MAX_VALUES = 500

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(?P<body>.*?)\n?[ \t]*```", re.DOTALL)
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_ISO_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


def answer_schema(flag_names: Sequence[str]) -> dict[str, object]:
    """The strict JSON schema for one answer, with `flag_names` as the only allowed flags."""
    todo: dict[str, object] = {
        "type": "object",
        "properties": {
            "task": {"type": "string"},
            "priority": {"type": "string", "enum": list(PRIORITIES)},
            "due": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["task", "priority", "due"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "flags": {"type": "array", "items": {"type": "string", "enum": list(flag_names)}},
            "todos": {"type": "array", "items": todo},
        },
        "required": ["summary", "flags", "todos"],
        "additionalProperties": False,
    }


def check_flags(flags: Sequence[FlagSpec]) -> None:
    """Refuse flags whose schema the model service would refuse: a `ConfigError` on `ai.flags`."""
    names = [flag.name for flag in flags]
    size = len(json.dumps(answer_schema(names)))
    if size > SCHEMA_MAX_CHARS:
        raise ConfigError(
            "ai.flags",
            f"{len(names)} flags make the answer's schema {size} characters long; the model "
            f"service accepts at most {SCHEMA_MAX_CHARS}: use fewer or shorter flag names",
        )
    values = len(names) + len(PRIORITIES)
    if values > ENUM_MAX_VALUES:
        raise ConfigError(
            "ai.flags",
            f"{len(names)} flags are too many; the model service accepts at most "
            f"{ENUM_MAX_VALUES - len(PRIORITIES)}",
        )


def parse_answer(content: str | None, flag_names: Sequence[str]) -> Analysis:
    """Validate the model's answer text; raise `ModelAnswerInvalid` saying what is wrong."""
    data = _load(content)
    answer = _as_object(data, "the answer")
    _require_keys(answer, ("summary", "flags", "todos"), "the answer")
    return Analysis(
        summary=_text(answer["summary"], "summary", SUMMARY_MAX_CHARS),
        flags=_flags(answer["flags"], flag_names),
        todos=_todos(answer["todos"]),
    )


def _load(content: str | None) -> object:
    if content is None or not content.strip():
        raise ModelAnswerInvalid("the model's answer is empty")
    text = json_text(content)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Position only: the text is about someone's mail and ends up in `last_error`.
        where = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise ModelAnswerInvalid(f"the model's answer is not JSON: {where}") from None
    except RecursionError:
        raise ModelAnswerInvalid("the model's answer is not JSON: nested too deeply") from None


def json_text(content: str) -> str:
    """The JSON in an answer: without `<think>` blocks, code fences or words around it."""
    text = _THINK.sub("", content).strip()
    if text.startswith(("{", "[")):
        return text
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group("body").strip()
    if not text.startswith(("{", "[")):
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            text = text[start : end + 1]
    return text


def _broken(where: str, problem: str) -> ModelAnswerInvalid:
    return ModelAnswerInvalid(f"the model's answer breaks the schema: {where} {problem}")


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "true/false"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "unknown")


def _as_object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _broken(where, f"must be an object, not {_type_name(value)}")
    return value


def _as_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise _broken(where, f"must be an array, not {_type_name(value)}")
    return value


def _require_keys(obj: Mapping[str, object], keys: Sequence[str], where: str) -> None:
    missing = [key for key in keys if key not in obj]
    if missing:
        raise _broken(where, "lacks " + ", ".join(missing))


def _text(value: object, where: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _broken(where, f"must be a string, not {_type_name(value)}")
    text = value.strip()
    if not text:
        raise _broken(where, "must not be empty")
    return text[:limit].rstrip()


def _flags(value: object, flag_names: Sequence[str]) -> tuple[str, ...]:
    known = set(flag_names)
    chosen: list[str] = []
    for index, flag in enumerate(_as_list(value, "flags")):
        if not isinstance(flag, str):
            raise _broken(f"flags[{index}]", f"must be a string, not {_type_name(flag)}")
        # An unknown or repeated flag carries no meaning we could store: drop it quietly.
        name = flag.strip()
        if name in known and name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def _todos(value: object) -> tuple[Todo, ...]:
    items = _as_list(value, "todos")
    return tuple(_todo(item, f"todos[{index}]") for index, item in enumerate(items[:TODOS_MAX]))


def _todo(value: object, where: str) -> Todo:
    todo = _as_object(value, where)
    _require_keys(todo, ("task", "priority", "due"), where)
    return Todo(
        task=_text(todo["task"], f"{where}.task", TASK_MAX_CHARS),
        priority=_priority(todo["priority"], f"{where}.priority"),
        due=_due(todo["due"], f"{where}.due"),
    )


def _priority(value: object, where: str) -> Priority:
    wanted = ", ".join(PRIORITIES)
    if isinstance(value, str):
        for priority in PRIORITIES:
            if value.strip().lower() == priority:
                return priority
    raise _broken(where, f"must be one of {wanted}")


def _due(value: object, where: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise _broken(where, f"must be a date (YYYY-MM-DD) or null, not {_type_name(value)}")
    text = value.strip()
    if _ISO_DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise _broken(where, f"must be a date (YYYY-MM-DD) or null, not {text[:20]!r}")
