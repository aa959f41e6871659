"""The key of a cached answer: a hash of exactly the request the model would be sent.

Two messages share an answer only when everything the model would see is the same: the system
prompt (with the flags and the language), the user message (headers, subject, the trimmed body),
the answer's schema, the model and where it runs, and the settings that change what it does
(reasoning effort, room for the answer, structured output). Any change of prompt or settings
gives another key, so an answer cached before it is simply never found again. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from muninmaild.ai.base import ModelInput
from muninmaild.ai.prompt import PROMPT_VERSION, request_messages
from muninmaild.ai.schema import answer_schema
from muninmaild.config.settings import AISettings

KEY_LENGTH = 64  # hex digits of SHA-256


def spells_out(settings: AISettings) -> bool:
    """Whether the first request spells the answer's shape out in the prompt (`openai` in a
    mode without a schema), as the backend's exchange does."""
    return settings.backend == "openai" and settings.structured_output != "json_schema"


def rendered_request(item: ModelInput, settings: AISettings) -> dict[str, Any]:
    """What the key is the hash of: the request for `item` as the backend would send it, with
    the model's address and the prompt's version."""
    flags = [flag.name for flag in settings.flags]
    structured = settings.structured_output if settings.backend == "openai" else "json_schema"
    return {
        "prompt_version": PROMPT_VERSION,
        "backend": settings.backend,
        "base_url": settings.base_url.strip().rstrip("/"),
        "model": settings.model,
        "messages": request_messages(item, settings, spell_out=spells_out(settings)),
        "structured_output": structured,
        "schema": answer_schema(flags) if structured == "json_schema" else None,
        "flags": [[flag.name, flag.description] for flag in settings.flags],
        "language": settings.language,
        "reasoning_effort": settings.effort_for_model(),
        "max_completion_tokens": settings.max_completion_tokens,
        "temperature": 0,
    }


def request_key(item: ModelInput, settings: AISettings) -> str:
    """SHA-256 of the rendered request, as 64 hex digits."""
    text = json.dumps(rendered_request(item, settings), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
