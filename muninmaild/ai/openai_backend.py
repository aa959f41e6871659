"""The `openai` backend: any OpenAI-compatible server (Ollama, llama.cpp's server, vLLM, LM
Studio, OpenAI itself), through the official `openai` package.

`ai.base_url` is the server's own documented address, `/v1` included
(`http://localhost:11434/v1`). Such servers honour structured output unevenly, so:

- `ai.structured_output` picks how the answer's shape is asked for: `json_schema` (a strict
  schema), `json_object` (JSON mode) or `prompt` (the instructions alone, which always spell
  out the shape when no schema goes along). A server that refuses a mode (HTTP 400 or 422, or
  any error naming `response_format`: llama-cpp-python's server answers `json_schema` with a
  500) is asked again at once in the next one, and the first mode it takes is kept for every
  later request (and said once in the journal).
- Every answer is validated; a `<think>` block, a code fence and words around the JSON are
  dropped; an answer that is still not valid is asked again once, with the validation error,
  before it costs the message an attempt (`exchange.py`).
- Servers that want `max_completion_tokens` instead of `max_tokens` (OpenAI's reasoning
  models) say so with a 400: the other name is used from then on.

Errors map as for `cerebras` (`service_errors.py`). This module is the only one that imports
the `openai` package, and the daemon imports it only for this backend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

# The client loads its resources (about 500 modules) on first use of `client.chat`, which would
# be on the event loop; imported here, they load with the rest of the library in the factory's
# thread.
from openai.resources.chat import AsyncChat  # noqa: F401
from openai.types.chat import ChatCompletion

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.ai.budget import RateBudget, budget_for
from muninmaild.ai.exchange import Exchange, Messages, Reply
from muninmaild.ai.schema import answer_schema, check_flags
from muninmaild.ai.service_errors import (
    account_error,
    error_param,
    rate_limit_error,
    server_message,
)
from muninmaild.config.settings import STRUCTURED_OUTPUTS, AISettings, StructuredOutput
from muninmaild.errors import (
    ModelError,
    ModelRequestRejected,
    ModelUnavailable,
)
from muninmaild.records import TokenUsage

log = logging.getLogger(__name__)
SCHEMA_NAME = "triage"
# What a server that runs without keys is sent: the client library insists on some key.
NO_KEY = "none"
_MASK = "********"
_LENGTH_NAMES = ("max_tokens", "max_completion_tokens")


class _ModeRefused(Exception):
    """A 400 in a structured-output mode: the mode may be what the server refuses."""

    def __init__(self, error: ModelError) -> None:
        super().__init__(str(error))
        self.error = error


class OpenAIBackend:
    """A `Backend` for any server speaking OpenAI's chat completions API."""

    name = "openai"
    local = False
    reads_input = True

    def __init__(
        self,
        settings: AISettings,
        budget: RateBudget | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        check_flags(settings.flags)
        key = settings.api_key.reveal().strip() if settings.api_key else ""
        self.model = settings.model
        self.budget = budget or budget_for(settings)
        self.mode: StructuredOutput = settings.structured_output
        self._settings = settings
        self._key = key
        self._length_name = _LENGTH_NAMES[0]
        self._effort = settings.effort_for_model()
        self._schema = answer_schema([flag.name for flag in settings.flags])
        self._exchange = Exchange(
            settings, self.budget, reask=True, spell_out=lambda: self.mode != "json_schema"
        )
        self._client = AsyncOpenAI(
            api_key=key or NO_KEY,
            base_url=settings.base_url.strip().rstrip("/"),
            timeout=settings.timeout,
            max_retries=0,  # the processor retries, with backoff
            http_client=http_client,
        )

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        return await self._exchange.run(item, self._send, self.model)

    async def aclose(self) -> None:
        await self._client.close()

    def request_body(self, messages: Messages, room: int, mode: StructuredOutput) -> dict[str, Any]:
        """What goes to the server besides `model` (the client adds it)."""
        body: dict[str, Any] = {"messages": messages, "temperature": 0, self._length_name: room}
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "schema": self._schema, "strict": True},
            }
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        if self._effort is not None:
            body["reasoning_effort"] = self._effort
        return body

    async def _send(self, messages: Messages, room: int) -> Reply:
        modes = STRUCTURED_OUTPUTS[STRUCTURED_OUTPUTS.index(self.mode) :]
        first: _ModeRefused | None = None
        for mode in modes:
            try:
                reply = await self._send_in(messages, room, mode)
            except _ModeRefused as refused:
                first = first or refused
                continue
            if mode != self.mode:
                self._fall_back(mode, first)
            return reply
        assert first is not None
        raise first.error

    def _fall_back(self, mode: StructuredOutput, refused: _ModeRefused | None) -> None:
        said = f" ({refused})" if refused else ""
        log.warning(
            "the model server refused structured output %r%s; using %r from now on",
            self.mode,
            said,
            mode,
        )
        self.mode = mode

    async def _send_in(self, messages: Messages, room: int, mode: StructuredOutput) -> Reply:
        for _ in _LENGTH_NAMES:
            try:
                return await self._complete(messages, room, mode)
            except _LengthNameRefused:
                self._length_name = _LENGTH_NAMES[1 - _LENGTH_NAMES.index(self._length_name)]
        raise ModelRequestRejected(
            "the model server refuses both max_tokens and max_completion_tokens"
        )

    async def _complete(self, messages: Messages, room: int, mode: StructuredOutput) -> Reply:
        body = self.request_body(messages, room, mode)
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=self.model, messages=[], extra_body=body
            )
            completion = raw.parse()
        except openai.APIStatusError as exc:
            self.budget.observe_headers(exc.response.headers)
            raise self._status_error(exc, mode) from None
        except openai.APIError as exc:
            raise self._transport_error(exc) from None
        except httpx.HTTPError as exc:
            message = f"the model server's answer broke off: {exc}"
            raise ModelUnavailable(self._scrub(message)) from None
        except ValueError:
            raise ModelUnavailable(_NOT_AN_API) from None
        if not isinstance(completion, ChatCompletion):
            raise ModelUnavailable(_NOT_AN_API)
        return _reply(completion, raw.headers)

    def _status_error(self, exc: openai.APIStatusError, mode: StructuredOutput) -> Exception:
        status = exc.status_code
        said = self._scrub(server_message(exc.body, exc.message)).rstrip(".")
        if status == 429:
            return rate_limit_error(self.budget, said, exc.response.headers)
        account = account_error(status, said, error_param(exc.body), self.model)
        if account is not None:
            return account
        if _refuses_mode(status, said, mode):
            return _ModeRefused(
                ModelRequestRejected(
                    f"the model server rejected the request (HTTP {status}): {said}"
                )
            )
        if status >= 500 or status in {408, 409}:
            return ModelUnavailable(f"the model server failed (HTTP {status}): {said}")
        rejected = ModelRequestRejected(
            f"the model server rejected the request (HTTP {status}): {said}"
        )
        if status == 400 and self._length_name in said and "support" in said.lower():
            return _LengthNameRefused(rejected)
        return rejected

    def _transport_error(self, exc: openai.APIError) -> ModelError:
        if isinstance(exc, openai.APITimeoutError):
            return ModelUnavailable(
                f"the model server did not answer within {self._settings.timeout:g} s (ai.timeout)"
            )
        where = self._settings.base_url
        if isinstance(exc, openai.APIConnectionError):
            cause = str(exc.__cause__ or "") or type(exc.__cause__ or exc).__name__
            message = f"cannot reach the model server at {where}: {cause}"
            return ModelUnavailable(self._scrub(message))
        return ModelUnavailable(self._scrub(f"the model server at {where} failed: {exc.message}"))

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, _MASK) if self._key else text


