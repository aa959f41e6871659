"""The answer cache's statements: answers kept by the hash of their request, shared by every
instance, bounded by age and count. A mixin of `Repository`.

Answers are written in the completer's transaction, with the results of the message that made
them; two instances that computed the same answer at once both insert it and one of them wins
(insert-or-ignore: no error, and the answers are the same request's). The cache holds answers,
which are as sensitive as results: `prune_answer_cache` drops entries by age (the processor
calls it with the smaller of `ai.cache_days` and `database.retention_days`) and beyond a count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.records import PRIORITIES, Analysis, CachedAnswer, Todo, TokenUsage
from muninmaild.store.engine import dialect_insert
from muninmaild.store.models import AnswerCacheEntry, Result

# (key, analysis, model, usage): an answer the model gave, to keep.
NewAnswer = tuple[str, Analysis, str, TokenUsage]


class AnswerCacheStore:
    _engine: AsyncEngine
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]

    async def cached_answer(self, key: str, since: datetime) -> CachedAnswer | None:
        """The answer kept under `key` if it was made at or after `since`, else None."""
        stmt = select(
            AnswerCacheEntry.answer,
            AnswerCacheEntry.model,
            AnswerCacheEntry.tokens_in,
            AnswerCacheEntry.tokens_out,
            AnswerCacheEntry.created_at,
        ).where(AnswerCacheEntry.key == key, AnswerCacheEntry.created_at >= since)
        async with self._reader.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        analysis = decode_analysis(row.answer)
        if analysis is None:  # not an answer this version can read: as if it were not there
            return None
        usage = TokenUsage(row.tokens_in, row.tokens_out)
        return CachedAnswer(analysis, row.model, usage, row.created_at)

    async def prune_answer_cache(self, before: datetime, keep: int | None = None) -> int:
        """Drop cached answers made before `before`, and beyond the newest `keep`; how many.

        Retention (`database.retention_days`) calls it with its own cutoff too: an answer is as
        sensitive as the result it was stored with.
        """
        dropped = 0
        async with self._tx() as conn:
            old = delete(AnswerCacheEntry).where(AnswerCacheEntry.created_at < before)
            dropped += (await conn.execute(old)).rowcount
            if keep is not None:
                newest = (
                    select(AnswerCacheEntry.created_at)
                    .order_by(AnswerCacheEntry.created_at.desc())
                    .offset(keep - 1)
                    .limit(1)
                    .scalar_subquery()
                )
                extra = delete(AnswerCacheEntry).where(AnswerCacheEntry.created_at < newest)
                dropped += (await conn.execute(extra)).rowcount
        return dropped

    async def answer_cache_size(self) -> int:
        async with self._reader.connect() as conn:
            found = await conn.execute(select(func.count()).select_from(AnswerCacheEntry))
            return int(found.scalar_one())

    async def answers_since(self, since: datetime) -> dict[str, int]:
        """Answers stored since `since` by origin ("model", "cache", "skipped"; results stored
        before the origin was recorded are left out)."""
        stmt = (
            select(Result.origin, func.count())
            .where(Result.created_at >= since, Result.origin.is_not(None))
            .group_by(Result.origin)
        )
        async with self._reader.connect() as conn:
            return {str(origin): int(n) for origin, n in (await conn.execute(stmt)).all()}

    async def _cache_answers(
        self, conn: AsyncConnection, answers: Sequence[NewAnswer], now: datetime
    ) -> None:
        """Keep the model's answers (in the caller's transaction); a key already kept stays."""
        values = {
            key: {
                "key": key,
                "answer": encode_analysis(analysis),
                "model": model,
                "tokens_in": usage.tokens_in,
                "tokens_out": usage.tokens_out,
                "created_at": now,
            }
            for key, analysis, model, usage in answers
        }
        if values:
            stmt = dialect_insert(self._engine)(AnswerCacheEntry).on_conflict_do_nothing()
            await conn.execute(stmt, list(values.values()))


async def drop_cached_answers(conn: AsyncConnection, email_ids: Any) -> None:
    """Forget the cached answers the messages `email_ids` (a SELECT of ids) were given, so that
    the model is asked again (a requeue)."""
    keys = select(Result.cache_key).where(
        Result.email_id.in_(email_ids), Result.cache_key.is_not(None)
    )
    await conn.execute(delete(AnswerCacheEntry).where(AnswerCacheEntry.key.in_(keys)))


def encode_analysis(analysis: Analysis) -> str:
    todos = [
        {"task": t.task, "priority": t.priority, "due": t.due.isoformat() if t.due else None}
        for t in analysis.todos
    ]
    answer = {"summary": analysis.summary, "flags": list(analysis.flags), "todos": todos}
    return json.dumps(answer, ensure_ascii=False)


def decode_analysis(text: str) -> Analysis | None:
    """The answer kept as JSON, or None for anything that is not one (a damaged row)."""
    try:
        found = json.loads(text)
        todos = tuple(
            Todo(
                str(t["task"]),
                _priority(t["priority"]),
                date.fromisoformat(t["due"]) if t.get("due") else None,
            )
            for t in found["todos"]
        )
        return Analysis(str(found["summary"]), tuple(str(f) for f in found["flags"]), todos)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _priority(value: object) -> Any:
    if value not in PRIORITIES:
        raise ValueError(f"not a priority: {value!r}")
    return value
