"""An HTTP emulator of the OpenAI Chat Completions API that plays a scripted conversation.

Point `ChatOpenAI(base_url=emulator.base_url, api_key=...)` (or `OPENAI_BASE_URL`) at it and
the agent talks to it through the real client, streaming or not. Each reply is decided by a
`Script`: declarative rules matched against the conversation in the request (the latest user
message, the tool results just returned), answering with tool calls or text. Nothing is
random, so a test or `make demo` plays the same conversation every time.

It checks what the real API checks where that is cheap, because those are the mistakes graph
code makes: Bearer auth, a tool message that answers no preceding tool call, an assistant
tool call left unanswered, malformed tools and tool_choice, stream_options without stream.
Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}}.

    POST /v1/chat/completions        the API (JSON, or Server-Sent Events with stream=true)
    GET  /v1/models, /v1/models/{id} the model list
    GET  /_emulator/requests         {"requests": [...]}: every chat request body received
    POST /_emulator/reset            forget requests and pending faults
    POST /_emulator/faults           {"status", "times", "retry_after"}: see `fail_next`

Run standalone (default mail script) with `python -m infra.local.emulators.openai --port 8403`.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from infra.local.emulators.base import Emulator, Request, Response, serve_until_interrupted

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-5-mini")
_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


# =====================================================================================
# The conversation a rule looks at
# =====================================================================================


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


@dataclass(frozen=True)
class ToolResult:
    """A tool message, with the call it answers (the API's tool messages carry no name)."""

    name: str
    args: dict[str, Any]
    content: str
    call_id: str

    def fields(self, *keys: str) -> list[str]:
        return find_fields(self.content, *keys)

    def field(self, *keys: str) -> str | None:
        found = self.fields(*keys)
        return found[0] if found else None

    def ids(self, *keys: str) -> list[str]:
        """Id-like values (Gmail ids, not RFC Message-ID headers) of the given keys (default `id`)."""
        return [v for v in self.fields(*(keys or ("id", "message_id"))) if _ID_VALUE.fullmatch(v)]

    def search(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, self.content, re.IGNORECASE)


class Conversation:
    """A read-only view of one chat.completions request, for rules to match and compute on.

    `match` is the rule's `user` regex match while that rule is evaluated, so a reply can use
    its groups (`conv.group("who")`).
    """

    def __init__(self, body: Mapping[str, Any], match: re.Match[str] | None = None):
        self.body = body
        self.messages: list[dict[str, Any]] = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        self.model = str(body.get("model") or "")
        self.tools: list[str] = [
            str(t["function"].get("name"))
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        self.tool_choice: Any = body.get("tool_choice")
        self.match = match
        calls: dict[str, tuple[str, dict[str, Any]]] = {}
        self.all_results: list[ToolResult] = []  # every tool result, oldest first
        self._last_user = -1
        for index, message in enumerate(self.messages):
            role = message.get("role")
            if role == "user":
                self._last_user = index
            for call in message.get("tool_calls") or [] if role == "assistant" else []:
                function = call.get("function") or {}
                calls[str(call.get("id"))] = (str(function.get("name") or ""), _loads_object(function.get("arguments")))
            if role == "tool":
                call_id = str(message.get("tool_call_id"))
                name, args = calls.get(call_id, ("", {}))
                self.all_results.append(ToolResult(name, args, text_of(message.get("content")), call_id))
        self._calls = calls

    def with_match(self, match: re.Match[str] | None) -> Conversation:
        clone = copy.copy(self)
        clone.match = match
        return clone

    @property
    def user_text(self) -> str:
        """The latest user message: what the user asked for in this turn."""
        return text_of(self.messages[self._last_user].get("content")) if self._last_user >= 0 else ""

    @property
    def turn(self) -> str:
        """Whether the request ends with tool results ("tool": the model reacts to them) or not ("user")."""
        return "tool" if self.messages and self.messages[-1].get("role") == "tool" else "user"

    @property
    def results(self) -> list[ToolResult]:
        """The tool results the request ends with (one batch: the answers to the last tool calls)."""
        batch: list[ToolResult] = []
        for message in reversed(self.messages):
            if message.get("role") != "tool":
                break
            batch.insert(0, self._result(message))
        return batch

    @property
    def since_user(self) -> list[ToolResult]:
        """Tool results after the latest user message, oldest first."""
        return [self._result(m) for m in self.messages[self._last_user + 1 :] if m.get("role") == "tool"]

    def result(self, *tools: str) -> ToolResult | None:
        """The newest tool result in the whole conversation (of one of `tools`, if given)."""
        for found in reversed(self.all_results):
            if not tools or found.name in tools:
                return found
        return None

    def called(self, tool: str) -> bool:
        """Whether the assistant already called `tool` in this turn (since the latest user message)."""
        for message in self.messages[self._last_user + 1 :]:
            for call in message.get("tool_calls") or [] if message.get("role") == "assistant" else []:
                if (call.get("function") or {}).get("name") == tool:
                    return True
        return False

    def group(self, name: int | str = 1) -> str | None:
        """A group of the rule's `user` match, or None."""
        if self.match is None:
            return None
        try:
            return self.match.group(name)
        except IndexError:  # no such group
            return None

    def _result(self, message: Mapping[str, Any]) -> ToolResult:
        call_id = str(message.get("tool_call_id"))
        name, args = self._calls.get(call_id, ("", {}))
        return ToolResult(name, args, text_of(message.get("content")), call_id)


# =====================================================================================
# Scripts: rules that decide each reply
# =====================================================================================

Args = Mapping[str, Any] | Callable[[Conversation], Mapping[str, Any] | None]
Text = str | Callable[[Conversation], str | None]


@dataclass(frozen=True)
class Call:
    """One tool call of a reply. `args` may be computed; returning None makes the rule not match."""

    name: str
    args: Args = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """When the conditions hold, answer with `call` (tool calls) or `say` (text).

    A rule answers one kind of turn. With neither `tool` nor `result` it answers a user turn
    (the request ends with a user message); with either, it answers a tool turn (the request
    ends with tool results). So a rule never fires twice in a loop by accident.

    user:   regex searched (case-insensitive) in the latest user message
    tool:   the tool results just returned include one from this tool (or one of these)
    result: regex searched (case-insensitive) in the tool results just returned
    when:   any further condition on the conversation
    preamble: with call=, words the model streams before its tool calls ("Let me look…"),
            as real models often do: the message carries both content and tool_calls
    """

    user: str | None = None
    tool: str | tuple[str, ...] | None = None
    result: str | None = None
    when: Callable[[Conversation], bool] | None = None
    call: Call | Sequence[Call] | None = None
    say: Text | None = None
    name: str = ""
    preamble: Text | None = None

    def __post_init__(self) -> None:
        if (self.call is None) == (self.say is None):
            raise ValueError("a rule answers with exactly one of call= or say=")
        if self.preamble is not None and self.call is None:
            raise ValueError("preamble= goes with call=")
        if self.call is not None and not self.calls:
            raise ValueError("call= needs at least one Call")

    @property
    def calls(self) -> list[Call]:
        if self.call is None:
            return []
        return [self.call] if isinstance(self.call, Call) else list(self.call)

    @property
    def label(self) -> str:
        return self.name or f"user={self.user!r} tool={self.tool!r} result={self.result!r}"


@dataclass(frozen=True)
class Decision:
    """What the model says: text, or tool calls as (name, args); and which rule decided it."""

    content: str | None
    tool_calls: list[tuple[str, dict[str, Any]]]
    rule: str


class Script:
    """An ordered list of rules; the first whose conditions hold and whose reply can be built
    (and is allowed by the request's tools and tool_choice) answers. Otherwise `fallback`."""

    def __init__(self, rules: Iterable[Rule] = (), fallback: Text = "OK."):
        self.rules: list[Rule] = list(rules)
        self.fallback = fallback

    def add(self, rule: Rule) -> Script:
        self.rules.append(rule)
        return self

    def decide(self, body: Mapping[str, Any]) -> Decision:
        conversation = Conversation(body)
        for rule in self.rules:
            decision = self._try(rule, conversation)
            if decision is not None:
                return decision
        choice = conversation.tool_choice
        forced = _forced_tool(choice, conversation.tools)
        if forced is not None:  # the real model must call a tool here; no rule says how, so no args
            return Decision(None, [(forced, {})], "fallback (tool_choice)")
        text = self.fallback(conversation) if callable(self.fallback) else self.fallback
        return Decision(text or "", [], "fallback")

    def _try(self, rule: Rule, conversation: Conversation) -> Decision | None:
        wants_tool_turn = rule.tool is not None or rule.result is not None
        if wants_tool_turn != (conversation.turn == "tool"):
            return None
        match = None
        if rule.user is not None:
            match = re.search(rule.user, conversation.user_text, re.IGNORECASE)
            if match is None:
                return None
        results = conversation.results
        if rule.tool is not None:
            names = (rule.tool,) if isinstance(rule.tool, str) else rule.tool
            if not any(r.name in names for r in results):
                return None
        if rule.result is not None and not any(r.search(rule.result) for r in results):
            return None
        conversation = conversation.with_match(match)
        if rule.when is not None and not rule.when(conversation):
            return None
        choice = conversation.tool_choice
        if rule.say is not None:
            if _forced_tool(choice, conversation.tools) is not None:
                return None
            text = rule.say(conversation) if callable(rule.say) else rule.say
            return None if text is None else Decision(text, [], rule.label)
        calls: list[tuple[str, dict[str, Any]]] = []
        for call in rule.calls:
            if call.name not in conversation.tools or choice == "none":
                return None  # a model cannot call a tool it was not offered
            if isinstance(choice, dict) and (choice.get("function") or {}).get("name") != call.name:
                return None
            args = call.args(conversation) if callable(call.args) else call.args
            if args is None:
                return None
            calls.append((call.name, dict(args)))
        if conversation.body.get("parallel_tool_calls") is False:  # the model makes at most one call
            calls = calls[:1]
        preamble = rule.preamble(conversation) if callable(rule.preamble) else rule.preamble
        return Decision(preamble or None, calls, rule.label)


def _forced_tool(choice: Any, tools: Sequence[str]) -> str | None:
    if isinstance(choice, dict):
        return str((choice.get("function") or {}).get("name") or "") or None
    if choice == "required" and tools:
        return tools[0]
    return None


# -- reading tool results whose format is not fixed ------------------------------------

_ID_VALUE = re.compile(r"[A-Za-z0-9_-]{4,}")
_LINE_FIELD = re.compile(  # "Subject: ...", "- From: ...", "1. id = ..." on a line of its own
    r"""^\s*(?:[-*\u2022]|\d+[.)])?\s*["']?(?P<key>[A-Za-z][\w-]*(?:\ [A-Za-z][\w-]*)?)["']?"""
    r"""\s*[:=]\s*(?P<value>.*?)\s*$""",
    re.MULTILINE,
)
_INLINE_FIELD = re.compile(  # "id=1 threadId=2", "from: a@b.c, subject: hi": a value ends where the next key starts
    r"""(?:^|(?<=[\s,;{(\[|]))["']?(?P<key>[A-Za-z][\w-]*)["']?\s*[:=]\s*"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,;|}\]][^\n,;|}\]]*?)"""
    r"""(?=\s+["']?[A-Za-z][\w-]*["']?\s*[:=]|[\n,;|}\]]|$)"""
)


def _norm(key: str) -> str:
    return re.sub(r"[\s_-]", "", key).lower()


def _parse_structured(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:  # a Python repr of a dict or list, as str(result) gives
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def find_fields(text: str, *keys: str) -> list[str]:
    """Values of any of `keys` in a tool result, in order of appearance.

    JSON (or a Python repr) is walked shallowest first; text is read line by line, as inline
    `key=value` / `key: value` pairs when a line holds several, else as one `Key: value` line.
    Keys match ignoring case, `_`, `-` and spaces, so `thread_id` finds `threadId` and `Thread ID`.
    """
    wanted = {_norm(k) for k in keys}
    data = _parse_structured(text)
    if data is not None:
        found: list[str] = []
        queue: list[Any] = [data]
        while queue:
            node = queue.pop(0)
            children: Iterable[Any] = ()
            if isinstance(node, dict):
                for key, value in node.items():
                    if (
                        _norm(str(key)) in wanted
                        and isinstance(value, str | int | float)
                        and not isinstance(value, bool)
                    ):
                        found.append(str(value))
                children = node.values()
            elif isinstance(node, list):
                children = node
            queue.extend(c for c in children if isinstance(c, dict | list))
        return found
    found = []
    for line in text.splitlines():
        # "id=1 threadId=2" holds several pairs; "Subject: Re: lunch" one value with a colon in it.
        pairs = [(m.group("key"), m.group("value")) for m in _INLINE_FIELD.finditer(line)]
        if len(pairs) < 2:
            whole = _LINE_FIELD.match(line)
            pairs = [(whole.group("key"), whole.group("value"))] if whole else []
        found += [_unquote(value) for key, value in pairs if _norm(key) in wanted]
    return [v for v in found if v]


def _unquote(value: str) -> str:
    value = value.strip().rstrip(",").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] == '"':
            try:
                decoded = json.loads(value)
                return decoded if isinstance(decoded, str) else inner
            except ValueError:
                return inner
        return inner
    return value


def email_address(text: str | None) -> str | None:
    found = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text or "")
    return found.group(0) if found else None


def excerpt(text: str, limit: int = 200) -> str:
    # A model quotes the mail, not the "<<email content ...>>" fences a tool puts around it.
    text = re.sub(r"<<[^<>]*>>", " ", text)
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def _loads_object(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# =====================================================================================
# The emulator
# =====================================================================================


class OpenAIError(Exception):
    """An API error in OpenAI's shape, raised by validation and answered as JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return Response(self.status, body, dict(headers or {}))


@dataclass
class _Fault:
    status: int
    retry_after: float | None
    remaining: int


class OpenAIEmulator(Emulator):
    def __init__(
        self,
        api_key: str = "local-openai-key",
        script: Script | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.script = script if script is not None else default_mail_script()
        self.requests: list[dict[str, Any]] = []  # every chat.completions body received, even refused ones
        self.request_headers: list[dict[str, str]] = []  # the headers of each, Authorization removed
        self.decisions: list[Decision] = []  # which rule answered each request the script saw
        self._faults: list[_Fault] = []
        self._stream_cuts: list[int] = []
        self._counter = 0
        # Ids differ between emulator runs: a conversation checkpointed during one run must not
        # meet its own tool call ids again after a restart.
        self._seed = uuid.uuid4().hex
        self._models: list[str] = list(DEFAULT_MODELS)
        # Some OpenAI-compatible servers number tool calls per answer ("call_0", "call_1"),
        # so the same id comes back in every answer; True imitates them.
        self.reuse_call_ids = False

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL (or ChatOpenAI's base_url) is set to."""
        return f"{self.url}v1"

    def fail_next(self, status: int = 500, times: int = 1, retry_after: float | None = None) -> None:
        """Make the next `times` chat.completions requests fail with `status` (OpenAI's error shape).

        `retry_after` (seconds) sets Retry-After and retry-after-ms. The openai client honours a
        positive delay up to 2 minutes; 0 is ignored and it backs off 0.5 s, 1 s, ... instead.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            self._faults.append(_Fault(status, retry_after, times))

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.request_headers.clear()
            self.decisions.clear()
            self._faults.clear()
            self._stream_cuts.clear()

    # -- HTTP routing ------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        try:
            if request.path.startswith("/_emulator/"):
                return self._control(request.path[len("/_emulator/") :], request)
            if request.path.rstrip("/") == "/v1/chat/completions" and request.method == "POST":
                return self._chat(request)
            if request.path.startswith("/v1/"):
                self._check_auth(request)
                if request.method == "GET" and request.path.rstrip("/") == "/v1/models":
                    return Response(200, {"object": "list", "data": [self._model(m) for m in self._models]})
                if request.method == "GET" and request.path.startswith("/v1/models/"):
                    name = request.path[len("/v1/models/") :]
                    if name in self._models:
                        return Response(200, self._model(name))
                    raise _model_not_found(name)
            raise OpenAIError(404, f"Invalid URL ({request.method} {request.path})")
        except OpenAIError as exc:
            return exc.response(self._headers())

    def _control(self, name: str, request: Request) -> Response:
        if name == "requests" and request.method == "GET":
            with self.lock:
                return Response(200, {"requests": copy.deepcopy(self.requests)})
        if name == "reset" and request.method == "POST":
            self.reset()
            return Response(200, {"ok": True})
        if name == "faults" and request.method == "POST":
            try:
                body = request.json()
                if not isinstance(body, dict):
                    raise ValueError("a JSON object is required")
                retry_after = body.get("retry_after")
                self.fail_next(
                    int(body.get("status") or 500),
                    int(body.get("times") or 1),
                    None if retry_after is None else float(retry_after),
                )
            except (ValueError, TypeError) as exc:
                return Response(400, {"ok": False, "error": str(exc)})
            return Response(200, {"ok": True})
        return Response(404, {"ok": False, "error": "not_found"})

    def _chat(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        with self.lock:
            self.requests.append(
                body if isinstance(body, dict) else {"_unparsed": request.body.decode("utf-8", "replace")}
            )
            self.request_headers.append({k: v for k, v in request.headers.items() if k != "authorization"})
        # The real API authenticates before anything else, then the platform's limits apply.
        self._check_auth(request)
        fault = self._take_fault()
        if fault is not None:
            return self._fault_response(fault, body)
        if not isinstance(body, dict):
            raise OpenAIError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            )
        _validate(body)
        model = str(body["model"])
        with self.lock:
            if model not in self._models:
                self._models.append(model)  # any model name is served; /v1/models lists it from now on
        try:
            decision = self.script.decide(body)
        except Exception as exc:  # a script bug: say so plainly, and tell the client not to retry it
            raise _ScriptError(exc) from exc
        with self.lock:
            self.decisions.append(decision)
            self._counter += 1
            serial = self._counter
        completion = _Completion(f"{self._seed}:{serial}", model, body, decision, self.reuse_call_ids)
        headers = self._headers()
        if body.get("stream"):
            headers["Content-Type"] = "text/event-stream; charset=utf-8"
            headers["Cache-Control"] = "no-cache"
            streamed = Response(200, completion.sse().encode(), headers)
            with self.lock:
                cut = self._stream_cuts.pop(0) if self._stream_cuts and not completion.calls else None
            if cut is not None:
                events = completion.sse().split("\n\n")
                streamed.cut_after = len("\n\n".join(events[:cut]).encode()) + 2
            return streamed
        return Response(200, completion.json(), headers)

    def _check_auth(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[len("bearer ") :].strip():
            raise OpenAIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
                "you're accessing the API from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
            )
        key = header[len("bearer ") :].strip()
        if key != self.api_key:
            shown = f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 8 else "*" * len(key)
            raise OpenAIError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def cut_next_streams(self, after_events: int, times: int = 1) -> None:
        """Make the next `times` streamed text answers (not tool calls) stop after
        `after_events` SSE events, the connection closed mid-answer (the client sees an
        incomplete body)."""
        with self.lock:
            self._stream_cuts.extend([after_events] * times)

    def _take_fault(self) -> _Fault | None:
        with self.lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return fault

    def _fault_response(self, fault: _Fault, body: Any) -> Response:
        headers = self._headers()
        if fault.retry_after is not None:
            headers["retry-after"] = _number(fault.retry_after)
            headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
        model = body.get("model") if isinstance(body, dict) else None
        status = fault.status
        if status == 429:
            error = OpenAIError(
                429,
                f"Rate limit reached for {model or 'gpt-4o-mini'} in organization org-local on requests per min "
                "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                "requests",
                code="rate_limit_exceeded",
            )
        elif status == 401:
            error = OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
        elif status == 400:
            error = OpenAIError(400, "Invalid request (injected by the emulator).")
        elif status == 503:
            error = OpenAIError(503, "The engine is currently overloaded, please try again later.", "server_error")
        elif status >= 500:
            error = OpenAIError(
                status,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
            )
        else:
            error = OpenAIError(status, f"Request failed with status {status} (injected by the emulator).")
        return error.response(headers)

    def _headers(self) -> dict[str, str]:
        with self.lock:
            serial = len(self.requests)
        return {"x-request-id": f"req_{_digest(f'request:{self._seed}', serial, 32)}", "openai-processing-ms": "1"}

    @staticmethod
    def _model(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


class _ScriptError(OpenAIError):
    def __init__(self, exc: Exception):
        super().__init__(500, f"emulator script error: {exc!r}", "server_error")

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        # x-should-retry: false, or the client would replay a deterministic failure with backoff.
        return super().response({**(headers or {}), "x-should-retry": "false"})


def _model_not_found(name: str) -> OpenAIError:
    return OpenAIError(
        404, f"The model `{name}` does not exist or you do not have access to it.", code="model_not_found"
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _digest(kind: str, serial: int | str, length: int) -> str:
    return hashlib.sha256(f"{kind}:{serial}".encode()).hexdigest()[:length]


# -- request validation ----------------------------------------------------------------


def _validate(body: Mapping[str, Any]) -> None:
    if not body.get("model"):
        raise OpenAIError(400, "you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise OpenAIError(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    if not messages:
        raise OpenAIError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    _validate_messages(messages)
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise OpenAIError(400, "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
                raise OpenAIError(
                    400,
                    f"Invalid value for 'tools[{i}].type': expected 'function'.",
                    param=f"tools[{i}].type",
                    code="invalid_value",
                )
            name = function.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                raise OpenAIError(
                    400,
                    f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that "
                    "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                    param=f"tools[{i}].function.name",
                    code="invalid_value",
                )
            names.append(name)
    _validate_tool_choice(body.get("tool_choice"), names, tools is not None)
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 2):
        raise OpenAIError(
            400,
            f"Invalid 'temperature': expected a number between 0 and 2, but got {temperature} instead.",
            param="temperature",
            code="invalid_value",
        )
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise OpenAIError(
            400,
            f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} instead.",
            param="n",
            code="integer_below_min_value",
        )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise OpenAIError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code=None,
        )


def _validate_messages(messages: list[Any]) -> None:
    open_calls: list[str] | None = None  # the tool call ids the current block of tool messages may answer
    opened_at = -1
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise OpenAIError(
                400,
                f"Invalid type for 'messages[{i}]': expected an object.",
                param=f"messages[{i}]",
                code="invalid_type",
            )
        role = message.get("role")
        if role not in _ROLES:
            raise OpenAIError(
                400,
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        if role == "tool":
            if open_calls is None:
                raise OpenAIError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
            call_id = message.get("tool_call_id")
            if not call_id:
                raise OpenAIError(
                    400,
                    f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                    param=f"messages[{i}].tool_call_id",
                    code="missing_required_parameter",
                )
            if call_id not in open_calls:
                raise OpenAIError(
                    400,
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous message.",
                    param=f"messages.[{i}].tool_call_id",
                )
            open_calls.remove(call_id)
            continue
        if open_calls:
            _unanswered(opened_at, open_calls)
        open_calls = None
        content = message.get("content")
        tool_calls = message.get("tool_calls") if role == "assistant" else None
        if role in ("system", "developer", "user") and content is None:
            raise OpenAIError(
                400, "Invalid value for 'content': expected a string, got null.", param=f"messages.[{i}].content"
            )
        if role == "assistant" and content is None and not tool_calls and not message.get("function_call"):
            raise OpenAIError(
                400, "Invalid value for 'content': expected a string, got null.", param=f"messages.[{i}].content"
            )
        if tool_calls:
            open_calls = []
            for j, call in enumerate(tool_calls):
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(call, dict) or not call.get("id") or not isinstance(function, dict):
                    raise OpenAIError(
                        400,
                        f"Missing required parameter: 'messages[{i}].tool_calls[{j}].id'.",
                        param=f"messages[{i}].tool_calls[{j}].id",
                        code="missing_required_parameter",
                    )
                if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
                    raise OpenAIError(
                        400,
                        f"Missing required parameter: 'messages[{i}].tool_calls[{j}].function'.",
                        param=f"messages[{i}].tool_calls[{j}].function",
                        code="missing_required_parameter",
                    )
                open_calls.append(str(call["id"]))
            opened_at = i
    if open_calls:
        _unanswered(opened_at, open_calls)


def _unanswered(index: int, ids: list[str]) -> NoReturn:
    raise OpenAIError(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(ids)}",
        param=f"messages.[{index}].role",
    )


def _validate_tool_choice(choice: Any, names: list[str], has_tools: bool) -> None:
    if choice is None:
        return
    if not has_tools:
        raise OpenAIError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise OpenAIError(
                400,
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                param="tool_choice",
                code="invalid_value",
            )
        return
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not isinstance(name, str):
        raise OpenAIError(400, "Invalid value for 'tool_choice'.", param="tool_choice", code="invalid_value")
    if name not in names:
        raise OpenAIError(
            400, f"Invalid value for 'tool_choice': tool '{name}' is not in 'tools'.", param="tool_choice"
        )


# -- building the answer ---------------------------------------------------------------


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))  # a deterministic stand-in for the tokenizer


class _Completion:
    """One answer, rendered as a chat.completion or as chat.completion.chunk events."""

    def __init__(
        self, serial: str, model: str, body: Mapping[str, Any], decision: Decision, reuse_call_ids: bool = False
    ):
        self.id = f"chatcmpl-{_digest('completion', serial, 29)}"
        self.created = int(time.time())
        self.model = model
        self.n = int(body.get("n") or 1)
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.content = decision.content
        self.calls = [
            (
                f"call_{i}" if reuse_call_ids else f"call_{_digest(f'call:{serial}', i, 24)}",
                name,
                json.dumps(args, ensure_ascii=False),
            )
            for i, (name, args) in enumerate(decision.tool_calls)
        ]
        self.finish_reason = "tool_calls" if self.calls else "stop"
        prompt = json.dumps(body.get("messages"), ensure_ascii=False) + json.dumps(body.get("tools") or [])
        completion = (self.content or "") + "".join(name + args for _, name, args in self.calls)
        self.usage = {
            "prompt_tokens": _tokens(prompt),
            "completion_tokens": _tokens(completion) * self.n,
            "total_tokens": _tokens(prompt) + _tokens(completion) * self.n,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": "fp_mailroom_local",
        }

    def json(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None, "annotations": []}
        if self.calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                for call_id, name, args in self.calls
            ]
        choices = [
            {"index": i, "message": copy.deepcopy(message), "logprobs": None, "finish_reason": self.finish_reason}
            for i in range(self.n)
        ]
        return {**self._envelope("chat.completion"), "choices": choices, "usage": self.usage}

    def sse(self) -> str:
        events = [self._chunk(delta, index, finish) for index in range(self.n) for delta, finish in self._deltas()]
        if self.include_usage:
            events.append({**self._envelope("chat.completion.chunk"), "choices": [], "usage": self.usage})
        lines = [f"data: {json.dumps(event, ensure_ascii=False)}\n\n" for event in events]
        return "".join(lines) + "data: [DONE]\n\n"

    def _chunk(self, delta: dict[str, Any], index: int, finish: str | None) -> dict[str, Any]:
        chunk = {
            **self._envelope("chat.completion.chunk"),
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None  # as the API does: every chunk but the last carries usage null
        return chunk

    def _deltas(self) -> list[tuple[dict[str, Any], str | None]]:
        deltas: list[tuple[dict[str, Any], str | None]] = []
        if self.content or not self.calls:
            deltas.append(({"role": "assistant", "content": "", "refusal": None}, None))
            # Word by word, each piece keeping its trailing space, so the pieces join to the exact text.
            for piece in re.split(r"(?<=\s)(?=\S)", self.content or ""):
                if piece:
                    deltas.append(({"content": piece}, None))
        if self.calls:
            for position, (call_id, name, args) in enumerate(self.calls):
                head = {
                    "index": position,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                if position == 0 and not self.content:
                    deltas.append(({"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}, None))
                else:
                    deltas.append(({"tool_calls": [head]}, None))
                for piece in _pieces(args, 8):
                    deltas.append(({"tool_calls": [{"index": position, "function": {"arguments": piece}}]}, None))
        deltas.append(({}, self.finish_reason))
        return deltas


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# =====================================================================================
# The default script: a mail assistant over the Mailroom Gmail tools.
# Edit freely; tests of the emulator pin only the flows described in the brief.
#
#   "what did Alice send me"         search_emails(from:alice newer_than:7d)
#                                    -> read_email(first id found) -> summary quoting the subject
#   "draft a reply to Alice saying   (create_draft at once if an email of hers was read already, else
#    Thursday works"                  search_emails -> read_thread / read_email) -> create_draft
#                                    -> "I drafted a reply ..."
#   "send it"                        send_draft(draft id from the latest create_draft result) -> text
#   "send an email to bob@x.com ..." send_email(...) -> text
#
# Only the user's own words choose an action; tool results (email text) are read as data,
# and instructions found in them are reported, never followed.
# =====================================================================================

_SEND_IT = r"\bsend (?:it|the draft|that(?: draft)?|the reply|my reply)\b"
_SEND_EMAIL = r"\bsend (?:an? )?(?:e-?mail|mail|message|note) to (?P<to>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
_DRAFT = r"(?s)\b(?:draft|write|compose|prepare)\b.*\b(?:reply|response|answer|email|message)\b|\breply to\b"
_SUMMARY = (
    r"\bwhat (?:did|has) [\w.+@-]+ (?:just )?(?:send|sent|e-?mail|mail|write|written)"
    r"|\b(?:e-?mails?|mail|messages?|anything|something)\b.*\bfrom [\w.+@-]+"
)
_NOT_A_NAME = {"me", "her", "him", "them", "it", "this", "that", "the", "my", "an", "a", "their", "his", "email"}
_INJECTION = (
    r"ignore (?:all |any |the )?(?:previous|prior|above|earlier|your) (?:instructions|prompts?)"
    r"|disregard (?:all |any |the )?(?:previous|prior|above|earlier)|\byou are now\b|\bsystem prompt\b"
    r"|\b(?:ai|llm) (?:assistant|agent|model)s?\b.*\b(?:must|should|please)\b"
)


def _negated(conv: Conversation) -> bool:
    return re.search(r"\b(?:don'?t|do not|never|not yet)\b", conv.user_text, re.IGNORECASE) is not None


def _not_negated(conv: Conversation) -> bool:
    return not _negated(conv)


def _tool_failed(conv: Conversation) -> str:
    failed = conv.results[-1]
    return f"Sorry, {failed.name or 'a tool'} failed: {excerpt(failed.content, 160)}"


def _reply(conv: Conversation) -> dict[str, Any] | None:
    return _draft_from(conv.results[-1], conv)


def _who(conv: Conversation) -> str | None:
    """The person the user named ("from Alice", "what did Alice send", "reply to Alice")."""
    for pattern in (
        r"\bwhat (?:did|has) ([\w.+@-]+) ",
        r"\bfrom ([\w.+@-]+)",
        r"\b(?:reply|respond|answer|write back|get back)(?: back)? to ([\w.+@-]+)",
    ):
        found = re.search(pattern, conv.user_text, re.IGNORECASE)
        if found and found.group(1).lower().strip(".") not in _NOT_A_NAME:
            return found.group(1).strip(".?!,").lower()
    return None


def _title(name: str) -> str:
    return name if "@" in name else name.capitalize()


def _search_from(*, recent: bool) -> Callable[[Conversation], dict[str, Any] | None]:
    def args(conv: Conversation) -> dict[str, Any] | None:
        who = _who(conv)
        if who is None:
            return None
        return {"query": f"from:{who} newer_than:7d" if recent else f"from:{who}"}

    return args


def _first_id(conv: Conversation) -> dict[str, Any] | None:
    ids = conv.results[-1].ids() if conv.results else []
    return {"message_id": ids[0]} if ids else None


def _first_thread(conv: Conversation) -> dict[str, Any] | None:
    ids = conv.results[-1].ids("thread_id", "threadId") if conv.results else []
    return {"thread_id": ids[0]} if ids else None


def _reply_body(conv: Conversation, greet: str | None) -> str:
    said = re.search(
        r"(?:\bsaying|\bto say|\bthat says|\btelling (?:her|him|them)|:|\u2014|\s-)\s*(?P<body>[^\n]+)$",
        conv.user_text,
        re.IGNORECASE,
    )
    sentence = said.group("body").strip().strip("\"'\u201c\u201d") if said else "Thanks for your email."
    sentence = sentence[:1].upper() + sentence[1:]
    if sentence[-1:] not in ".!?":
        sentence += "."
    hello = f"Hi {greet}," if greet else "Hi,"
    return f"{hello}\n\n{sentence}\n\nBest regards"


def _draft_from(result: ToolResult | None, conv: Conversation) -> dict[str, Any] | None:
    """create_draft args replying to the email (or the thread's latest message) in `result`."""
    if result is None:
        return None
    who = _who(conv)
    senders = result.fields("from", "sender")
    sender = next((s for s in senders if who and who in s.lower()), senders[0] if senders else None)
    to = email_address(sender)
    # read_email was called with the Gmail id; a thread lists its messages, the latest last.
    ids = result.ids() if result.name == "read_thread" else [str(result.args.get("message_id") or ""), *result.ids()]
    ids = [i for i in ids if i]
    if to is None or not ids:
        return None
    message_id = ids[-1] if result.name == "read_thread" else ids[0]
    subject = result.field("subject") or ""
    if not re.match(r"(?i)re:", subject):
        subject = f"Re: {subject}".rstrip()
    display = (sender or "").split("<")[0].strip().strip('"') if "<" in (sender or "") else ""
    greet = display.split()[0] if display else (_title(who) if who else None)
    return {"to": to, "subject": subject, "body": _reply_body(conv, greet), "reply_to_message_id": message_id}


def _draft_now(conv: Conversation) -> dict[str, Any] | None:
    # A draft request right after an email was read in an earlier turn needs no new search.
    read = conv.result("read_email", "read_thread")
    who = _who(conv)
    if read is None or (who and not any(who in s.lower() for s in read.fields("from", "sender"))):
        return None
    return _draft_from(read, conv)


def _drafted(conv: Conversation) -> str:
    result = conv.results[-1]
    args = result.args
    draft_id = next(iter(result.ids("draft_id", "draftId") or result.ids()), None)
    where = f" (draft {draft_id})" if draft_id else ""
    return (
        f"I drafted a reply to {args.get('to', 'them')} with the subject \u201c{args.get('subject', '')}\u201d{where}:"
        f"\n\n{args.get('body', '')}\n\nIt is saved in your Gmail drafts. Say \u201csend it\u201d when you want me "
        "to send it; I will ask you to approve first."
    )


def _draft_to_send(conv: Conversation) -> dict[str, Any] | None:
    created = conv.result("create_draft")
    if created is None:
        return None
    ids = created.ids("draft_id", "draftId") or created.ids()
    return {"draft_id": ids[0]} if ids else None


def _compose(conv: Conversation) -> dict[str, Any] | None:
    to = conv.group("to")
    if to is None:
        return None
    about = re.search(r"\babout ([^,.;\n]+)", conv.user_text, re.IGNORECASE)
    subject = about.group(1).strip().capitalize() if about else "Hello"
    return {"to": to, "subject": subject, "body": _reply_body(conv, None)}


def _sent(conv: Conversation) -> str:
    content = conv.results[-1].content
    if re.search(r"cancel|declin|reject|not sent|did not send|denied", content, re.IGNORECASE):
        return "OK, I did not send it."
    if re.search(r"error|fail", content, re.IGNORECASE):
        return f"Sending failed: {excerpt(content, 160)}"
    return "Sent."


def _body_of(result: ToolResult) -> str:
    """The email text of a read_email result: a body field, else what follows the headers."""
    found = result.field("body", "text", "snippet", "content")
    if found:
        return found
    if _parse_structured(result.content) is None and "\n\n" in result.content.strip():
        return result.content.strip().split("\n\n", 1)[1]
    return "\n".join(line for line in result.content.splitlines() if not _LINE_FIELD.match(line))


def _summary(conv: Conversation) -> str:
    result = conv.results[-1]
    sender = result.field("from", "sender") or (_title(_who(conv) or "") or "Someone")
    subject = result.field("subject") or "(no subject)"
    date = result.field("date")
    body = _body_of(result)
    text = f"{sender} sent you \u201c{subject}\u201d" + (f" ({date})" if date else "") + f": {excerpt(body)}"
    if re.search(_INJECTION, result.content, re.IGNORECASE | re.DOTALL):
        text += (
            "\n\nNote: this email contains instructions addressed to an assistant. I treated them as part of "
            "the email and did not act on them."
        )
    return text


def _thread_summary(conv: Conversation) -> str:
    result = conv.results[-1]
    subject = result.field("subject") or "(no subject)"
    senders = result.fields("from", "sender")
    latest = f"; the latest is from {senders[-1]}" if senders else ""
    count = f"{len(senders)} message{'s' if len(senders) != 1 else ''}" if senders else "messages"
    return f"The thread \u201c{subject}\u201d has {count}{latest}."


def _search_summary(conv: Conversation) -> str:
    result = conv.results[-1]
    subjects = result.fields("subject")
    if not subjects:
        return "I found no matching emails."
    listed = "\n".join(f"\u2022 {s}" for s in subjects[:10])
    return f"I found {len(subjects)} email{'s' if len(subjects) != 1 else ''}:\n{listed}"


def _nothing_from(conv: Conversation) -> str:
    who = _who(conv)
    return f"I found no email from {_title(who)} in the last 7 days." if who else "I found no matching emails."


def _fallback(conv: Conversation) -> str:
    if conv.turn == "tool" and conv.results:
        return f"Done: {excerpt(conv.results[-1].content, 160)}"
    return (
        "I can search and summarise your email, draft replies, and send them once you approve. Try "
        "\u201cwhat did Alice send me?\u201d or \u201cdraft a reply to Alice saying Thursday works\u201d."
    )


# Reading everything, drafts, and tidying the inbox (the tools of inbox_tools):
#   "read the nightly build log"          search_emails(subject) -> read_email -> the log's last line
#   "what does the PDF attached to my     search_emails(has:attachment ...) -> read_email
#    order say?" (docx, invite too)       -> read_attachment(the attachment of that type) -> its text
#   "send my draft about the offsite"     list_drafts(topic) -> send_draft(first draft) -> text
#   "show my drafts"                      list_drafts -> the list
#   "archive|mark read|mark unread|star|  change_emails(action, query=from:X) -> what changed
#    trash the emails from X",
#    "label the emails from X as Finance"
#   "undo that"                           undo_last_change -> what was undone
_LOG = r"\b(?:build|ci|test)\s+log\b"
_ATTACHED = r"\b(?:attach\w*|pdf|docx|word document|invitation|invite|\.ics|calendar file)\b"
_SEND_MY_DRAFT = r"\bsend (?:my|the) draft (?:about|on|for|re) (?P<topic>[^?.!\n]+)"
_SHOW_DRAFTS = r"\b(?:show|list|what are) (?:me )?my drafts\b"
_TIDY = (
    r"\b(?P<verb>archive|mark(?: as)? read|mark(?: as)? unread|unstar|star|trash|move to (?:the )?trash|label)\b"
    r".*?\bfrom (?P<who>[\w.+@-]+)(?:\s+(?:as|with)\s+[\"\u201c']?(?P<label>[\w -]+?)[\"\u201d']?)?\s*[.!?]*$"
)
_MARK = r"\bmark\b.*?\bfrom (?P<who>[\w.+@-]+?)[.,]?\s+as (?P<state>read|unread)\b"
_UNDO = r"^\s*(?:please\s+)?undo\b"
_ACTIONS = {"archive": "archive", "read": "mark_read", "unread": "mark_unread", "star": "star", "unstar": "unstar"}


def _log_search(conv: Conversation) -> dict[str, Any]:
    return {"query": "subject:(build log)", "max_results": 5}


def _fenced_lines(content: str) -> list[str]:
    """The lines of a tool result that are email text: inside the fence, without notes."""
    inside = re.search(r"<<email content [0-9a-f]+:[^>]*>>\n(.*)\n<<end of email content", content, re.DOTALL)
    text = inside.group(1) if inside else content
    return [line for line in text.splitlines() if line.strip() and not line.startswith("[")]


def _log_ending(conv: Conversation) -> str:
    result = conv.results[-1]
    lines = _fenced_lines(result.content)
    subject = result.field("subject") or "the log"
    return f"{subject} ends with: {lines[-1]}" if lines else f"I could not read {subject}."


def _attachment_search(conv: Conversation) -> dict[str, Any]:
    text = conv.user_text.lower()
    for words, query in (
        (("receipt", "order"), "has:attachment subject:order"),
        (("contract",), "has:attachment subject:contract"),
        (("invitation", "invite", "calendar", ".ics", "offsite"), "has:attachment subject:invitation"),
    ):
        if any(word in text for word in words):
            return {"query": query, "max_results": 5}
    return {"query": "has:attachment", "max_results": 5}


def _attachment_to_read(conv: Conversation) -> dict[str, Any] | None:
    result = conv.results[-1]
    message_id = str(result.args.get("message_id") or "")
    listed = re.findall(r"^\s*\[(\d+)\] (.+)$", result.content, re.MULTILINE)
    if not message_id or not listed:
        return None
    text = conv.user_text.lower()
    wanted = next((ext for ext in ("pdf", "docx", "ics") if ext in text), None)
    if wanted is None and re.search(r"invit|calendar", text):
        wanted = "ics"
    if wanted is None and "word" in text:
        wanted = "docx"
    number = next((n for n, line in listed if wanted and f".{wanted}" in line.lower()), listed[0][0])
    return {"message_id": message_id, "attachment": int(number)}


def _attachment_says(conv: Conversation) -> str:
    result = conv.results[-1]
    # Inside the fence: the file's name and type on the first line, then its text.
    lines = _fenced_lines(result.content)
    named = re.fullmatch(r"(.+) \([\w.+-]+/[^()]*\)", lines[0]) if lines else None
    if named is None or not lines[1:]:
        return f"I could not read the attachment: {excerpt(' '.join(lines) or result.content, 200)}"
    return f"{named.group(1)} says:\n" + "\n".join(lines[1:41])


def _draft_topic(conv: Conversation) -> dict[str, Any] | None:
    topic = conv.group("topic")
    if not topic:
        return None
    words = [w for w in re.findall(r"[\w-]+", topic.lower()) if w not in ("the", "a", "an", "my")]
    return {"query": " ".join(words)} if words else None


def _first_draft(conv: Conversation) -> dict[str, Any] | None:
    ids = conv.results[-1].ids("draft_id")
    return {"draft_id": ids[0]} if ids else None


def _no_draft(conv: Conversation) -> str:
    return f"I found no draft about {conv.results[-1].args.get('query', 'that')}."


def _drafts_list(conv: Conversation) -> str:
    result = conv.results[-1]
    subjects = result.fields("subject")
    if not subjects:
        return "You have no drafts."
    return f"You have {len(subjects)} draft{'s' * (len(subjects) != 1)}:\n" + "\n".join(f"\u2022 {s}" for s in subjects)


def _tidy(conv: Conversation) -> dict[str, Any] | None:
    verb, who = (conv.group("verb") or "").lower(), (conv.group("who") or "").strip(".,")
    if not verb or not who:
        return None
    if verb == "label":
        label = (conv.group("label") or "").strip()
        if not label:
            return None
        return {"action": "label", "query": f"from:{who}", "label": label}
    action = "trash" if "trash" in verb else _ACTIONS[verb.split()[-1]]
    return {"action": action, "query": f"from:{who}"}


def _mark(conv: Conversation) -> dict[str, Any] | None:
    who, state = conv.group("who"), conv.group("state")
    return {"action": f"mark_{state.lower()}", "query": f"from:{who}"} if who and state else None


def _said_by_tool(conv: Conversation) -> str:
    return conv.results[-1].content.split(" The user can say", 1)[0]


def default_mail_script() -> Script:
    draft, summary, send_it = _DRAFT, _SUMMARY, _SEND_IT
    ask_whom = "Which email should I reply to? For example: \u201cdraft a reply to Alice saying Thursday works\u201d."
    tool_turns = [
        Rule(name="tool error", result=r"^\s*error\b", say=_tool_failed),
        # Long mail, attachments, drafts and tidying (before the general rules below).
        Rule(name="log: open it", user=_LOG, tool="search_emails", call=Call("read_email", _first_id)),
        Rule(name="log: its last line", user=_LOG, tool="read_email", say=_log_ending),
        Rule(
            name="attachment: open the email", user=_ATTACHED, tool="search_emails", call=Call("read_email", _first_id)
        ),
        Rule(
            name="attachment: read it",
            user=_ATTACHED,
            tool="read_email",
            call=Call("read_attachment", _attachment_to_read),
        ),
        Rule(name="attachment: what it says", tool="read_attachment", say=_attachment_says),
        Rule(
            name="draft: send the one found",
            user=_SEND_MY_DRAFT,
            tool="list_drafts",
            call=Call("send_draft", _first_draft),
        ),
        Rule(name="draft: none found", user=_SEND_MY_DRAFT, tool="list_drafts", say=_no_draft),
        Rule(name="drafts: list", tool="list_drafts", say=_drafts_list),
        Rule(name="tidy: done", tool=("change_emails", "undo_last_change"), say=_said_by_tool),
        # Drafting: search -> open the thread (or the email) -> create the draft -> tell the user.
        Rule(name="draft: open the thread", user=draft, tool="search_emails", call=Call("read_thread", _first_thread)),
        Rule(name="draft: open the email", user=draft, tool="search_emails", call=Call("read_email", _first_id)),
        Rule(name="draft: nothing found", user=draft, tool="search_emails", say=_nothing_from),
        Rule(name="draft: write it", user=draft, tool=("read_thread", "read_email"), call=Call("create_draft", _reply)),
        Rule(name="draft: done", tool="create_draft", say=_drafted),
        # Summary: search -> open the newest -> summarise.
        Rule(name="summary: open the newest", user=summary, tool="search_emails", call=Call("read_email", _first_id)),
        Rule(name="summary: nothing found", user=summary, tool="search_emails", say=_nothing_from),
        Rule(name="summarise an email", tool="read_email", say=_summary),
        Rule(name="summarise a thread", tool="read_thread", say=_thread_summary),
        Rule(name="list search results", tool="search_emails", say=_search_summary),
        Rule(name="sent", tool=("send_draft", "send_email"), say=_sent),
    ]
    user_turns = [
        Rule(name="undo", user=_UNDO, call=Call("undo_last_change")),
        Rule(name="tidy: mark", user=_MARK, when=_not_negated, call=Call("change_emails", _mark)),
        Rule(name="tidy", user=_TIDY, when=_not_negated, call=Call("change_emails", _tidy)),
        Rule(name="log: find it", user=_LOG, call=Call("search_emails", _log_search)),
        Rule(name="draft: find mine", user=_SEND_MY_DRAFT, when=_not_negated, call=Call("list_drafts", _draft_topic)),
        Rule(name="drafts: show", user=_SHOW_DRAFTS, call=Call("list_drafts", {"query": ""})),
        Rule(
            name="attachment: find it",
            user=_ATTACHED,
            when=_not_negated,
            call=Call("search_emails", _attachment_search),
        ),
        # Drafting comes first, so "draft a reply and send it" drafts (and waits) rather than sends.
        Rule(name="draft: reply to what was read", user=draft, call=Call("create_draft", _draft_now)),
        Rule(name="draft: find the email", user=draft, call=Call("search_emails", _search_from(recent=False))),
        Rule(name="draft: ask whom", user=draft, say=ask_whom),
        Rule(name="don't send", user=send_it, when=_negated, say="OK, I won't send it."),
        Rule(name="send the draft", user=send_it, call=Call("send_draft", _draft_to_send)),
        Rule(name="no draft to send", user=send_it, say="There is no draft to send yet. Ask me to draft one first."),
        Rule(name="send a new email", user=_SEND_EMAIL, when=_not_negated, call=Call("send_email", _compose)),
        Rule(name="summary: search", user=summary, call=Call("search_emails", _search_from(recent=True))),
    ]
    return Script(tool_turns + user_turns, fallback=_fallback)


# =====================================================================================


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the OpenAI Chat Completions emulator (default mail script).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8403)
    parser.add_argument("--api-key", default="local-openai-key")
    options = parser.parse_args(argv)
    emulator = OpenAIEmulator(options.api_key, host=options.host, port=options.port)
    serve_until_interrupted(emulator, lambda: f"OpenAI emulator: OPENAI_BASE_URL={emulator.base_url}")


if __name__ == "__main__":
    main()
