"""The `cerebras` backend: one structured-output chat completion a message, via `AsyncCerebras`.

Any OpenAI-compatible server works (`ai.base_url` without `/v1`). The SDK's own retries are off
(`max_retries=0`): the processor retries with backoff and snoozes rows on 429, so a request is
never silently repeated behind its back.

Every failure becomes a `ModelError` (see `muninmaild.errors`):

    429 for a per-minute limit            ModelRateLimited (and the budget pauses)
    429 for an hourly or daily quota      ModelQuotaSpent (and the budget holds; `ratelimit.py`)
    401, 403                              ModelAuthError (the processor holds)
    402 (payment), 404 (model or URL)     ModelAccountError (the processor holds)
    400, 413, 422 and other 4xx           ModelRequestRejected
    5xx, 408, 409, timeouts, connections  ModelUnavailable
    HTTP 200 whose body is not JSON       ModelUnavailable: the service (or a proxy in front of it)
                                          is broken, not the model's answer; it is retried the same
    content not JSON / breaks the schema  ModelAnswerInvalid
    empty content, cut short ("length")   asked once more with more room (`exchange.py`), then
                                          ModelAnswerInvalid, with the tokens spent attached

GPT-OSS models reason at "medium" unless told otherwise, and the hidden reasoning counts toward
`max_completion_tokens`: `ai.reasoning_effort` ("low" by default) goes with every request to a
model that takes it.

Messages never contain the API key: the SDK's errors are not chained (their text comes from the
server, which could echo anything) and every text we pass on is scrubbed of the key.

This module is the only one that imports the SDK; the daemon imports it only for this backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import httpx
from cerebras.cloud.sdk import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncCerebras,
    DefaultAioHttpClient,
    RateLimitError,
)

# The client loads its resources on first use of `client.chat`, which would be on the event
# loop; imported here, they load with the rest of the SDK in the factory's thread.
from cerebras.cloud.sdk.resources import AsyncChatResource  # noqa: F401
from cerebras.cloud.sdk.types.chat.chat_completion import (
    ChatCompletionResponse,
    ChatCompletionResponseChoice,
    ChatCompletionResponseUsage,
    ErrorChunkResponse,
)
from cerebras.cloud.sdk.types.chat.completion_create_params import (
    Message,
    ResponseFormatResponseFormatJsonSchema,
)

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.ai.budget import RateBudget, budget_for
from muninmaild.ai.exchange import Exchange, Messages, Reply
from muninmaild.ai.schema import answer_schema, check_flags
from muninmaild.ai.service_errors import (
    account_error,
    error_param,
    rate_limit_error,
    retry_after_seconds,
    server_message,
)
from muninmaild.config.settings import AISettings
from muninmaild.errors import (
    ConfigError,
    ModelError,
    ModelRequestRejected,
    ModelUnavailable,
)
from muninmaild.records import TokenUsage

__all__ = ["CerebrasBackend", "normalise_base_url", "retry_after_seconds"]

SCHEMA_NAME = "triage"
_MASK = "********"


def normalise_base_url(url: str) -> str:
    """`https://api.cerebras.ai/v1/` -> `https://api.cerebras.ai`: the SDK appends `/v1/...`."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url.rstrip("/")


