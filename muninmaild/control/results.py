"""The commands about results: to-dos listed, closed and reopened, and the digest.

Plain functions of the repository (and, to deliver, the digest's delivery), called by the
handlers in `commands.py`, which turn their `ProtocolError`s into error answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from muninmaild import protocol
from muninmaild.digest import build, message, render
from muninmaild.errors import FetchError
from muninmaild.protocol import DigestArgs, ProtocolError, TodoIdsArgs, TodosArgs, iso
from muninmaild.store.repository import Repository

if TYPE_CHECKING:  # it loads aioimaplib, which only an IMAP account needs
    from muninmaild.writeback.digest import DigestDelivery

Json = dict[str, Any]


def today() -> date:
    """Overdue is past the due date where the daemon runs (its local day)."""
    return datetime.now().astimezone().date()


async def todos(repo: Repository, args: TodosArgs) -> Json:
    found = await repo.todo_list(
        today(), include_done=args.all, overdue=args.overdue, limit=args.limit
    )
    return {"todos": found}


async def set_done(repo: Repository, args: TodoIdsArgs, done: bool) -> Json:
    """All the ids or none: an unknown id changes nothing and is named."""
    changed, missing = await repo.set_todos_done(list(args.ids), done)
    if missing:
        listed = ", ".join(str(i) for i in missing[:20])
        raise ProtocolError(protocol.NOT_FOUND, f"there is no to-do {listed}; nothing changed")
    return {"changed": changed, "todos": await repo.todos_by_id(list(args.ids), today())}


async def digest(
    repo: Repository,
    args: DigestArgs,
    accounts: Sequence[str],
    delivery: DigestDelivery | None,
) -> Json:
    if args.account is not None and args.account not in accounts:
        known = ", ".join(accounts) or "none"
        raise ProtocolError(
            protocol.NOT_FOUND, f"there is no account {args.account!r}; accounts: {known}"
        )
    if args.deliver and delivery is None:
        raise ProtocolError(
            protocol.NOT_CONFIGURED,
            'digest delivery is not configured: set [digest] account = "<an IMAP account>"',
        )
    now = datetime.now(UTC)
    window = build.period(args.seconds, now, args.account)
    messages = await repo.digest_messages(window.since, window.until, args.account)
    open_todos = await repo.todo_list(today(), account=args.account, limit=protocol.MAX_LIMIT)
    d = build.digest(messages, open_todos, window, args.account, now)
    text = render.text(d)
    result: Json = {"digest": d, "text": text}
    if args.deliver:
        assert delivery is not None
        result["delivery"] = await _deliver(delivery, d, text, now)
    return result


async def _deliver(delivery: DigestDelivery, d: Json, text: str, now: datetime) -> Json:
    address = message.address_for(delivery.account.username)
    key = d["period"]["key"]

    def raw(message_id: str) -> bytes:
        return message.build(d, text, address=address, message_id=message_id, now=now)

    where = f"{delivery.account.name}/{delivery.mailbox}"
    try:
        done = await delivery.deliver(key, message.new_message_id(), raw)
    except FetchError as exc:
        raise ProtocolError(
            protocol.UNAVAILABLE,
            f"the digest could not be delivered to {where}: {exc}; run it again to retry",
        ) from None
    record = done.record
    return {
        "appended": done.appended,
        "account": record.account,
        "mailbox": record.mailbox,
        "period": record.period,
        "message_id": record.message_id,
        "delivered_at": iso(record.delivered_at),
    }
