"""One message's exchange with a chat completions service, whatever client speaks it.

Both HTTP backends (`cerebras`, `openai`) share this: the prompt, the rate budget, and the
second chances that cost the message no attempt:

- an answer cut at the token limit (`finish_reason: "length"`, the hidden reasoning counts
  toward it) is asked once more with `LENGTH_ROOM_FACTOR` times the room;
- with `reask`, an answer that is not valid is asked once more, with the validation error.

Only when the second chance fails too does the message's attempt end in an error. The tokens
of every request are added up, failed ones included: they were paid for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.ai.budget import RateBudget
from muninmaild.ai.prompt import estimate_tokens, request_messages
from muninmaild.ai.schema import parse_answer
from muninmaild.ai.service_errors import quota_error
from muninmaild.config.settings import AISettings
from muninmaild.errors import ModelAnswerInvalid, ModelError, ModelRateLimited
from muninmaild.records import TokenUsage

LENGTH_ROOM_FACTOR = 4
# Waits for the per-minute windows happen in place; a longer one (an hourly or daily quota)
# is not waited out holding a message: the message goes back and processing is held.
MAX_BUDGET_WAIT_S = 60.0
REASK = (
    "Your answer could not be used: {problem}. Answer again with the JSON object only, "
    "exactly as the instructions say."
)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Reply:
    """What one request brought back."""

    content: str | None
    finish_reason: str | None
    usage: TokenUsage
    model: str
    headers: Mapping[str, str] = field(default_factory=dict)


# Sends `messages` with room for `max_tokens` completion tokens; raises only ModelError.
Send = Callable[[Messages, int], Awaitable[Reply]]


class Exchange:
    def __init__(
        self,
        settings: AISettings,
        budget: RateBudget,
        *,
        reask: bool,
        spell_out: Callable[[], bool] = lambda: False,
    ) -> None:
        self._settings = settings
        self._budget = budget
        self._reask = reask
        self._spell_out = spell_out
        self._flag_names = [flag.name for flag in settings.flags]

    async def run(self, item: ModelInput, send: Send, model: str) -> ModelAnswer:
        s = self._settings
        messages = request_messages(item, s, spell_out=self._spell_out())
        room, usage = s.max_completion_tokens, TokenUsage()
        cut_once = asked_again = False
        while True:
            try:
                reply = await self._request(messages, room, send)
            except ModelError as exc:
                exc.usage = _add(usage, exc.usage)  # a second chance's first request counts
                raise
            usage = _add(usage, reply.usage)
            if reply.finish_reason == "length":
                if not cut_once:
                    cut_once, room = True, room * LENGTH_ROOM_FACTOR
                    continue
                raise ModelAnswerInvalid(
                    f"the model's answer was cut short at the token limit ({room} tokens, "
                    "reasoning included); raise ai.max_completion_tokens or lower "
                    "ai.reasoning_effort if this keeps happening",
                    usage,
                )
            try:
                analysis = parse_answer(reply.content, self._flag_names)
            except ModelAnswerInvalid as exc:
                if self._reask and not asked_again:
                    asked_again = True
                    messages = [*messages, *_reask(reply.content, str(exc))]
                    continue
                raise ModelAnswerInvalid(str(exc), usage) from None
            return ModelAnswer(analysis=analysis, usage=usage, model=reply.model[:100] or model)

    async def _request(self, messages: Messages, room: int, send: Send) -> Reply:
        # Services reserve max_completion_tokens up front, so the budget does too.
        estimate = estimate_tokens(messages) + room
        shortage = await self._budget.acquire(estimate, max_wait=MAX_BUDGET_WAIT_S)
        if shortage is not None and shortage.quota:
            raise quota_error(shortage, known=False)
        if shortage is not None:  # a long pause after a 429 that asked for one
            raise ModelRateLimited(
                f"waiting for the model service's rate limit ({shortage.window}); "
                f"trying again in {shortage.wait_s:.0f} s",
                retry_after_s=shortage.wait_s,
            )
        try:
            reply = await send(messages, room)
        except BaseException:
            # The server answered without generating, or not at all: give the tokens back.
            self._budget.settle(estimate, 0)
            raise
        self._budget.settle(estimate, reply.usage.tokens_in + reply.usage.tokens_out)
        self._budget.answered()
        self._budget.observe_headers(reply.headers)
        return reply


def _reask(content: str | None, problem: str) -> Messages:
    answer = (content or "").strip()[:4000] or "(empty)"
    return [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": REASK.format(problem=problem.removeprefix("the model's "))},
    ]


def _add(a: TokenUsage, b: TokenUsage) -> TokenUsage:
    return TokenUsage(a.tokens_in + b.tokens_in, a.tokens_out + b.tokens_out)
