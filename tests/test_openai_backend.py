"""The `openai` backend through the official `openai` package, against the fake server in each
of its flavours: as documented for Cerebras, a local server that ignores the schema and wraps
its JSON, one whose first answers break the schema, one that refuses `json_schema`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from muninmaild.ai.budget import RateBudget
from muninmaild.ai.openai_backend import OpenAIBackend
from muninmaild.ai.prompt import build_messages
from muninmaild.config.settings import DEFAULT_FLAGS, AISettings, Secret
from muninmaild.errors import (
    ModelAccountError,
    ModelAnswerInvalid,
    ModelAuthError,
    ModelError,
    ModelQuotaSpent,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from tests.fakes.model_server import FLAVOURS, FakeModelServer
from tests.test_cerebras_backend import make_item

KEY = "sk-local-3b1f0a9c"


def make_settings(base_url: str, **changes: Any) -> AISettings:
    fields: dict[str, Any] = {
        "backend": "openai",
        "base_url": base_url,
        "model": "qwen3:4b",
        "timeout": 2.0,
        "requests_per_minute": 0,
        "tokens_per_minute": 0,
        "requests_per_hour": 0,
        "requests_per_day": 0,
        "tokens_per_hour": 0,
        "tokens_per_day": 0,
    }
    return AISettings(**(fields | changes))


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer(tokens_per_minute=10**9, requests_per_day=10**9) as running:
        yield running


async def backend_for(server: FakeModelServer, **changes: Any) -> OpenAIBackend:
    return OpenAIBackend(make_settings(server.base_url + "/v1", **changes), RateBudget())


@pytest.fixture
async def backend(server: FakeModelServer) -> AsyncIterator[OpenAIBackend]:
    made = await backend_for(server)
    yield made
    await made.aclose()


async def analyse_all(made: OpenAIBackend, count: int = 3) -> None:
    try:
        for n in range(count):
            answer = await made.analyse(make_item(email_id=n, subject=f"Report {n}"))
            assert answer.analysis.summary == f"Summary of: Report {n}"
            assert answer.analysis.flags == ("urgent",)
            assert len(answer.analysis.todos) == 1
    finally:
        await made.aclose()


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "prompt"])
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_every_message_completes_against_every_server_in_every_mode(
    server: FakeModelServer, flavour: str, mode: str
) -> None:
    server.flavour = flavour
    await analyse_all(await backend_for(server, structured_output=mode))


async def test_the_request_in_json_schema_mode(
    backend: OpenAIBackend, server: FakeModelServer
) -> None:
    item = make_item()
    await backend.analyse(item)
    [request] = server.recorded()
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer none"  # no key: a placeholder
    body = request.json()
    assert set(body) == {"model", "messages", "temperature", "max_tokens", "response_format"}
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["messages"] == build_messages(item, DEFAULT_FLAGS, max_body_chars=12000)


@pytest.mark.parametrize(
    ("mode", "format_type"), [("json_object", "json_object"), ("prompt", None)]
)
async def test_other_modes_spell_the_shape_out_in_the_prompt(
    server: FakeModelServer, mode: str, format_type: str | None
) -> None:
    made = await backend_for(server, structured_output=mode)
    try:
        await made.analyse(make_item())
    finally:
        await made.aclose()
    body = server.last_bodies()[-1]
    assert body.get("response_format", {}).get("type") == format_type
    assert '"todos": [{"task"' in body["messages"][0]["content"]


async def test_a_local_server_ignoring_the_schema_is_read_through_think_and_fence(
    backend: OpenAIBackend, server: FakeModelServer
) -> None:
    server.flavour = "local"
    answer = await backend.analyse(make_item())
    assert answer.analysis.flags == ("urgent",)
    assert server.requests == 1


async def test_an_invalid_answer_is_asked_again_once_with_the_validation_error(
    backend: OpenAIBackend, server: FakeModelServer
) -> None:
    server.flavour = "sloppy"
    answer = await backend.analyse(make_item())
    assert answer.analysis.summary == "Summary of: Quarterly numbers"
    first, second = server.last_bodies()
    assert len(second["messages"]) == len(first["messages"]) + 2
    said, correction = second["messages"][-2:]
    assert said["role"] == "assistant" and "<think>" in said["content"]
    assert correction["role"] == "user"
    assert "answer breaks the schema: the answer lacks flags, todos" in correction["content"]
    assert answer.usage.tokens_in > 0 and server.requests == 2


async def test_an_answer_invalid_twice_costs_the_attempt(
    backend: OpenAIBackend, server: FakeModelServer
) -> None:
    server.queue_faults("bad_schema", "bad_schema")
    with pytest.raises(ModelAnswerInvalid, match="breaks the schema") as caught:
        await backend.analyse(make_item())
    assert caught.value.usage.tokens_in > 0
    assert server.requests == 2


async def test_a_refused_json_schema_falls_back_to_json_object_and_remembers(
    backend: OpenAIBackend, server: FakeModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server.flavour = "no_json_schema"
    for _ in range(3):
        assert (await backend.analyse(make_item())).analysis.flags == ("urgent",)
    kinds = [body["response_format"]["type"] for body in server.last_bodies()]
    assert kinds == ["json_schema", "json_object", "json_object", "json_object"]
    assert backend.mode == "json_object"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "refused structured output 'json_schema'" in warning and "using 'json_object'" in warning


async def test_a_500_naming_response_format_is_a_refused_mode_too() -> None:
    # What llama-cpp-python's server (0.3.36) answers to json_schema, seen with a real one.
    said = (
        "1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', "
        "'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}"
    )
    kinds: list[str | None] = []

    def llama_cpp_python(request: httpx.Request) -> httpx.Response:
        body = httpx.Response(200, content=request.content).json()
        kinds.append(body.get("response_format", {}).get("type"))
        if kinds[-1] == "json_schema":
            return httpx.Response(500, json={"error": {"message": said, "type": "internal"}})
        return httpx.Response(200, json=completion('{"summary": "s", "flags": [], "todos": []}'))

    made = mocked(llama_cpp_python)
    try:
        await made.analyse(make_item())
        await made.analyse(make_item())
    finally:
        await made.aclose()
    assert kinds == ["json_schema", "json_object", "json_object"]


async def test_a_500_about_something_else_is_the_server_failing() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "out of memory"}})

    made = mocked(broken)
    try:
        with pytest.raises(ModelUnavailable, match="HTTP 500"):
            await made.analyse(make_item())
        assert made.mode == "json_schema"
    finally:
        await made.aclose()


async def test_a_400_in_every_mode_is_the_requests_fault_not_the_modes() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "context length exceeded"}})

    made = mocked(refuse)
    try:
        with pytest.raises(ModelRequestRejected, match="context length exceeded"):
            await made.analyse(make_item())
        assert made.mode == "json_schema"  # nothing learnt from it
    finally:
        await made.aclose()


async def test_a_server_wanting_max_completion_tokens_gets_it_from_then_on() -> None:
    sent: list[set[str]] = []

    def reasoning_model(request: httpx.Request) -> httpx.Response:
        body = httpx.Response(200, content=request.content).json()
        sent.append(set(body))
        if "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return httpx.Response(400, json={"error": {"message": message}})
        return httpx.Response(200, json=completion('{"summary": "s", "flags": [], "todos": []}'))

    made = mocked(reasoning_model)
    try:
        await made.analyse(make_item())
        await made.analyse(make_item())
    finally:
        await made.aclose()
    assert ["max_tokens" in s for s in sent] == [True, False, False]
    assert all("max_completion_tokens" in s for s in sent[1:])


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        ("401", ModelAuthError, "refused the API key (HTTP 401)"),
        ("402", ModelAccountError, "wants payment (HTTP 402)"),
        ("404", ModelAccountError, "check ai.model ('qwen3:4b')"),
        ("429", ModelRateLimited, "rate limiting us (HTTP 429)"),
        ("daily_quota", ModelQuotaSpent, "model quota spent until"),
        ("503", ModelUnavailable, "HTTP 503"),
        ("drop", ModelUnavailable, "cannot reach the model server"),
        ("malformed_json", ModelUnavailable, "not a chat completion"),
    ],
)
async def test_faults_map_onto_the_error_tree(
    server: FakeModelServer, fault: str, kind: type[ModelError], words: str
) -> None:
    made = await backend_for(server, api_key=Secret(KEY))
    server.queue_faults(fault)
    try:
        with pytest.raises(kind) as caught:
            await made.analyse(make_item())
    finally:
        await made.aclose()
    assert words in str(caught.value)
    assert KEY not in str(caught.value)
    assert server.requests == 1  # no retries inside the client


async def test_a_timeout_is_said_in_the_settings_words(server: FakeModelServer) -> None:
    server.hold_s = 1.0
    made = await backend_for(server, timeout=0.3)
    server.queue_faults("timeout")
    try:
        with pytest.raises(ModelUnavailable, match=r"did not answer within 0\.3 s"):
            await made.analyse(make_item())
    finally:
        await made.aclose()


async def test_the_key_is_sent_when_there_is_one(server: FakeModelServer) -> None:
    made = await backend_for(server, api_key=Secret(KEY))
    try:
        await made.analyse(make_item())
    finally:
        await made.aclose()
    assert server.recorded()[-1].headers["authorization"] == f"Bearer {KEY}"


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "qwen3:4b",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def mocked(handler: Any) -> OpenAIBackend:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAIBackend(make_settings("http://model.test/v1"), RateBudget(), client)