class CerebrasBackend:
    """A `Backend` speaking the chat completions API with a JSON schema for the answer."""

    name = "cerebras"
    local = False
    reads_input = True

    def __init__(
        self,
        settings: AISettings,
        budget: RateBudget | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        key = settings.api_key.reveal() if settings.api_key else ""
        if not key.strip():
            raise ConfigError("ai.api_key_file", "the cerebras backend needs an API key")
        check_flags(settings.flags)
        self.model = settings.model
        self.budget = budget or budget_for(settings)
        self._settings = settings
        self._key = key
        self._effort = settings.effort_for_model()
        self._response_format = _response_format([flag.name for flag in settings.flags])
        self._exchange = Exchange(settings, self.budget, reask=False)
        if http_client is None:
            # aiohttp underneath, the SDK's documented choice for many requests at once: httpx's
            # own pool cost several times the CPU a request, which made the daemon, not the
            # model, the limit (bench/README.md, P4). Enough idle connections are kept for every
            # worker: with the SDK's default of 20, each wave of 32 requests paid 12 handshakes.
            http_client = DefaultAioHttpClient(limits=_connection_limits())
        # warm_tcp_connection=False: the default makes a blocking request from the constructor.
        self._client = AsyncCerebras(
            api_key=key,
            base_url=normalise_base_url(settings.base_url),
            timeout=settings.timeout,
            max_retries=0,
            warm_tcp_connection=False,
            http_client=http_client,
        )

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        return await self._exchange.run(item, self._send, self.model)

    async def aclose(self) -> None:
        """Close the HTTP client (a client passed in as `http_client` too)."""
        await self._client.close()

    def request_body(self, messages: Messages, room: int) -> dict[str, Any]:
        """What goes to the service besides `model` (the SDK adds it)."""
        body: dict[str, Any] = {
            "messages": _sdk_messages(messages),
            "response_format": self._response_format,
            "max_completion_tokens": room,
            "temperature": 0,
        }
        if self._effort is not None:
            body["reasoning_effort"] = self._effort
        return body

    async def _send(self, messages: Messages, room: int) -> Reply:
        completion, headers = await self._complete(messages, room)
        content, finish_reason = _first_choice(completion)
        model = completion.model if isinstance(completion.model, str) else ""
        return Reply(content, finish_reason, _usage(completion.usage), model, headers)

    async def _complete(
        self, messages: Messages, room: int
    ) -> tuple[ChatCompletionResponse, httpx.Headers]:
        try:
            # The SDK checks every request's parameters against its typed schema, walking
            # our fixed JSON schema and the messages with typing introspection each time, a
            # large share of the daemon's CPU at many requests at once (bench/README.md, P4).
            # Both are typed here
            # (`Message`, ResponseFormatResponseFormatJsonSchema) and go as `extra_body`, which
            # the SDK sends as it is; its own `messages=[]` is replaced by ours.
            raw = await self._client.chat.completions.with_raw_response.create(
                model=self.model, messages=[], extra_body=self.request_body(messages, room)
            )
            parsed = await raw.parse()
        except APIStatusError as exc:
            self.budget.observe_headers(exc.response.headers)
            raise self._status_error(exc) from None
        except APIError as exc:
            raise self._transport_error(exc) from None
        except httpx.HTTPError as exc:  # reading the body after the SDK let go of it
            message = f"the model service's answer broke off: {exc}"
            raise ModelUnavailable(self._scrub(message)) from None
        except ValueError:  # json.JSONDecodeError: the body of an HTTP 200 is not JSON
            raise ModelUnavailable(
                "the model service answered with a body that is not JSON; "
                "check ai.base_url points at an OpenAI-compatible API"
            ) from None
        return self._as_completion(parsed), raw.headers

    def _as_completion(self, parsed: object) -> ChatCompletionResponse:
        # Without strict validation the SDK hands back whatever the body was: an error object,
        # or the bare text of a page that was not JSON (a captive portal, a proxy's error page).
        if isinstance(parsed, ErrorChunkResponse):
            said = getattr(parsed.error, "message", None) or "no details given"
            raise ModelUnavailable(self._scrub(f"the model service failed: {said}"))
        if not isinstance(parsed, ChatCompletionResponse):
            raise ModelUnavailable(
                "the model service answered with something that is not a chat completion; "
                "check ai.base_url points at an OpenAI-compatible API"
            )
        return parsed

    def _status_error(self, exc: APIStatusError) -> ModelError:
        status = exc.status_code
        said = self._scrub(server_message(exc.body, exc.message)).rstrip(".")
        if isinstance(exc, RateLimitError) or status == 429:
            return rate_limit_error(self.budget, said, exc.response.headers)
        account = account_error(status, said, error_param(exc.body), self.model)
        if account is not None:
            return account
        if status >= 500 or status in {408, 409}:
            return ModelUnavailable(f"the model service failed (HTTP {status}): {said}")
        return ModelRequestRejected(
            f"the model service rejected the request (HTTP {status}): {said}"
        )

    def _transport_error(self, exc: APIError) -> ModelError:
        if isinstance(exc, APITimeoutError) and _timed_out(exc):
            return ModelUnavailable(
                f"the model service did not answer within {self._settings.timeout:g} s (ai.timeout)"
            )
        where = normalise_base_url(self._settings.base_url)
        if isinstance(exc, APIConnectionError):  # APITimeoutError is one too
            cause = str(exc.__cause__ or "") or type(exc.__cause__ or exc).__name__
            return ModelUnavailable(
                self._scrub(f"cannot reach the model service at {where}: {cause}")
            )
        return ModelUnavailable(self._scrub(f"the model service at {where} failed: {exc.message}"))

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, _MASK)


def _timed_out(exc: BaseException) -> bool:
    """Whether a timeout error is one: aiohttp's transport reports a refused or dropped
    connection as a connect timeout too, which would send an operator after the wrong fault."""
    cause = exc.__cause__
    for _ in range(8):  # SDK error, httpx error, aiohttp error: never deeper in practice
        if cause is None or isinstance(cause, TimeoutError):
            return True
        if isinstance(cause, aiohttp.ClientConnectionError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def _response_format(flag_names: Sequence[str]) -> ResponseFormatResponseFormatJsonSchema:
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": answer_schema(flag_names), "strict": True},
    }


def _sdk_messages(messages: Sequence[Mapping[str, str]]) -> list[Message]:
    converted: list[Message] = []
    for message in messages:
        if message["role"] == "system":
            converted.append({"role": "system", "content": message["content"]})
        else:
            converted.append({"role": "user", "content": message["content"]})
    return converted


def _first_choice(completion: ChatCompletionResponse) -> tuple[str | None, str | None]:
    """Content and finish reason of the first choice. The SDK does not validate answers, so a
    field can hold anything the server sent: check every type."""
    choices = completion.choices
    if not isinstance(choices, list) or not choices:
        return None, None
    choice = choices[0]
    if not isinstance(choice, ChatCompletionResponseChoice):
        return None, None
    content = getattr(choice.message, "content", None)
    finish_reason = choice.finish_reason
    return (
        content if isinstance(content, str) else None,
        finish_reason if isinstance(finish_reason, str) else None,
    )


def _usage(usage: ChatCompletionResponseUsage | None) -> TokenUsage:
    """Prompt and completion tokens (reasoning is part of the completion's count)."""
    if not isinstance(usage, ChatCompletionResponseUsage):
        return TokenUsage()
    tokens_in, tokens_out = usage.prompt_tokens, usage.completion_tokens
    if not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
        return TokenUsage()
    return TokenUsage(tokens_in=max(tokens_in, 0), tokens_out=max(tokens_out, 0))


def _connection_limits() -> httpx.Limits:
    """As many idle connections kept as workers may be asking at once (at most 256)."""
    return httpx.Limits(max_connections=256, max_keepalive_connections=256)
