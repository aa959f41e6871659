"""The control protocol's shapes and argument checks, as tables (no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from muninmaild import protocol
from muninmaild.protocol import (
    FetchNowArgs,
    ListArgs,
    NoArgs,
    PauseArgs,
    ProtocolError,
    RequeueArgs,
    ShowArgs,
    TodosArgs,
    WaitIdleArgs,
)


def line(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


@pytest.mark.parametrize(
    ("cmd", "args", "expected"),
    [
        ("ping", {}, NoArgs()),
        ("version", {}, NoArgs()),
        ("status", {}, NoArgs()),
        ("reload", {}, NoArgs()),
        ("pause", {}, PauseArgs(("fetcher", "processor"))),
        ("pause", {"what": "both"}, PauseArgs(("fetcher", "processor"))),
        ("pause", {"what": "fetcher"}, PauseArgs(("fetcher",))),
        ("resume", {"what": "processor"}, PauseArgs(("processor",))),
        ("requeue", {"ids": [3, 1]}, RequeueArgs((3, 1))),
        ("requeue", {"failed": True}, RequeueArgs(status="failed")),
        ("requeue", {"ids": [1], "failed": True}, RequeueArgs((1,), status="failed")),
        (
            "requeue",
            {"skipped": True, "account": "work", "until": "2026-11-01", "yes": True},
            RequeueArgs(
                skipped=True, account="work", until=datetime(2026, 11, 1, tzinfo=UTC), yes=True
            ),
        ),
        (
            "requeue",
            {"flag": "urgent", "status": "completed", "since": "2026-11-01", "count_only": True},
            RequeueArgs(
                flag="urgent",
                status="completed",
                since=datetime(2026, 11, 1, tzinfo=UTC),
                count_only=True,
            ),
        ),
        ("list", {}, ListArgs(None, None, 50, False)),
        (
            "list",
            {"status": "failed", "limit": 5, "details": True},
            ListArgs("failed", None, 5, True),
        ),
        (
            "list",
            {"since": "2026-11-29T08:00:00Z"},
            ListArgs(since=datetime(2026, 11, 29, 8, tzinfo=UTC)),
        ),
        ("list", {"since": "2026-11-29"}, ListArgs(since=datetime(2026, 11, 29, tzinfo=UTC))),
        ("show", {"id": 7}, ShowArgs(7)),
        ("todos", {}, TodosArgs(200)),
        ("todos", {"limit": 1000}, TodosArgs(1000)),
        ("fetch-now", {}, FetchNowArgs(None)),
        ("fetch-now", {"account": "work"}, FetchNowArgs("work")),
        ("wait-idle", {}, WaitIdleArgs(60.0, False)),
        ("wait-idle", {"timeout": 2, "ignore_retries": True}, WaitIdleArgs(2.0, True)),
        ("wait-idle", {"timeout": 0.25}, WaitIdleArgs(0.25)),
    ],
)
def test_valid_requests(cmd: str, args: dict[str, Any], expected: object) -> None:
    request = protocol.parse_request(line({"id": 9, "cmd": cmd, "args": args}))
    assert (request.id, request.cmd, request.args) == (9, cmd, expected)


def test_since_keeps_its_offset_and_args_may_be_left_out() -> None:
    request = protocol.parse_request(
        b'{"cmd": "list", "args": {"since": "2026-11-29T09:00+01:00"}}'
    )
    assert request.id is None
    assert request.args.since == datetime(2026, 11, 29, 9, tzinfo=timezone(timedelta(hours=1)))
    assert protocol.parse_request(b'{"id": "a", "cmd": "ping"}').args == NoArgs()


@pytest.mark.parametrize(
    ("cmd", "args", "fragment"),
    [
        ("ping", {"x": 1}, "unknown argument 'x'"),
        ("pause", {"what": "everything"}, "what must be one of fetcher, processor, both"),
        ("pause", {"what": 1}, "what must be one of"),
        ("requeue", {}, "choose messages"),
        ("requeue", {"failed": False}, "choose messages"),
        ("requeue", {"yes": True}, "choose messages"),
        ("requeue", {"status": "processing"}, "status must be one of pending, completed, failed"),
        ("requeue", {"failed": True, "status": "pending"}, "failed: true and status 'pending'"),
        ("requeue", {"until": "soon"}, "until must be an ISO 8601 date"),
        ("requeue", {"flag": ""}, "flag must be a non-empty string"),
        ("requeue", {"failed": "yes"}, "failed must be true or false"),
        ("requeue", {"ids": []}, "a list of 1 to 1000"),
        ("requeue", {"ids": "1,2"}, "a list of 1 to 1000"),
        ("requeue", {"ids": list(range(1, 1002))}, "a list of 1 to 1000"),
        ("requeue", {"ids": [1, "2"]}, "positive integers"),
        ("requeue", {"ids": [0]}, "positive integers"),
        ("requeue", {"ids": [True]}, "positive integers"),
        ("requeue", {"ids": [2**63]}, "positive integers"),
        ("list", {"status": "done"}, "status must be one of pending"),
        ("list", {"limit": 0}, "limit must be an integer from 1 to 1000"),
        ("list", {"limit": 1001}, "limit must be an integer"),
        ("list", {"limit": "5"}, "limit must be an integer"),
        ("list", {"limit": 5.0}, "limit must be an integer"),
        ("list", {"limit": True}, "limit must be an integer"),
        ("list", {"since": "yesterday"}, "since must be an ISO 8601"),
        ("list", {"since": 1700000000}, "since must be an ISO 8601"),
        ("list", {"details": 1}, "details must be true or false"),
        ("show", {}, "the message id is missing"),
        ("show", {"id": "7"}, "id must be an integer"),
        ("show", {"id": -1}, "id must be an integer"),
        ("todos", {"limit": -3}, "limit must be"),
        ("fetch-now", {"account": ""}, "account must be a non-empty string"),
        ("fetch-now", {"account": ["a"]}, "account must be a non-empty string"),
        ("wait-idle", {"timeout": 0}, "timeout must be a number of seconds above 0"),
        ("wait-idle", {"timeout": 3601}, "at most 3600"),
        ("wait-idle", {"timeout": "5"}, "timeout must be a number"),
        ("wait-idle", {"ignore_retries": "no"}, "ignore_retries must be true or false"),
    ],
)
def test_bad_arguments(cmd: str, args: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.parse_request(line({"id": 4, "cmd": cmd, "args": args}))
    assert caught.value.code == protocol.BAD_REQUEST
    assert fragment in caught.value.message
    assert caught.value.request_id == 4  # the answer can still name the request


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (b"garbage\n", "bad_request", "one JSON object"),
        (b"\xff\xfe\n", "bad_request", "UTF-8"),
        (b"[1, 2]\n", "bad_request", "must be a JSON object"),
        (b'"ping"\n', "bad_request", "must be a JSON object"),
        (b'{"id": 1}\n', "bad_request", "cmd must be a string"),
        (b'{"id": 1, "cmd": 5}\n', "bad_request", "cmd must be a string"),
        (b'{"id": 1.5, "cmd": "ping"}\n', "bad_request", "id must be"),
        (b'{"id": 1, "cmd": "ping", "args": []}\n', "bad_request", "args must be a JSON object"),
        (b'{"id": 1, "cmd": "ping", "extra": 1}\n', "bad_request", "unknown field 'extra'"),
        (b'{"id": 1, "cmd": "list", "args": {"limit": NaN}}\n', "bad_request", "NaN"),
        (b"[" * 50000 + b"\n", "bad_request", "one JSON object"),
        (b'{"id": 1, "cmd": "shutdown"}\n', "unknown_command", "unknown command 'shutdown'"),
    ],
)
def test_malformed_requests(raw: bytes, code: str, fragment: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.parse_request(raw)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_unknown_command_lists_the_known_ones() -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.parse_request(b'{"cmd": "stats"}')
    assert "ping" in caught.value.message and "wait-idle" in caught.value.message


def test_answers_and_requests_are_single_lines() -> None:
    ok = protocol.encode(protocol.ok_answer(1, {"text": "two\nlines", "name": "Zoë"}))
    assert ok.count(b"\n") == 1 and ok.endswith(b"\n")
    assert json.loads(ok) == {"id": 1, "ok": True, "result": {"text": "two\nlines", "name": "Zoë"}}
    assert protocol.request(3, "ping") == b'{"id":3,"cmd":"ping","args":{}}\n'
    with pytest.raises(ValueError, match="JSON"):
        protocol.encode({"x": float("nan")})


def test_client_side_parsing_of_answers() -> None:
    answer = protocol.parse_answer(protocol.encode(protocol.ok_answer(2, {"pong": True})))
    assert (answer.id, answer.result) == (2, {"pong": True})
    error = protocol.encode(protocol.error_answer(2, "not_found", "there is no message 9"))
    with pytest.raises(ProtocolError) as caught:
        protocol.parse_answer(error)
    assert (caught.value.code, caught.value.message) == ("not_found", "there is no message 9")
    with pytest.raises(ValueError, match="not an answer"):
        protocol.parse_answer(b'{"hello": 1}\n')


def test_greeting_and_a_refusal_in_its_place() -> None:
    greeting = protocol.encode(protocol.greeting("1.2.3"))
    assert protocol.check_greeting(greeting)["version"] == "1.2.3"
    refusal = protocol.encode(protocol.error_answer(None, "forbidden", "uid 65534 may not"))
    with pytest.raises(ProtocolError) as caught:
        protocol.check_greeting(refusal)
    assert caught.value.code == "forbidden"
    with pytest.raises(ValueError, match="protocol 2"):
        protocol.check_greeting(b'{"server": "muninmaild", "version": "9", "protocol": 2}\n')
    with pytest.raises(ValueError, match="not muninmaild"):
        protocol.check_greeting(b'{"server": "redis"}\n')


ERROR_CODE_NAMES = (
    "BAD_REQUEST",
    "UNKNOWN_COMMAND",
    "FORBIDDEN",
    "NOT_FOUND",
    "UNAVAILABLE",
    "TOO_LARGE",
    "TIMEOUT",
    "INVALID_CONFIG",
    "NOT_CONFIGURED",
)


def test_every_error_code_is_documented_and_every_command_too() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    codes = [value for name, value in vars(protocol).items() if name in ERROR_CODE_NAMES]
    assert len(codes) == len(ERROR_CODE_NAMES)
    for code in codes:
        assert f"`{code}`" in doc
    for cmd in protocol.COMMANDS:
        assert f"### `{cmd}`" in doc
