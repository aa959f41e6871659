"""The cerebras backend against a server that behaves as the Cerebras documentation says:
reasoning counts toward `max_completion_tokens`, daily quotas answer 429 without saying when
they refill, and account or model errors come in the documented shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from muninmaild.ai.budget import RateBudget, budget_for
from muninmaild.ai.cerebras import CerebrasBackend
from muninmaild.config.settings import AISettings, Secret
from muninmaild.errors import ModelAccountError, ModelQuotaSpent, ModelRateLimited
from tests.fakes.model_server import DAILY_QUOTA_MESSAGE, FakeModelServer
from tests.test_cerebras_backend import make_item

KEY = "csk-documented-behaviour-key"
LONG_BODY_CHARS = 12_000


def long_body(n: int) -> str:
    """About 12,000 characters of ordinary prose, different for each `n`."""
    words = f"Report {n}: the quarterly figures for region {n} are attached below. "
    text = (words * (LONG_BODY_CHARS // len(words) + 1))[:LONG_BODY_CHARS]
    return text + "\nPlease send your comments by Friday."


def settings(base_url: str, **changes: Any) -> AISettings:
    """The defaults (free tier, 1,024 completion tokens, effort unset), on our server."""
    return AISettings(backend="cerebras", base_url=base_url, api_key=Secret(KEY), **changes)


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer(tokens_per_minute=10**9, requests_per_day=10**9) as running:
        yield running


@pytest.fixture
async def backend(server: FakeModelServer) -> AsyncIterator[CerebrasBackend]:
    made = CerebrasBackend(settings(server.base_url), RateBudget(0, 0))
    yield made
    await made.aclose()


async def test_long_mail_fits_the_default_room_at_the_default_effort(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    for n in range(10):
        answer = await backend.analyse(make_item(email_id=n, body=long_body(n)))
        assert answer.analysis.summary
    assert server.length_cuts == 0
    assert server.requests_by_room == {1024: 10}
    assert {body["reasoning_effort"] for body in server.last_bodies()} == {"low"}


async def test_long_mail_cut_by_medium_reasoning_is_asked_again_with_more_room(
    server: FakeModelServer,
) -> None:
    # What the service does by default: reasoning at "medium" fills 1,024 tokens on long mail.
    medium = CerebrasBackend(settings(server.base_url, reasoning_effort="medium"), RateBudget())
    try:
        for n in range(10):
            assert (await medium.analyse(make_item(email_id=n, body=long_body(n)))).analysis
    finally:
        await medium.aclose()
    cuts = server.length_cuts
    assert cuts > 0  # the documented failure happens here too
    assert server.requests_by_room == {1024: 10, 4096: cuts}  # each cut asked once more


async def test_reasoning_is_counted_in_the_completion_tokens(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    answer = await backend.analyse(make_item(body=long_body(1)))
    raw = server.recorded()[-1]
    assert raw.json()["reasoning_effort"] == "low"
    assert answer.usage.tokens_out > 50  # reasoning plus a short JSON answer


@pytest.mark.parametrize(
    ("model", "effort", "sent"),
    [
        ("gpt-oss-120b", None, "low"),
        ("gpt-oss-120b", "high", "high"),
        ("gpt-oss-120b", "omit", None),
        ("zai-glm-4.7", None, None),  # a model that does not take it: left out
        ("zai-glm-4.7", "medium", "medium"),  # said explicitly: sent
    ],
)
async def test_reasoning_effort_goes_only_where_it_belongs(
    server: FakeModelServer, model: str, effort: str | None, sent: str | None
) -> None:
    made = CerebrasBackend(
        settings(server.base_url, model=model, reasoning_effort=effort), RateBudget()
    )
    try:
        await made.analyse(make_item())
    finally:
        await made.aclose()
    assert server.last_bodies()[-1].get("reasoning_effort") == sent


async def test_a_spent_daily_quota_holds_without_asking_again(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    server.spend_daily_quota()
    with pytest.raises(ModelQuotaSpent) as caught:
        await backend.analyse(make_item())
    error = caught.value
    assert error.window == "tokens per day" and not error.known  # nothing said when
    assert str(error).startswith("model quota spent until ")
    assert DAILY_QUOTA_MESSAGE.rstrip(".") in str(error)
    assert error.retry_after_s >= 300  # at most one probe every few minutes
    assert "retry-after" not in server.recorded()[-1].headers
    # The next messages are held by the budget itself: no request leaves.
    for _ in range(3):
        with pytest.raises(ModelQuotaSpent):
            await backend.analyse(make_item())
    assert server.requests == 1


async def test_the_daily_quota_429_is_not_a_per_minute_rate_limit(
    backend: CerebrasBackend, server: FakeModelServer
) -> None:
    server.queue_faults("429")
    with pytest.raises(ModelRateLimited) as caught:
        await backend.analyse(make_item())
    assert not isinstance(caught.value, ModelQuotaSpent)
    assert not backend.budget.quota_spent


async def test_a_retired_model_is_an_account_problem_naming_the_model(
    server: FakeModelServer,
) -> None:
    server.retired_models.add("llama3.1-8b")
    made = CerebrasBackend(settings(server.base_url, model="llama3.1-8b"), RateBudget())
    try:
        with pytest.raises(ModelAccountError) as caught:
            await made.analyse(make_item())
    finally:
        await made.aclose()
    message = str(caught.value)
    assert "HTTP 404" in message and "Model llama3.1-8b does not exist" in message
    assert "check ai.model ('llama3.1-8b')" in message


def test_the_free_tier_is_the_default_budget() -> None:
    limits = budget_for(settings("http://127.0.0.1:9")).limits
    assert (limits.requests_per_minute, limits.requests_per_hour, limits.requests_per_day) == (
        30,
        900,
        14_400,
    )
    assert (limits.tokens_per_minute, limits.tokens_per_hour, limits.tokens_per_day) == (
        64_000,
        1_000_000,
        1_000_000,
    )


async def test_a_long_pause_asked_by_a_429_is_a_rate_limit_not_a_quota(
    server: FakeModelServer,
) -> None:
    server.retry_after = "120"
    made = CerebrasBackend(settings(server.base_url), RateBudget(1000, 10**9))
    server.queue_faults("429")
    try:
        with pytest.raises(ModelRateLimited):
            await made.analyse(make_item())
        with pytest.raises(ModelRateLimited) as caught:  # held by the budget: nothing sent
            await made.analyse(make_item())
    finally:
        await made.aclose()
    assert not isinstance(caught.value, ModelQuotaSpent)
    assert "trying again in 12" in str(caught.value) and server.requests == 1
