"""The shapes every backend speaks, and the protocol a backend implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from muninmaild.records import Analysis, TokenUsage


@dataclass(frozen=True)
class ModelInput:
    """What a backend is given about one message: never attachments, body already trimmed."""

    email_id: int
    subject: str
    from_addr: str
    to_addrs: str
    date: str  # RFC 2822 or ISO text as found; "" when unknown
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)
    attachment_names: tuple[str, ...] = ()
    has_calendar: bool = False
    # The account keeps bodies private (`send_body = false`): `body` is empty and the prompt
    # says so, so the model judges from the headers, the subject and the attachment names.
    body_withheld: bool = False


@dataclass(frozen=True)
class ModelAnswer:
    analysis: Analysis
    usage: TokenUsage
    model: str


class Backend(Protocol):
    """A model backend. `analyse` raises only `muninmaild.errors.ModelError` subclasses."""

    name: str
    model: str
    # True for backends that answer in this process at once (rules, noop): no lease renewal,
    # no drain deadline to watch, so the processor calls them directly.
    local: bool
    # False for a backend that never looks at the message (noop): its input is not prepared.
    reads_input: bool

    async def analyse(self, item: ModelInput) -> ModelAnswer: ...

    async def aclose(self) -> None: ...
