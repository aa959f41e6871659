"""The `noop` backend: answers at once with a fixed result.

For measuring the queue itself (benchmarks, scale-out tests), where any model time would hide
what the database and the loops cost. Not meant for real mail.
"""

from __future__ import annotations

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.records import Analysis, Todo, TokenUsage

_ANSWER = Analysis(
    summary="(not analysed: noop backend)",
    flags=(),
    todos=(Todo("(noop)", "low", None),),
)


class NoopBackend:
    name = "noop"
    model = "noop"
    local = True
    reads_input = False

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        return ModelAnswer(_ANSWER, TokenUsage(0, 0), self.model)

    async def aclose(self) -> None:
        return None
