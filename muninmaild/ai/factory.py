"""Pick the backend. The SDK loads only when the `cerebras` backend has a message to analyse."""

from __future__ import annotations

from muninmaild.ai.base import Backend, ModelAnswer, ModelInput
from muninmaild.settings import AISettings


def make_backend(settings: AISettings) -> Backend:
    if settings.backend == "rules":
        from muninmaild.ai.rules import RulesBackend

        return RulesBackend(settings.flags)
    if settings.backend == "noop":
        from muninmaild.ai.noop import NoopBackend

        return NoopBackend()
    return LazyCerebras(settings)


class LazyCerebras:
    """The `cerebras` backend, built on its first message.

    The SDK brings httpx and pydantic, about 25 MB and a quarter of a second; an idle daemon,
    or one that only fetches, never pays for them.
    """

    name = "cerebras"
    local = False
    reads_input = True

    def __init__(self, settings: AISettings) -> None:
        self.model = settings.model
        self._settings = settings
        self._backend: Backend | None = None

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        if self._backend is None:
            from muninmaild.ai.budget import RateBudget
            from muninmaild.ai.cerebras import CerebrasBackend

            s = self._settings
            budget = RateBudget(s.requests_per_minute, s.tokens_per_minute)
            self._backend = CerebrasBackend(s, budget)
        return await self._backend.analyse(item)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
