"""The `cerebras` backend: one structured-output chat completion a message, via `AsyncCerebras`.

Any OpenAI-compatible server works (`ai.base_url` without `/v1`). The SDK's own retries are off
(`max_retries=0`): the processor retries with backoff and snoozes rows on 429, so a request is
never silently repeated behind its back.

Every failure becomes a `ModelError` (see `muninmaild.errors`):

    429                                   ModelRateLimited (and the budget pauses)
    401, 403                              ModelAuthError
    400, 404, 413, 422 and other 4xx      ModelRequestRejected
    5xx, 408, 409, timeouts, connections  ModelUnavailable
    HTTP 200 whose body is not JSON       ModelUnavailable: the service (or a proxy in front of it)
                                          is broken, not the model's answer; it is retried the same
    content not JSON / breaks the schema  ModelAnswerInvalid
    empty content, cut short ("length")   ModelAnswerInvalid, with the tokens spent attached

Messages never contain the API key: the SDK's errors are not chained (their text comes from the
server, which could echo anything) and every text we pass on is scrubbed of the key.

This module is the only one that imports the SDK; the daemon imports it only for this backend.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime

import aiohttp
import httpx
from cerebras.cloud.sdk import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncCerebras,
    AuthenticationError,
    DefaultAioHttpClient,
    PermissionDeniedError,
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
from muninmaild.ai.budget import RateBudget
from muninmaild.ai.prompt import build_messages, estimate_tokens
from muninmaild.ai.schema import answer_schema, parse_answer
from muninmaild.config.settings import AISettings
from muninmaild.errors import (
    ConfigError,
    ModelAnswerInvalid,
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from muninmaild.records import TokenUsage

SCHEMA_NAME = "triage"
SERVER_MESSAGE_MAX_CHARS = 300
DEFAULT_RETRY_AFTER_S = 60.0
MAX_RETRY_AFTER_S = 86400.0
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
        self.model = settings.model
        self.budget = budget or RateBudget(settings.requests_per_minute, settings.tokens_per_minute)
        self._settings = settings
        self._key = key
        self._flag_names = [flag.name for flag in settings.flags]
        self._response_format = _response_format(self._flag_names)
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
        messages = build_messages(
            item, self._settings.flags, max_body_chars=self._settings.max_input_chars
        )
        # The service reserves max_completion_tokens up front, so the budget does too.
        estimate = estimate_tokens(messages) + self._settings.max_completion_tokens
        await self.budget.acquire(estimate)
        completion, headers = await self._complete(messages, estimate)
        usage = _usage(completion.usage)
        if usage is not None:
            self.budget.settle(estimate, usage.tokens_in + usage.tokens_out)
        self.budget.observe_headers(headers)
        return self._answer(completion, usage or TokenUsage())

    async def aclose(self) -> None:
        """Close the HTTP client (a client passed in as `http_client` too)."""
        await self._client.close()

    async def _complete(
        self, messages: Sequence[Mapping[str, str]], estimate: int
    ) -> tuple[ChatCompletionResponse, httpx.Headers]:
        try:
            # The SDK checks every request's parameters against its typed schema, walking
            # our fixed JSON schema and the messages with typing introspection each time, a
            # large share of the daemon's CPU at many requests at once (bench/README.md, P4).
            # Both are typed here
            # (`Message`, ResponseFormatResponseFormatJsonSchema) and go as `extra_body`, which
            # the SDK sends as it is; its own `messages=[]` is replaced by ours.
            body = {
                "messages": _sdk_messages(messages),
                "response_format": self._response_format,
                "max_completion_tokens": self._settings.max_completion_tokens,
                "temperature": 0,
            }
            raw = await self._client.chat.completions.with_raw_response.create(
                model=self.model, messages=[], extra_body=body
            )
            parsed = await raw.parse()
        except APIStatusError as exc:
            # The server answered without generating: give back the tokens, then take its word.
            self.budget.settle(estimate, 0)
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

    def _answer(self, completion: ChatCompletionResponse, usage: TokenUsage) -> ModelAnswer:
        content, finish_reason = _first_choice(completion)
        if finish_reason == "length":
            limit = self._settings.max_completion_tokens
            raise ModelAnswerInvalid(
                f"the model's answer was cut short at the token limit ({limit} tokens); "
                "raise ai.max_completion_tokens if this keeps happening",
                usage,
            )
        try:
            analysis = parse_answer(content, self._flag_names)
        except ModelAnswerInvalid as exc:
            raise ModelAnswerInvalid(str(exc), usage) from None
        model = completion.model if isinstance(completion.model, str) and completion.model else ""
        return ModelAnswer(analysis=analysis, usage=usage, model=model[:100] or self.model)

    def _status_error(self, exc: APIStatusError) -> ModelError:
        status = exc.status_code
        said = self._scrub(_server_message(exc)).rstrip(".")
        if isinstance(exc, RateLimitError) or status == 429:
            return self._rate_limited(exc, said)
        if isinstance(exc, AuthenticationError | PermissionDeniedError) or status in {401, 403}:
            return ModelAuthError(
                f"the model service refused the API key (HTTP {status}): {said}; "
                "check ai.api_key_file"
            )
        if status >= 500 or status in {408, 409}:
            return ModelUnavailable(f"the model service failed (HTTP {status}): {said}")
        hint = "; check ai.model and ai.base_url" if status == 404 else ""
        return ModelRequestRejected(
            f"the model service rejected the request (HTTP {status}): {said}{hint}"
        )

    def _rate_limited(self, exc: APIStatusError, said: str) -> ModelRateLimited:
        delay = retry_after_seconds(exc.response.headers)
        self.budget.pause_until(delay)
        return ModelRateLimited(
            f"the model service is rate limiting us (HTTP 429): {said}; "
            f"trying again in {delay:.0f} s",
            retry_after_s=delay,
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


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float:
    """How long a 429 asks us to wait: `retry-after` (seconds or an HTTP date), else the
    `x-ratelimit-reset-*` of an exhausted limit, else any minute reset, else 60 s."""
    lower = {name.lower(): value for name, value in headers.items()}
    delay = _retry_after_header(lower, time.time() if now is None else now)
    if delay is None:
        delay = _reset_header(lower)
    if delay is None:
        delay = DEFAULT_RETRY_AFTER_S
    return min(max(delay, 1.0), MAX_RETRY_AFTER_S)


def _retry_after_header(headers: Mapping[str, str], now: float) -> float | None:
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    text = headers.get("retry-after", "").strip()
    seconds = _seconds(text)
    if seconds is not None or not text:
        return seconds
    try:
        return parsedate_to_datetime(text).timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _reset_header(headers: Mapping[str, str]) -> float | None:
    windows = ("tokens-minute", "requests-minute", "requests-day", "tokens-day")
    resets = {w: _seconds(headers.get(f"x-ratelimit-reset-{w}")) for w in windows}
    exhausted = [
        reset
        for window, reset in resets.items()
        if reset is not None and _seconds(headers.get(f"x-ratelimit-remaining-{window}")) == 0
    ]
    if exhausted:
        return max(exhausted)
    minute = [reset for window, reset in resets.items() if reset is not None and "minute" in window]
    return max(minute) if minute else None


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


def _server_message(exc: APIStatusError) -> str:
    """The server's own words, from an OpenAI- or Cerebras-style error body."""
    body = exc.body
    if isinstance(body, Mapping):
        inner = body.get("error")
        body = inner if isinstance(inner, Mapping | str) else body.get("message", body)
        if isinstance(body, Mapping):
            body = body.get("message", "")
    text = body if isinstance(body, str) and body.strip() else exc.message
    text = " ".join(str(text).split())
    if len(text) > SERVER_MESSAGE_MAX_CHARS:
        text = text[: SERVER_MESSAGE_MAX_CHARS - 3] + "..."
    return text or "no details given"


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


def _usage(usage: ChatCompletionResponseUsage | None) -> TokenUsage | None:
    if not isinstance(usage, ChatCompletionResponseUsage):
        return None
    tokens_in, tokens_out = usage.prompt_tokens, usage.completion_tokens
    if not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
        return None
    return TokenUsage(tokens_in=max(tokens_in, 0), tokens_out=max(tokens_out, 0))


def _connection_limits() -> httpx.Limits:
    """As many idle connections kept as workers may be asking at once (at most 256)."""
    return httpx.Limits(max_connections=256, max_keepalive_connections=256)
