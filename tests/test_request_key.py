"""The answer cache's key: the same request hits, any change of what the model would see misses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from muninmaild.ai import prompt, request_key
from muninmaild.ai.base import ModelInput
from muninmaild.ai.budget import RateBudget
from muninmaild.ai.exchange import Exchange, Messages, Reply
from muninmaild.ai.prepare import model_input
from muninmaild.ai.request_key import rendered_request
from muninmaild.config.settings import DEFAULT_FLAGS, AISettings, FlagSpec
from muninmaild.records import ClaimedMessage, TokenUsage

SETTINGS = AISettings(backend="cerebras", model="gpt-oss-120b")
BODY = "Hello Robin,\n\nplease send the Q4 figures by Friday.\n\nAnn\n"
HISTORY = "\n\nOn Mon, 23 Nov 2026 at 09:00, Robin <robin@example.com> wrote:\n> The old thread.\n"


def claimed(email_id: int = 1, body: str = BODY, **changes: Any) -> ClaimedMessage:
    values: dict[str, Any] = {
        "id": email_id,
        "token": "t#1",
        "attempts": 1,
        "account": "work",
        "subject": "Q4 figures",
        "from_addr": "Ann <ann@example.com>",
        "to_addrs": "robin@example.com",
        "sent_at": datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        "body_text": body,
        "headers": {"in-reply-to": "<a@example.com>"},
    }
    return ClaimedMessage(**(values | changes))


def key(msg: ClaimedMessage, settings: AISettings = SETTINGS, *, send_body: bool = True) -> str:
    item = model_input(msg, settings.max_input_chars, send_body=send_body)
    return request_key.request_key(item, settings)


def test_the_same_request_has_the_same_key_whatever_the_message_s_id_or_account() -> None:
    first = key(claimed(1))
    assert key(claimed(2, account="home", token="t#9", attempts=3)) == first
    assert len(first) == 64 and int(first, 16) >= 0


def test_the_key_is_of_the_trimmed_input_history_and_signature_left_out() -> None:
    """Two replies that differ only in the quoted history the trimming drops share a key."""
    assert key(claimed(body=BODY + HISTORY)) == key(claimed(body=BODY))


@pytest.mark.parametrize(
    "change",
    [
        {"body_text": BODY.replace("Friday", "Monday")},
        {"subject": "Q4 figures, again"},
        {"from_addr": "Ann <ann@example.org>"},
        {"to_addrs": "someone@example.com"},
        {"sent_at": datetime(2026, 11, 28, 9, 0, tzinfo=UTC)},  # "by Friday" means another day
        {"headers": {}},  # no longer a reply
        {"headers": {"in-reply-to": "<a@example.com>", "list-id": "<team>"}},
        {"attachment_names": ("q4.xlsx",)},
        {"has_calendar": True},
    ],
)
def test_any_change_of_the_message_the_model_sees_misses(change: dict[str, Any]) -> None:
    assert key(claimed(**change)) != key(claimed())


def test_a_withheld_body_is_another_request() -> None:
    assert key(claimed(), send_body=False) != key(claimed())
    # ... and then the body no longer matters: the model does not see it.
    assert key(claimed(), send_body=False) == key(claimed(body="other"), send_body=False)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "llama-3.3-70b"},
        {"language": "German"},
        {"language": "auto"},
        {"flags": (*DEFAULT_FLAGS, FlagSpec("invoice", "A bill."))},
        {"flags": (FlagSpec("urgent", "Needs action today."), *DEFAULT_FLAGS[:1])},
        {"flags": (replace(DEFAULT_FLAGS[0], description="Another description."),)},
        {"reasoning_effort": "high"},
        {"reasoning_effort": "omit"},
        {"max_completion_tokens": 2048},
        {"max_input_chars": 30},  # the body is cut shorter
        {"base_url": "https://other.example"},
        {"backend": "openai"},
    ],
)
def test_any_change_of_the_settings_misses(change: dict[str, Any]) -> None:
    assert key(claimed(), replace(SETTINGS, **change)) != key(claimed())


def test_settings_that_change_nothing_sent_keep_the_key() -> None:
    """Budgets, time-outs and the cache's own bounds are not part of the request."""
    same = replace(
        SETTINGS, requests_per_minute=1, timeout=5.0, cache_days=1, cache_entries=1, skip=("bulk",)
    )
    assert key(claimed(), same) == key(claimed())
    # A trailing slash on the address is the same server.
    assert key(claimed(), replace(SETTINGS, base_url="https://api.cerebras.ai/")) == key(claimed())


def test_the_openai_backend_s_structured_output_mode_is_part_of_the_request() -> None:
    openai = AISettings(backend="openai", model="m", base_url="http://localhost:11434/v1")
    modes = ("json_schema", "json_object", "prompt")
    keys = {key(claimed(), replace(openai, structured_output=mode)) for mode in modes}  # type: ignore[arg-type]
    assert len(keys) == 3
    # Without a schema the prompt spells the shape out, as the backend's first request does.
    item = model_input(claimed(), 12000)
    rendered = rendered_request(item, replace(openai, structured_output="prompt"))
    assert prompt._SHAPE in rendered["messages"][0]["content"]
    assert rendered["schema"] is None


def test_a_new_prompt_version_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    before = key(claimed())
    monkeypatch.setattr(request_key, "PROMPT_VERSION", prompt.PROMPT_VERSION + 1)
    assert key(claimed()) != before


@pytest.mark.parametrize(
    "settings",
    [
        SETTINGS,
        AISettings(backend="openai", model="m", base_url="http://h/v1", structured_output="prompt"),
    ],
)
async def test_the_rendered_request_is_what_the_exchange_sends(settings: AISettings) -> None:
    """The key hashes the very messages a backend's exchange sends, and its room."""
    sent: list[tuple[Messages, int]] = []

    async def send(messages: Messages, room: int) -> Reply:
        sent.append((messages, room))
        answer = '{"summary": "s", "flags": [], "todos": []}'
        return Reply(answer, "stop", TokenUsage(10, 2), settings.model)

    spell_out = request_key.spells_out(settings)
    exchange = Exchange(settings, RateBudget(), reask=False, spell_out=lambda: spell_out)
    item: ModelInput = model_input(claimed(), settings.max_input_chars)
    await exchange.run(item, send, settings.model)
    rendered = rendered_request(item, settings)
    assert sent == [(rendered["messages"], rendered["max_completion_tokens"])]
    assert rendered["model"] == settings.model


def test_the_rendered_request_names_the_schema_and_the_effort() -> None:
    rendered = rendered_request(model_input(claimed(), 12000), SETTINGS)
    assert rendered["reasoning_effort"] == "low"  # gpt-oss, unset: what the backend sends
    assert rendered["schema"]["properties"]["flags"]["items"]["enum"] == [
        f.name for f in DEFAULT_FLAGS
    ]