def _refuses_mode(status: int, said: str, mode: StructuredOutput) -> bool:
    """Whether an error answer may be the server refusing the structured-output mode: a 400 or
    422 in a structured mode (unless it is about the length's name), or any error that names
    `response_format` (llama-cpp-python's server answers 500 to `json_schema`)."""
    if mode == "prompt":
        return False
    if "response_format" in said or mode in said:
        return True
    return status in {400, 422} and "max_tokens" not in said and "max_completion" not in said


class _LengthNameRefused(_ModeRefused):
    """A 400 saying the server wants the other name for the completion's length."""


_NOT_AN_API = (
    "the model server answered with something that is not a chat completion; "
    "check ai.base_url is the server's OpenAI-compatible address (usually ending in /v1)"
)


def _reply(completion: ChatCompletion, headers: httpx.Headers) -> Reply:
    content: str | None = None
    finish_reason: str | None = None
    choices: Sequence[Any] = completion.choices if isinstance(completion.choices, list) else []
    if choices:
        message = getattr(choices[0], "message", None)
        found = getattr(message, "content", None)
        content = found if isinstance(found, str) else None
        reason = getattr(choices[0], "finish_reason", None)
        finish_reason = reason if isinstance(reason, str) else None
    model = completion.model if isinstance(completion.model, str) else ""
    return Reply(content, finish_reason, _usage(completion), model, headers)


def _usage(completion: ChatCompletion) -> TokenUsage:
    usage = completion.usage
    tokens_in = getattr(usage, "prompt_tokens", None)
    tokens_out = getattr(usage, "completion_tokens", None)
    if not isinstance(tokens_in, int) or not isinstance(tokens_out, int):
        return TokenUsage()
    return TokenUsage(max(tokens_in, 0), max(tokens_out, 0))
