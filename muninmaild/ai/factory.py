"""Pick the backend. The SDK loads only when the `cerebras` backend is configured."""

from __future__ import annotations

from muninmaild.ai.base import Backend
from muninmaild.settings import AISettings


def make_backend(settings: AISettings) -> Backend:
    if settings.backend == "rules":
        from muninmaild.ai.rules import RulesBackend

        return RulesBackend(settings.flags)
    if settings.backend == "noop":
        from muninmaild.ai.noop import NoopBackend

        return NoopBackend()
    from muninmaild.ai.budget import RateBudget
    from muninmaild.ai.cerebras import CerebrasBackend

    budget = RateBudget(settings.requests_per_minute, settings.tokens_per_minute)
    return CerebrasBackend(settings, budget)
