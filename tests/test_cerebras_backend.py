"""The cerebras backend through the real SDK client against the project's own fake model server."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from muninmaild.ai.base import Backend, ModelAnswer, ModelInput
from muninmaild.ai.budget import RateBudget
from muninmaild.ai.cerebras import CerebrasBackend, normalise_base_url, retry_after_seconds
from muninmaild.ai.prompt import build_messages
from muninmaild.ai.schema import answer_schema
from muninmaild.config.settings import DEFAULT_FLAGS, AISettings, Secret
from muninmaild.errors import (
    ConfigError,
    ModelAccountError,
    ModelAnswerInvalid,
    ModelAuthError,
    ModelError,
    ModelQuotaSpent,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from tests.fakes.model_server import FakeModelServer

KEY = "csk-test-3f9a7c21e5b84d06a1c2"
REPO = Path(__file__).resolve().parents[1]
REQUEST_KEYS = {
    "model",
    "messages",
    "response_format",
    "max_completion_tokens",
    "temperature",
    "reasoning_effort",
}


def make_item(**changes: Any) -> ModelInput:
    fields: dict[str, Any] = {
        "email_id": 1,
        "subject": "Quarterly numbers",
        "from_addr": "Anna <anna@example.com>",
        "to_addrs": "me@example.com",
        "date": "Mon, 30 Sep 2024 09:15:00 +0200",
        "body": "Hi, please send the report by 2024-10-04. It is urgent.\n\nAnna",
        "headers": {"list-unsubscribe": "<mailto:x@example.com>"},
        "attachment_names": ("numbers.xlsx",),
    }
    fields.update(changes)
    return ModelInput(**fields)


def make_settings(base_url: str, **changes: Any) -> AISettings:
    fields: dict[str, Any] = {
        "backend": "cerebras",
        "base_url": base_url,
        "api_key": Secret(KEY),
        "timeout": 0.5,
        "max_completion_tokens": 512,
    }
    fields.update(changes)
    return AISettings(**fields)


def roomy_budget() -> RateBudget:
    return RateBudget(10_000, 100_000_000)


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer(hold_s=3.0) as running:
        yield running


@pytest.fixture
async def backend(server: FakeModelServer) -> AsyncIterator[CerebrasBackend]:
    made = CerebrasBackend(make_settings(server.base_url + "/v1/"), roomy_budget())
    yield made
    await made.aclose()


async def expect_error(backend: CerebrasBackend, kind: type[ModelError]) -> ModelError:
    with pytest.raises(kind) as caught:
        await backend.analyse(make_item())
    return caught.value


async def answer_from(
    settings: AISettings, budget: RateBudget | None = None, item: ModelInput | None = None
) -> ModelAnswer:
    """The answer to one request by a backend made for it (and closed after)."""
    backend = CerebrasBackend(settings, budget or roomy_budget())
    try:
        return await backend.analyse(item or make_item())
    finally:
        await backend.aclose()


async def error_from(
    settings: AISettings, kind: type[ModelError], client: httpx.AsyncClient | None = None
) -> ModelError:
    """The error of one request by a backend made for it (and closed after)."""
    backend = CerebrasBackend(settings, roomy_budget(), client)
    try:
        return await expect_error(backend, kind)
    finally:
        await backend.aclose()


async def mock_error(
    handler: Callable[[httpx.Request], httpx.Response], kind: type[ModelError]
) -> ModelError:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return await error_from(make_settings("http://model.test"), kind, client)


# -- a good answer --


async def test_a_good_answer_is_parsed_with_its_usage(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    answer = await backend.analyse(make_item())
    assert answer.analysis.summary == "Summary of: Quarterly numbers"
    assert answer.analysis.flags == ("urgent",)
    [todo] = answer.analysis.todos
    assert todo.task.startswith("Hi, please send the report")
    assert str(todo.due) == "2024-10-04"
    assert answer.model == "gpt-oss-120b"
    sent = server.recorded()[-1].json()
    assert answer.usage.tokens_in == math.ceil(len(json.dumps(sent["messages"])) / 4)
    assert answer.usage.tokens_out > 0
    assert server.answered == 1


async def test_the_request_is_one_structured_completion(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    item = make_item()
    await backend.analyse(item)
    [request] = server.recorded()
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    assert body["model"] == "gpt-oss-120b"
    assert body["temperature"] == 0
    assert body["max_completion_tokens"] == 512
    assert body["reasoning_effort"] == "low"  # GPT-OSS reasons at "medium" unless told
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "triage",
            "schema": answer_schema([flag.name for flag in DEFAULT_FLAGS]),
            "strict": True,
        },
    }
    assert body["messages"] == build_messages(item, DEFAULT_FLAGS, max_body_chars=12000)
    assert set(body) == REQUEST_KEYS  # no streaming, no tools, nothing else


async def test_the_sdk_transforms_none_of_our_request(
    backend: CerebrasBackend, server: FakeModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our messages and schema go as `extra_body` so that the SDK's typed transform, which walks
    # them on every call, sees only its own empty `messages` (docs/dependencies.md). This spies
    # on the SDK's own module: a rename or a move there fails here first.
    from cerebras.cloud.sdk.resources.chat import completions

    transformed: list[dict[str, Any]] = []
    transform = completions.async_maybe_transform  # type: ignore[attr-defined]

    async def spy(data: Any, expected_type: Any) -> Any:
        transformed.append(data)
        return await transform(data, expected_type)

    monkeypatch.setattr(completions, "async_maybe_transform", spy)
    await backend.analyse(make_item())
    [body] = transformed
    given = {key for key, value in body.items() if isinstance(value, str | int | list | dict)}
    assert given == {"model", "messages"} and body["messages"] == []
    assert server.last_bodies()[-1]["messages"] != []  # ours reached the server all the same


async def test_attachments_are_named_but_nothing_else_of_them_is_sent(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    await backend.analyse(make_item(attachment_names=("contract.pdf",)))
    raw = server.recorded()[-1].body.decode()
    assert raw.count("contract.pdf") == 1
    body = server.last_bodies()[-1]
    assert set(body) == REQUEST_KEYS
    assert [set(message) for message in body["messages"]] == [{"role", "content"}] * 2


async def test_a_long_body_is_cut_to_max_input_chars(server: FakeModelServer) -> None:
    settings = make_settings(server.base_url, max_input_chars=50)
    await answer_from(settings, item=make_item(body="word " * 1000))
    user = server.last_bodies()[-1]["messages"][1]["content"]
    assert "word " * 10 in user
    assert len(user) < 1000


async def test_tokens_are_settled_to_what_was_used(server: FakeModelServer) -> None:
    now = [0.0]
    budget = RateBudget(100, 10_000, clock=lambda: now[0])
    answer = await answer_from(make_settings(server.base_url), budget)
    used = answer.usage.tokens_in + answer.usage.tokens_out
    assert budget.ready_in(10_000 - used) == 0
    assert budget.ready_in(10_000 - used + 1) > 0


async def test_the_budget_takes_the_servers_remaining_tokens(server: FakeModelServer) -> None:
    server.tokens_per_minute = 3000  # far below the budget's own figure
    budget = RateBudget(100, 1_000_000)
    await answer_from(make_settings(server.base_url), budget)
    assert budget.ready_in(1000) == 0
    assert budget.ready_in(3000) > 30  # held until the server's minute resets


# -- every fault maps onto the error tree, and the key never shows --


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        ("429", ModelRateLimited, "rate limiting"),
        ("500", ModelUnavailable, "HTTP 500"),
        ("503", ModelUnavailable, "HTTP 503"),
        ("401", ModelAuthError, "check ai.api_key_file"),
        ("timeout", ModelUnavailable, "did not answer within 0.5 s"),
        ("drop", ModelUnavailable, "cannot reach the model service"),
        ("malformed_json", ModelUnavailable, "not JSON"),
        ("bad_schema", ModelAnswerInvalid, "breaks the schema: summary must be a string"),
        ("402", ModelAccountError, "wants payment (HTTP 402)"),
        ("403", ModelAuthError, "refused the API key (HTTP 403)"),
        ("404", ModelAccountError, "check ai.model ('gpt-oss-120b')"),
        ("daily_quota", ModelQuotaSpent, "model quota spent until"),
    ],
)
async def test_faults_map_to_model_errors_without_the_key(
    backend: CerebrasBackend,
    server: FakeModelServer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    kind: type[ModelError],
    words: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.queue_faults(fault)
    error = await expect_error(backend, kind)
    # One request, no retry inside the SDK: a retry would have been answered and succeeded.
    # A `timeout` is held 3 s and then dropped: only our own timeout gives its words.
    assert server.requests == 1
    assert words in str(error)
    assert KEY not in str(error)
    assert KEY not in repr(error.args)
    assert error.__cause__ is None
    assert caplog.records  # the SDK and httpx did log: the check below means something
    assert KEY not in caplog.text
    assert server.faults == {fault: 1}
    assert server.requests == 1  # no retries inside the SDK


async def test_the_server_is_fine_again_after_a_fault(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    server.queue_faults("503", "drop", "malformed_json")
    for _ in range(3):
        with pytest.raises(ModelUnavailable):
            await backend.analyse(make_item())
    assert (await backend.analyse(make_item())).analysis.summary


async def test_an_answer_cut_short_is_asked_again_once_with_more_room(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    server.queue_faults("empty_length")
    answer = await backend.analyse(make_item())
    assert answer.analysis.summary == "Summary of: Quarterly numbers"
    assert [b["max_completion_tokens"] for b in server.last_bodies()] == [512, 2048]
    assert answer.usage.tokens_out > 512  # both requests' tokens count


async def test_an_answer_cut_short_twice_is_invalid_with_every_token_spent(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    server.queue_faults("empty_length", "empty_length")
    error = await expect_error(backend, ModelAnswerInvalid)
    assert "cut short at the token limit (2048 tokens, reasoning included)" in str(error)
    assert error.usage.tokens_out == 512 + 2048
    assert error.usage.tokens_in > 0
    assert server.requests == 2


async def test_tokens_spent_on_a_bad_answer_are_reported(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    server.queue_faults("bad_schema")
    error = await expect_error(backend, ModelAnswerInvalid)
    assert error.usage.tokens_in > 0


async def test_429_waits_as_long_as_retry_after_says(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    server.retry_after = "7"
    server.queue_faults("429")
    error = await expect_error(backend, ModelRateLimited)
    assert isinstance(error, ModelRateLimited)
    assert error.retry_after_s == 7.0
    assert 6.0 < backend.budget.ready_in(1) <= 61.0  # paused, and the token minute is spent


async def test_429_with_an_http_date(backend: CerebrasBackend, server: FakeModelServer) -> None:
    server.retry_after = formatdate(time.time() + 30, usegmt=True)
    server.queue_faults("429")
    error = await expect_error(backend, ModelRateLimited)
    assert isinstance(error, ModelRateLimited)
    assert 27.0 <= error.retry_after_s <= 31.0


async def test_wrong_key_is_refused_and_not_shown(
    server: FakeModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.api_key = "the-right-key"
    error = await error_from(make_settings(server.base_url), ModelAuthError)
    assert str(error).startswith("the model service refused the API key (HTTP 401)")
    assert KEY not in str(error) + caplog.text


async def test_a_key_echoed_by_the_server_is_masked() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        said = f"key {request.headers['authorization']} is not allowed here"
        return httpx.Response(403, json={"error": {"message": said}})

    error = await mock_error(echo, ModelAuthError)
    assert "HTTP 403" in str(error)
    assert KEY not in str(error)
    assert "********" in str(error)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ModelRequestRejected),
        (402, ModelAccountError),
        (404, ModelAccountError),
        (413, ModelRequestRejected),
        (422, ModelRequestRejected),
        (408, ModelUnavailable),
        (502, ModelUnavailable),
    ],
)
async def test_other_statuses(status: int, kind: type[ModelError]) -> None:
    message = "model 'gpt-oss-120b' does not support x " + "y" * 1000

    def reject(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": message, "type": "invalid_request_error"})

    error = await mock_error(reject, kind)
    assert f"HTTP {status}" in str(error)
    assert "model 'gpt-oss-120b' does not support x" in str(error)
    assert len(str(error)) < 450  # the server's words are trimmed to 300 characters
    if status == 404:
        assert "check ai.model ('gpt-oss-120b')" in str(error)


async def test_a_proxy_page_instead_of_json_means_unavailable() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Login to the hotel wifi</html>")

    error = await mock_error(proxy, ModelUnavailable)
    assert "not a chat completion" in str(error)


async def test_an_error_object_with_status_200_means_unavailable() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": {"message": "overloaded"}, "status_code": 200})

    error = await mock_error(failing, ModelUnavailable)
    assert "overloaded" in str(error)


async def test_a_completion_without_choices_is_an_invalid_answer() -> None:
    def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "choices": []})

    error = await mock_error(empty, ModelAnswerInvalid)
    assert str(error) == "the model's answer is empty"


async def test_nobody_listening_means_unavailable() -> None:
    with FakeModelServer() as gone:
        base_url = gone.base_url
    error = await error_from(make_settings(base_url), ModelUnavailable)
    assert str(error).startswith(f"cannot reach the model service at {base_url}: ")


# -- construction --


def test_no_key_is_a_configuration_error() -> None:
    for key in (None, Secret(""), Secret("  ")):
        with pytest.raises(ConfigError) as caught:
            CerebrasBackend(make_settings("http://model.test", api_key=key))
        assert caught.value.key == "ai.api_key_file"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.cerebras.ai", "https://api.cerebras.ai"),
        ("https://api.cerebras.ai/", "https://api.cerebras.ai"),
        ("https://api.cerebras.ai/v1", "https://api.cerebras.ai"),
        ("https://api.cerebras.ai/v1/", "https://api.cerebras.ai"),
        ("http://proxy.local/openai/v1", "http://proxy.local/openai"),
        ("http://127.0.0.1:8099", "http://127.0.0.1:8099"),
    ],
)
def test_base_url_loses_v1_and_slashes(given: str, expected: str) -> None:
    assert normalise_base_url(given) == expected


async def test_many_workers_at_once_keep_their_connections_open() -> None:
    # 32 requests at once, three times: every later wave reuses the first wave's connections
    # (the SDK's own pool keeps only 20 of them, so 12 new handshakes a wave).
    with FakeModelServer(latency=0.2, tokens_per_minute=10**12, requests_per_day=10**12) as server:
        backend = CerebrasBackend(make_settings(server.base_url), roomy_budget())
        try:
            for _ in range(3):
                await asyncio.gather(*(backend.analyse(make_item()) for _ in range(32)))
        finally:
            await backend.aclose()
        assert server.answered == 96
        assert server.connections == 32


async def test_a_given_http_client_is_used_and_closed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(500, json={"message": "no"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    backend: Backend = CerebrasBackend(
        make_settings("http://model.test/v1"), roomy_budget(), client
    )
    with pytest.raises(ModelUnavailable):
        await backend.analyse(make_item())
    await backend.aclose()
    assert seen == ["http://model.test/v1/chat/completions"]
    assert client.is_closed


# -- retry-after without the server --


EXHAUSTED_MINUTE = {
    "x-ratelimit-remaining-tokens-minute": "0",
    "x-ratelimit-reset-tokens-minute": "33.5",
    "x-ratelimit-remaining-requests-day": "100",
    "x-ratelimit-reset-requests-day": "40000",
}
EXHAUSTED_DAY = {
    "x-ratelimit-remaining-requests-day": "0",
    "x-ratelimit-reset-requests-day": "40000",
    "x-ratelimit-reset-tokens-minute": "20",
}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "0"}, 1.0),  # never less than a second
        ({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"retry-after": "soon"}, 60.0),
        ({}, 60.0),
        (EXHAUSTED_MINUTE, 33.5),
        (EXHAUSTED_DAY, 40000.0),
        ({"x-ratelimit-reset-tokens-minute": "20"}, 20.0),
        ({"x-ratelimit-reset-tokens-minute": "-20"}, 60.0),
        ({"retry-after": "1e9"}, 86400.0),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float) -> None:
    now = 1445412480.0  # 07:28:00 on that day
    assert retry_after_seconds(headers, now=now) == pytest.approx(expected)


# -- the fake server itself --


def test_fault_rate_is_seeded_and_counted(server: FakeModelServer) -> None:
    def run() -> list[int]:
        server.set_fault_rate(0.5, ("500", "503"), seed=3)
        with httpx.Client(base_url=server.base_url) as client:
            return [
                client.post("/v1/chat/completions", json={"messages": []}).status_code
                for _ in range(20)
            ]

    first, second = run(), run()
    assert first == second
    assert {200, 500, 503} >= set(first)
    assert 0 < first.count(200) < 20
    assert server.requests == 40
    assert sum(server.faults.values()) + server.answered == 40


def test_other_paths_and_bodies_are_refused(server: FakeModelServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/v1/models").status_code == 404
        assert client.post("/v2/chat", json={}).status_code == 404
        assert client.post("/v1/chat/completions", content=b"nope").status_code == 400
    with pytest.raises(ValueError, match="unknown fault"):
        server.queue_faults("explode")


def test_runs_as_a_program() -> None:
    command = [sys.executable, "-m", "tests.fakes.model_server", "--port", "0"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("listening on http://127.0.0.1:")
            base_url = line.split()[-1]
            response = httpx.post(f"{base_url}/v1/chat/completions", json={"messages": []})
            assert response.status_code == 200
            assert "x-ratelimit-remaining-tokens-minute" in response.headers
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0
