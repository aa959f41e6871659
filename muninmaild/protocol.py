"""The control protocol between muninmaild and muninctl: JSON lines on a Unix socket.

Standard library only, because the client imports this module and nothing else of the daemon.

    server  {"server": "muninmaild", "version": "0.1.0", "protocol": 1}      once, on connect
    client  {"id": 1, "cmd": "status", "args": {}}
    server  {"id": 1, "ok": true, "result": {...}}
        or  {"id": 1, "ok": false, "error": {"code": "not_found", "message": "..."}}

A peer that may not steer the daemon gets one error line instead of the greeting. Fields are
only ever added, never renamed or removed; `protocol` changes only when that promise breaks.
Every command's arguments are checked here, so the handlers get typed values and a bad request
never reaches them. docs/protocol.md documents each command.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

NAME = "muninmaild"
PROTOCOL = 1
MAX_REQUEST_BYTES = 64 * 1024
MAX_IDS = 1000  # per requeue request; the client sends more in several requests
CONFIRM_ABOVE = 1000  # a requeue of more messages than this must say `yes`
MAX_LIMIT = 1000
MAX_ID = 2**63 - 1
MAX_WAIT_S = 3600.0
DEFAULT_LIST_LIMIT = 50
DEFAULT_TODOS_LIMIT = 200
DEFAULT_WAIT_S = 60.0
DEFAULT_DIGEST_S = 86400  # the digest's period: the last 24 hours
MAX_DIGEST_S = 366 * 86400

BAD_REQUEST = "bad_request"
UNKNOWN_COMMAND = "unknown_command"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
UNAVAILABLE = "unavailable"
TOO_LARGE = "too_large"
TIMEOUT = "timeout"
INVALID_CONFIG = "invalid_config"
NOT_CONFIGURED = "not_configured"
CONFIRM = "confirm"  # a requeue of many messages without `yes`: nothing was done

# The parts that can be paused, and the states of a message in the queue (`processing_status`).
COMPONENTS = ("fetcher", "processor")
STATUSES = ("pending", "processing", "completed", "failed")
REQUEUE_STATUSES = ("pending", "completed", "failed")  # a row being processed is never requeued

RequestId = int | str | None


class ProtocolError(Exception):
    """An error answer: `code` is one of the codes above, `message` is for a person."""

    def __init__(self, code: str, message: str, request_id: RequestId = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


# -- typed arguments, one shape per command ---------------------------------------------------


@dataclass(frozen=True)
class NoArgs:
    pass


@dataclass(frozen=True)
class PauseArgs:
    components: tuple[str, ...] = COMPONENTS


@dataclass(frozen=True)
class RequeueFilter:
    """Which messages `requeue` sends through the model again: every condition given must hold.

    `since`/`until` bound the message's date (its Date header); `skipped` takes the mail the
    backfill window left out; `status` "failed" is what `failed` asks for. A row being
    processed is never requeued.
    """

    ids: tuple[int, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    account: str | None = None
    flag: str | None = None
    status: str | None = None
    skipped: bool = False


@dataclass(frozen=True)
class RequeueArgs(RequeueFilter):
    """The messages chosen; `count_only` counts them and changes nothing; `yes` allows more
    than CONFIRM_ABOVE."""

    yes: bool = False
    count_only: bool = False


@dataclass(frozen=True)
class ListArgs:
    status: str | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIST_LIMIT
    details: bool = False


@dataclass(frozen=True)
class ShowArgs:
    id: int


@dataclass(frozen=True)
class TodosArgs:
    limit: int = DEFAULT_TODOS_LIMIT
    all: bool = False  # closed ones too
    overdue: bool = False  # only open ones past their due date


@dataclass(frozen=True)
class TodoIdsArgs:
    ids: tuple[int, ...]


@dataclass(frozen=True)
class DigestArgs:
    seconds: int = DEFAULT_DIGEST_S
    account: str | None = None
    deliver: bool = False


@dataclass(frozen=True)
class FetchNowArgs:
    account: str | None = None


@dataclass(frozen=True)
class WaitIdleArgs:
    timeout: float = DEFAULT_WAIT_S
    ignore_retries: bool = False


@dataclass(frozen=True)
class Request:
    id: RequestId
    cmd: str
    args: Any  # one of the *Args classes above, matching `cmd`


# -- argument checks ----------------------------------------------------------------------------


class _Args:
    """Reads one command's `args` object, refusing unknown keys and wrong types."""

    def __init__(self, cmd: str, args: Mapping[str, Any]) -> None:
        self._cmd = cmd
        self._args = args
        self._seen: set[str] = set()

    @property
    def command(self) -> str:
        return self._cmd

    def fail(self, key: str, wanted: str) -> ProtocolError:
        got = self._args[key]
        return ProtocolError(BAD_REQUEST, f"{self._cmd}: {key} must be {wanted}, not {got!r}")

    def get(self, key: str) -> Any:
        self._seen.add(key)
        return self._args.get(key)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.get(key)
        if value is None:
            return default
        if not _is_int(value) or not low <= value <= high:
            raise self.fail(key, f"an integer from {low} to {high}")
        return int(value)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.get(key)
        if value is None:
            return default
        ok = _is_int(value) or isinstance(value, float)
        if not ok or not math.isfinite(value) or not low < value <= high:
            raise self.fail(key, f"a number of seconds above {low:g} and at most {high:g}")
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.get(key)
        if value is not None and value not in choices:
            raise self.fail(key, "one of " + ", ".join(choices))
        return value if isinstance(value, str) else None

    def string(self, key: str) -> str | None:
        value = self.get(key)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 255):
            raise self.fail(key, "a non-empty string")
        return value if isinstance(value, str) else None

    def finish(self) -> None:
        unknown = sorted(set(self._args) - self._seen)
        if unknown:
            raise ProtocolError(BAD_REQUEST, f"{self._cmd}: unknown argument {unknown[0]!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_args(a: _Args) -> NoArgs:
    return NoArgs()


def _pause_args(a: _Args) -> PauseArgs:
    what = a.choice("what", (*COMPONENTS, "both")) or "both"
    return PauseArgs(COMPONENTS if what == "both" else (what,))


def _requeue_args(a: _Args) -> RequeueArgs:
    status = a.choice("status", REQUEUE_STATUSES)
    if a.boolean("failed"):
        if status not in (None, "failed"):
            raise ProtocolError(BAD_REQUEST, f"requeue: failed: true and status {status!r}")
        status = "failed"
    found = RequeueArgs(
        ids=_requeue_ids(a),
        since=_since(a),
        until=_since(a, "until"),
        account=a.string("account"),
        flag=a.string("flag"),
        status=status,
        skipped=a.boolean("skipped"),
        yes=a.boolean("yes"),
        count_only=a.boolean("count_only"),
    )
    chosen = (found.ids, found.since, found.until, found.account, found.flag, found.status)
    if all(c is None for c in chosen) and not found.skipped:
        raise ProtocolError(
            BAD_REQUEST,
            "requeue: choose messages: ids, failed, status, since, until, account, flag or skipped",
        )
    return found


def _requeue_ids(a: _Args) -> tuple[int, ...] | None:
    ids = a.get("ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_IDS:
        raise a.fail("ids", f"a list of 1 to {MAX_IDS} message ids")
    if not all(_is_int(i) and 0 < i <= MAX_ID for i in ids):
        raise a.fail("ids", "a list of positive integers")
    return tuple(ids)


def _list_args(a: _Args) -> ListArgs:
    return ListArgs(
        status=a.choice("status", STATUSES),
        since=_since(a),
        limit=a.integer("limit", DEFAULT_LIST_LIMIT, 1, MAX_LIMIT),
        details=a.boolean("details"),
    )


def _since(a: _Args, key: str = "since") -> datetime | None:
    value = a.get(key)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None:
        raise a.fail(key, "an ISO 8601 date or time such as 2026-11-29T08:00:00Z")
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _show_args(a: _Args) -> ShowArgs:
    if a.get("id") is None:
        raise ProtocolError(BAD_REQUEST, "show: the message id is missing")
    return ShowArgs(a.integer("id", 0, 1, MAX_ID))


def _todos_args(a: _Args) -> TodosArgs:
    return TodosArgs(
        a.integer("limit", DEFAULT_TODOS_LIMIT, 1, MAX_LIMIT),
        all=a.boolean("all"),
        overdue=a.boolean("overdue"),
    )


def _todo_ids_args(a: _Args) -> TodoIdsArgs:
    ids = a.get("ids")
    if ids is None:
        raise ProtocolError(BAD_REQUEST, f"{a.command}: the to-do ids are missing")
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_IDS:
        raise a.fail("ids", f"a list of 1 to {MAX_IDS} to-do ids")
    if not all(_is_int(i) and 0 < i <= MAX_ID for i in ids):
        raise a.fail("ids", "a list of positive integers")
    return TodoIdsArgs(tuple(dict.fromkeys(ids)))


def _digest_args(a: _Args) -> DigestArgs:
    return DigestArgs(
        seconds=a.integer("seconds", DEFAULT_DIGEST_S, 60, MAX_DIGEST_S),
        account=a.string("account"),
        deliver=a.boolean("deliver"),
    )


def _fetch_now_args(a: _Args) -> FetchNowArgs:
    return FetchNowArgs(a.string("account"))


def _wait_idle_args(a: _Args) -> WaitIdleArgs:
    return WaitIdleArgs(
        timeout=a.number("timeout", DEFAULT_WAIT_S, 0.0, MAX_WAIT_S),
        ignore_retries=a.boolean("ignore_retries"),
    )


COMMANDS: dict[str, Callable[[_Args], object]] = {
    "ping": _no_args,
    "version": _no_args,
    "status": _no_args,
    "pause": _pause_args,
    "resume": _pause_args,
    "requeue": _requeue_args,
    "list": _list_args,
    "show": _show_args,
    "todos": _todos_args,
    "fetch-now": _fetch_now_args,
    "reload": _no_args,
    "wait-idle": _wait_idle_args,
    "metrics": _no_args,
    "done": _todo_ids_args,
    "undone": _todo_ids_args,
    "digest": _digest_args,
}


# -- requests and answers -----------------------------------------------------------------------


def parse_request(line: bytes) -> Request:
    """One request line to a checked `Request`; ProtocolError for anything else."""
    message = _decode(line)
    if not isinstance(message, dict):
        raise ProtocolError(BAD_REQUEST, "a request must be a JSON object")
    request_id = message.get("id")
    if not (request_id is None or _is_int(request_id) or isinstance(request_id, str)):
        raise ProtocolError(BAD_REQUEST, "id must be an integer, a string or null")
    try:
        return _checked(message, request_id)
    except ProtocolError as exc:
        exc.request_id = request_id
        raise


def _checked(message: dict[str, Any], request_id: RequestId) -> Request:
    extra = sorted(set(message) - {"id", "cmd", "args"})
    if extra:
        raise ProtocolError(BAD_REQUEST, f"unknown field {extra[0]!r} in the request")
    cmd, args = message.get("cmd"), message.get("args", {})
    if not isinstance(cmd, str):
        raise ProtocolError(BAD_REQUEST, "cmd must be a string naming the command")
    if cmd not in COMMANDS:
        known = ", ".join(COMMANDS)
        raise ProtocolError(UNKNOWN_COMMAND, f"unknown command {cmd[:64]!r}; known: {known}")
    if not isinstance(args, dict):
        raise ProtocolError(BAD_REQUEST, "args must be a JSON object")
    reader = _Args(cmd, args)
    checked = COMMANDS[cmd](reader)
    reader.finish()
    return Request(request_id, cmd, checked)


def _decode(line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise ProtocolError(BAD_REQUEST, "a request must be UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_REQUEST, f"a request must be one JSON object: {exc}") from None


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def iso(when: datetime | None) -> str | None:
    """A time as answers carry it: UTC, to the second, with a Z."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def request(request_id: int, cmd: str, args: Mapping[str, Any] | None = None) -> bytes:
    return encode({"id": request_id, "cmd": cmd, "args": dict(args or {})})


def ok_answer(request_id: RequestId, result: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": request_id, "ok": True, "result": dict(result)}


def error_answer(request_id: RequestId, code: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message}}


def greeting(version: str) -> dict[str, Any]:
    return {"server": NAME, "version": version, "protocol": PROTOCOL}


def encode(message: Mapping[str, Any]) -> bytes:
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


@dataclass(frozen=True)
class Answer:
    id: RequestId
    result: dict[str, Any]


def parse_answer(line: bytes) -> Answer:
    """An answer line as the client sees it: the result, or ProtocolError for an error answer.

    A line that is no answer at all raises ValueError.
    """
    message = json.loads(line.decode("utf-8"))
    if not isinstance(message, dict) or not isinstance(message.get("ok"), bool):
        raise ValueError("not an answer of the muninmaild control protocol")
    if message["ok"]:
        result = message.get("result")
        return Answer(message.get("id"), result if isinstance(result, dict) else {})
    error = message.get("error")
    if not isinstance(error, dict):
        raise ValueError("an error answer without an error object")
    code = str(error.get("code", UNAVAILABLE))
    raise ProtocolError(code, str(error.get("message", code)), message.get("id"))


def check_greeting(line: bytes) -> dict[str, Any]:
    """The server's first line: its greeting, or ProtocolError if it refused us instead."""
    message = json.loads(line.decode("utf-8"))
    if isinstance(message, dict) and "ok" in message:
        parse_answer(line)  # an error line instead of the greeting raises here
    if not isinstance(message, dict) or message.get("server") != NAME:
        raise ValueError(f"the peer is not {NAME}")
    if message.get("protocol") != PROTOCOL:
        raise ValueError(
            f"{NAME} speaks control protocol {message.get('protocol')}, this client {PROTOCOL}"
        )
    return message
