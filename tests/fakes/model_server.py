"""An OpenAI-compatible chat completions server for tests and benchmarks (standard library only).

`POST /v1/chat/completions` answers with a triage answer derived from the request: the summary
names the subject, flags come from the request's schema (or its system prompt) by keyword, a body
asking "please ..." gets one to-do. Answers carry `usage` and `x-ratelimit-*` headers like the real
service's.

What Cerebras documents, it does (`flavour="cerebras"`, the default):
- GPT-OSS models (a model name with "gpt-oss") reason before they answer, at `reasoning_effort`
  "medium" unless the request says otherwise; the reasoning grows with the prompt, goes to the
  message's `reasoning` field and counts in `usage.completion_tokens` (and
  `completion_tokens_details.reasoning_tokens`). When reasoning and answer do not fit in
  `max_completion_tokens` (or `max_tokens`), the content is empty and `finish_reason` "length".
- Error bodies are `{"message", "type", "param", "code"}` at the top level.
- A model in `retired_models` gets 404 (`param` "model", code `model_not_found`).
- `tokens_per_day` (None: no limit) is a daily quota; once spent every request gets 429 "Tokens
  per day limit exceeded - too many tokens processed." (type `too_many_tokens_error`) with no
  `retry-after` and only the documented headers, none of which tells when it refills.

Other servers users run (`flavour`):
- "local": ignores `response_format` and answers with a `<think>` block and the JSON in a code
  fence, as small reasoning models on Ollama or llama.cpp do;
- "sloppy": as "local", and the first answer of each conversation breaks the schema; the
  answer to a request that carries an earlier answer and a correction is valid;
- "no_json_schema": answers 400 to `response_format` type `json_schema` (as some services do
  for some models), honours `json_object`.

Faults served instead of an answer: `429` (with `retry-after`), `500`, `503`, `401`, `402`, `403`,
`404`, `daily_quota` (the daily-quota 429), `timeout` (hold the request past the client's
timeout, then close), `drop` (close without answering), `malformed_json` (200, body not JSON),
`bad_schema` (content breaks the schema), `empty_length` (empty content, finish_reason
"length"). Queue them with `queue_faults`, or draw them at a seeded rate with `set_fault_rate`;
both can change while the server runs.

    with FakeModelServer(latency=0.05) as server:
        client = AsyncCerebras(base_url=server.base_url, ...)

    python -m tests.fakes.model_server --port 8099 --latency 0.2 --fault-rate 0.1 --faults 429,503
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import random
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self, TypeVar

_T = TypeVar("_T")

HTTP_FAULTS = ("429", "500", "503", "401", "402", "403", "404", "daily_quota")
FAULT_KINDS = (*HTTP_FAULTS, "timeout", "drop", "malformed_json", "bad_schema", "empty_length")
FLAVOURS = ("cerebras", "local", "sloppy", "no_json_schema")
# Reasoning tokens per prompt token, by effort (GPT-OSS models; "medium" when none is asked).
REASONING_PER_PROMPT_TOKEN = {"none": 0.0, "low": 0.05, "medium": 0.25, "high": 0.8}
DAILY_QUOTA_MESSAGE = "Tokens per day limit exceeded - too many tokens processed."
COMPLETIONS_PATH = "/v1/chat/completions"

_FLAG_WORDS = {
    "requires_response": ("let me know", "please reply", "can you", "could you", "?"),
    "urgent": ("urgent", "asap", "immediately", "overdue"),
    "meeting_request": ("meeting", "call on", "schedule", "calendar"),
}
_SUBJECT = re.compile(r"^Subject: ?(.*)$", re.MULTILINE)
_PLEASE = re.compile(r"[^.!?\n]*\bplease\b[^.!?\n]*", re.IGNORECASE)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_BROKEN_JSON = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess'
_BAD_ANSWER = {"summary": 42, "flags": "urgent", "todos": [{"task": "x", "priority": "now"}]}


def _error(message: str, kind: str, code: str) -> dict[str, str]:
    return {"message": message, "type": kind, "param": "", "code": code}


_ERRORS = {
    "429": _error("Tokens per minute limit exceeded.", "too_many_tokens_error", "token_quota"),
    "daily_quota": _error(DAILY_QUOTA_MESSAGE, "too_many_tokens_error", "token_quota_exceeded"),
    "500": _error("The server had an error.", "server_error", "internal_error"),
    "503": _error("The service is overloaded.", "server_error", "service_unavailable"),
    "401": _error("Wrong API Key", "invalid_request_error", "wrong_api_key"),
    "402": _error(
        "Payment required: the account has no credit left.", "payment_required", "payment_required"
    ),
    "403": _error(
        "This API key is not allowed to use this resource.", "permission_denied", "forbidden"
    ),
    "404": {
        "message": "Model llama3.1-8b does not exist or you do not have access to it.",
        "type": "not_found_error",
        "param": "model",
        "code": "model_not_found",
    },
}


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _State:
    latency: float = 0.0
    queued: deque[str] = field(default_factory=deque)
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    rng: random.Random = field(default_factory=random.Random)
    requests: int = 0
    answered: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    recorded: deque[RecordedRequest] = field(default_factory=lambda: deque(maxlen=100))
    window_start: float = field(default_factory=time.monotonic)
    window_tokens: int = 0
    day_tokens: int = 0
    day_spent: bool = False  # spend_daily_quota(): spent whatever the limit
    length_cuts: int = 0  # answers cut at the token limit by reasoning (not `empty_length`)
    by_room: Counter[int] = field(default_factory=Counter)  # requests by completion room
    fault_rooms: Counter[tuple[str, int]] = field(default_factory=Counter)


class FakeModelServer:
    """The server: `start()`/`stop()` or a `with` block. Thread-safe; `base_url` has no `/v1`."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        hold_s: float = 5.0,
        retry_after: str = "2",
        tokens_per_minute: int = 60000,
        requests_per_day: int = 14400,
        window_s: float = 60.0,
        echo_key: bool = False,
        backlog: int = 128,
        flavour: str = "cerebras",
        tokens_per_day: int | None = None,
        keep_requests: int = 100,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {flavour!r}; known: {', '.join(FLAVOURS)}")
        self._lock = threading.Lock()
        # The newest `keep_requests` requests are kept for `recorded` (a benchmark keeps all).
        self._state = _State(latency=latency, recorded=deque(maxlen=keep_requests))
        self._stopping = threading.Event()
        self._address = (host, port)
        self.api_key = api_key  # when set, any other key gets a 401
        self.hold_s = hold_s  # how long a `timeout` fault holds its request
        self.retry_after = retry_after
        self.tokens_per_minute = tokens_per_minute
        self.requests_per_day = requests_per_day
        # The token "minute": shorter in tests that must not wait out a whole minute after a 429.
        self.window_s = window_s
        self.echo_key = echo_key  # a 401 quotes the key it refused, as some services do
        # Pending connections the socket holds: the standard library's 5 refuses a burst of
        # 32 clients connecting at once.
        self.backlog = backlog
        self.connections = 0  # TCP connections accepted since start()
        self.flavour = flavour
        self.tokens_per_day = tokens_per_day  # None: no daily quota
        self.retired_models: set[str] = set()  # answered 404, as a retired model is
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._stopping.clear()
        self._httpd = _Server(self._address, _Handler, self)
        # A short poll interval: stop() waits for serve_forever to notice.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and wait for every handler thread."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.cut_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake model server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The address for `AsyncCerebras(base_url=...)`: without `/v1`."""
        return f"http://{self._address[0]}:{self.port}"

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._state.latency = max(0.0, seconds)

    def queue_faults(self, *kinds: str) -> None:
        """Serve these faults, in order, to the next requests."""
        _check_kinds(kinds)
        with self._lock:
            self._state.queued.extend(kinds)

    def set_fault_rate(
        self, rate: float, kinds: tuple[str, ...] = FAULT_KINDS, seed: int = 0
    ) -> None:
        """Serve a fault to about `rate` of the requests, its kind drawn from `kinds`."""
        _check_kinds(kinds)
        with self._lock:
            self._state.fault_rate = rate
            self._state.fault_kinds = tuple(kinds)
            self._state.rng = random.Random(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._state.queued.clear()
            self._state.fault_rate = 0.0

    @property
    def requests(self) -> int:
        """Requests received on the completions path."""
        return self._read(lambda state: state.requests)

    @property
    def answered(self) -> int:
        """Requests answered with HTTP 200 and a completion (bad ones included)."""
        return self._read(lambda state: state.answered)

    @property
    def faults(self) -> dict[str, int]:
        """Faults served, by kind."""
        return self._read(lambda state: dict(state.faults))

    @property
    def length_cuts(self) -> int:
        """Answers cut at the token limit because reasoning and answer did not fit."""
        return self._read(lambda state: state.length_cuts)

    @property
    def fault_rooms(self) -> dict[tuple[str, int], int]:
        """Faults served, by kind and the completion room the request asked for."""
        return self._read(lambda state: dict(state.fault_rooms))

    @property
    def requests_by_room(self) -> dict[int, int]:
        """Requests received, by the completion room they asked for."""
        return self._read(lambda state: dict(state.by_room))

    def spend_daily_quota(self) -> None:
        """Use up today's tokens: every request gets the daily-quota 429 until `reset_day()`."""
        with self._lock:
            self._state.day_spent = True

    def reset_day(self) -> None:
        """A new day: the daily quota has room again."""
        with self._lock:
            self._state.day_tokens = 0
            self._state.day_spent = False

    def recorded(self) -> list[RecordedRequest]:
        """The last requests received (up to 100), oldest first."""
        return self._read(lambda state: list(state.recorded))

    def last_bodies(self) -> list[Any]:
        return [request.json() for request in self.recorded()]

    def _read(self, get: Callable[[_State], _T]) -> _T:
        with self._lock:
            return get(self._state)

    def _admit(self, request: RecordedRequest, payload: Any) -> tuple[str | None, float]:
        """Count a request; the fault to serve it (or None) and the latency to apply."""
        with self._lock:
            state = self._state
            state.requests += 1
            state.recorded.append(request)
            if isinstance(payload, dict):
                state.by_room[_room(payload)] += 1
            fault = state.queued.popleft() if state.queued else None
            if fault is None and state.fault_rate > 0 and state.rng.random() < state.fault_rate:
                fault = state.rng.choice(state.fault_kinds)
            if fault is None:
                fault = self._standing_fault(payload)
            if fault is not None:
                state.faults[fault] += 1
                if isinstance(payload, dict):
                    state.fault_rooms[(fault, _room(payload))] += 1
            return fault, state.latency

    def _standing_fault(self, payload: Any) -> str | None:
        """What every request gets while it lasts: a retired model, a spent daily quota."""
        if isinstance(payload, dict) and str(payload.get("model")) in self.retired_models:
            return "404"
        spent = self.tokens_per_day is not None and self._state.day_tokens >= self.tokens_per_day
        if spent or self._state.day_spent:
            return "daily_quota"
        return None

    def _spend(self, tokens: int, *, cut: bool = False) -> dict[str, str]:
        """Count an answer and its tokens; the rate-limit headers that go with it."""
        with self._lock:
            state = self._state
            state.answered += 1
            state.length_cuts += cut
            state.day_tokens += tokens
            if time.monotonic() - state.window_start >= self.window_s:
                state.window_start, state.window_tokens = time.monotonic(), 0
            state.window_tokens += tokens
            return self._limit_headers(exhausted=False)

    def _limit_headers(self, *, exhausted: bool) -> dict[str, str]:
        """The service's headers; `exhausted` says the token minute is used up (a 429)."""
        state = self._state
        left = 0 if exhausted else max(0, self.tokens_per_minute - state.window_tokens)
        reset = max(0.0, self.window_s - (time.monotonic() - state.window_start))
        return {
            "x-ratelimit-limit-tokens-minute": str(self.tokens_per_minute),
            "x-ratelimit-remaining-tokens-minute": str(left),
            "x-ratelimit-reset-tokens-minute": f"{reset:.2f}",
            "x-ratelimit-limit-requests-day": str(self.requests_per_day),
            "x-ratelimit-remaining-requests-day": str(
                max(0, self.requests_per_day - state.requests)
            ),
            "x-ratelimit-reset-requests-day": f"{86400 - time.time() % 86400:.2f}",
        }

    def _rate_limited_headers(self) -> dict[str, str]:
        with self._lock:
            return {"retry-after": self.retry_after, **self._limit_headers(exhausted=True)}

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the server stops first; True when it is stopping."""
        return seconds > 0 and self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self, address: tuple[str, int], handler: type[_Handler], owner: FakeModelServer):
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.request_queue_size = owner.backlog
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.owner.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        """Wake handlers blocked on idle keep-alive connections, so they can be joined."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-answer on purpose in the fault tests; nothing to report.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    # One write an answer, sent at once: a head and a body in two segments meet the client's
    # delayed ACK and cost 40 ms each.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks print their own output

    def do_GET(self) -> None:
        self._send_json(404, _error("Not found", "not_found_error", "not_found"))

    def do_POST(self) -> None:
        arrived = time.monotonic()
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.rstrip("/") != COMPLETIONS_PATH:
            self.do_GET()
            return
        owner = self.server.owner
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        fault, latency = owner._admit(RecordedRequest(self.path, headers, body), payload)
        if owner.api_key is not None and headers.get("authorization") != f"Bearer {owner.api_key}":
            fault = "401"
        # Worked out while the latency runs, not after it: the answer leaves `latency` after
        # the request arrived, as a service that takes that long would send it.
        content = ""
        if isinstance(payload, dict) and fault is None:
            content = _flavoured(owner.flavour, payload, _triage_answer(payload))
        if owner._wait(latency - (time.monotonic() - arrived)):
            self._hang_up()
            return
        if not isinstance(payload, dict):
            self._send_json(400, _error("The body is not a JSON object.", "invalid_request", "bad"))
        elif fault is None and (refused := _refused(owner.flavour, payload)):
            self._send_json(400, {"error": _error(refused, "invalid_request_error", "bad_format")})
        elif fault is None:
            self._answer(payload, content, "stop")
        else:
            self._fault(fault, payload)

    def _fault(self, fault: str, payload: dict[str, Any]) -> None:
        owner = self.server.owner
        if fault in _ERRORS:
            headers = owner._rate_limited_headers() if fault == "429" else None
            if fault == "daily_quota":
                with owner._lock:  # no retry-after: only the documented headers, minute's fine
                    headers = owner._limit_headers(exhausted=False)
            body = dict(_ERRORS[fault])
            if fault == "404":
                model = str(payload.get("model"))
                body["message"] = f"Model {model} does not exist or you do not have access to it."
            if fault == "401" and owner.echo_key:
                key = self.headers.get("authorization", "").removeprefix("Bearer ")
                body = _error(f"Incorrect API key provided: {key}", "auth_error", "wrong_api_key")
            self._send_json(429 if fault == "daily_quota" else int(fault), body, headers)
        elif fault in {"timeout", "drop"}:
            if fault == "timeout":
                owner._wait(owner.hold_s)
            self._hang_up()
        elif fault == "malformed_json":
            self._send_raw(200, _BROKEN_JSON)
        elif fault == "bad_schema":
            self._answer(payload, json.dumps(_BAD_ANSWER), "stop")
        else:  # empty_length
            self._answer(payload, "", "length")

    def _answer(self, payload: dict[str, Any], content: str, finish_reason: str) -> None:
        prompt = _count_tokens(json.dumps(payload.get("messages", [])))
        room = _room(payload)
        reasoning = _reasoning_tokens(payload, prompt)
        cut = finish_reason != "length" and reasoning + _count_tokens(content) > room
        if finish_reason == "length" or cut:
            # The reasoning used the room up: nothing is left for the answer.
            content, finish_reason, completion = "", "length", room
            reasoning = min(reasoning, room)
        else:
            completion = reasoning + _count_tokens(content)
        headers = self.server.owner._spend(prompt + completion, cut=cut)
        answer = _completion(payload, content, finish_reason, prompt, completion)
        if reasoning:
            answer["choices"][0]["message"]["reasoning"] = "Let me think. " * (reasoning // 4)
            answer["usage"]["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        self._send_json(200, answer, headers)

    def _send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode(), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _check_kinds(kinds: tuple[str, ...]) -> None:
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")


def _count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _room(payload: dict[str, Any]) -> int:
    """The completion's room: `max_completion_tokens`, or `max_tokens`, or 1024."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 1024


def _reasoning_tokens(payload: dict[str, Any], prompt: int) -> int:
    """GPT-OSS reasoning: longer for a longer prompt, at "medium" unless asked otherwise, and
    spread by the request's own content (the same request always reasons as long)."""
    if "gpt-oss" not in str(payload.get("model", "")):
        return 0
    effort = payload.get("reasoning_effort") or "medium"
    per_token = REASONING_PER_PROMPT_TOKEN.get(str(effort), REASONING_PER_PROMPT_TOKEN["medium"])
    digest = hashlib.sha256(json.dumps(payload.get("messages", [])).encode()).digest()
    spread = 0.6 + 0.8 * digest[0] / 255  # 0.6 to 1.4
    return 0 if per_token == 0 else 20 + int(prompt * per_token * spread)


def _flavoured(flavour: str, payload: dict[str, Any], answer: str) -> str:
    """The answer as a server of that flavour writes it."""
    if flavour in {"cerebras", "no_json_schema"}:
        return answer
    if flavour == "sloppy" and not any(
        isinstance(m, dict) and m.get("role") == "assistant" for m in payload.get("messages", [])
    ):
        answer = json.dumps({"summary": json.loads(answer)["summary"]})  # lacks flags, todos
    return f"<think>\nThe user wants a triage of one email.\n</think>\n```json\n{answer}\n```"


def _refused(flavour: str, payload: dict[str, Any]) -> str | None:
    """The 400 a server of that flavour answers to the request's `response_format`, if any."""
    kind = payload.get("response_format", {})
    kind = kind.get("type") if isinstance(kind, dict) else None
    if flavour == "no_json_schema" and kind == "json_schema":
        return "response_format json_schema is not supported by this model"
    return None


def _completion(
    payload: dict[str, Any], content: str, finish_reason: str, prompt: int, completion: int
) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return {
        "id": f"chatcmpl-{random.getrandbits(64):016x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(payload.get("model") or "fake-model"),
        "system_fingerprint": "fp_fake",
        "choices": [{**choice, "finish_reason": finish_reason}],
        "usage": {**usage, "total_tokens": prompt + completion},
        "time_info": {"queue_time": 0.0001, "prompt_time": 0.001, "completion_time": 0.01},
    }


def _triage_answer(payload: dict[str, Any]) -> str:
    """A valid answer derived from the request, so tests can see what was asked."""
    user = "\n".join(
        str(message.get("content", ""))
        for message in payload.get("messages", [])
        if isinstance(message, dict) and message.get("role") == "user"
    )
    subject = _SUBJECT.search(user)
    flags = [name for name in _schema_flags(payload) if _mentions(name, user.lower())]
    todos = []
    please = _PLEASE.search(user)
    if please:
        due = _DATE.search(please.group(0))
        task = please.group(0).strip()[:200]
        todos.append({"task": task, "priority": "medium", "due": due.group(0) if due else None})
    summary = f"Summary of: {subject.group(1).strip() if subject else '(no subject)'}"
    return json.dumps({"summary": summary, "flags": flags, "todos": todos})


_PROMPT_FLAG = re.compile(r'^- "([a-z][a-z0-9_]*)": ', re.MULTILINE)


def _schema_flags(payload: dict[str, Any]) -> list[str]:
    """The flags the request allows: its schema's, else those its system prompt lists."""
    try:
        names = payload["response_format"]["json_schema"]["schema"]["properties"]["flags"]
        names = names["items"]["enum"]
    except (KeyError, TypeError):
        system = "\n".join(
            str(m.get("content", ""))
            for m in payload.get("messages", [])
            if isinstance(m, dict) and m.get("role") == "system"
        )
        listed = system.split("Flags:", 1)[-1].split("Rules:", 1)[0]
        return _PROMPT_FLAG.findall(listed)
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


def _mentions(flag: str, text: str) -> bool:
    return any(word in text for word in _FLAG_WORDS.get(flag, (flag.replace("_", " "),)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible model server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="kinds, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="answer 401 to any other key")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds a timeout fault holds")
    parser.add_argument("--tokens-per-minute", type=int, default=60000)
    parser.add_argument("--flavour", choices=FLAVOURS, default="cerebras")
    args = parser.parse_args(argv)
    server = FakeModelServer(
        latency=args.latency,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        hold_s=args.hold,
        tokens_per_minute=args.tokens_per_minute,
        flavour=args.flavour,
    )
    kinds = tuple(kind.strip() for kind in args.faults.split(",") if kind.strip())
    server.set_fault_rate(args.fault_rate, kinds, args.seed)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        # The first line tells a parent process where to connect (useful with --port 0).
        print(f"listening on {server.base_url}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
