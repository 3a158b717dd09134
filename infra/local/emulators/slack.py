"""An HTTP emulator of the Slack Web API, for tests and the local stack.

Point `slack_sdk.WebClient(base_url=emulator.api_url)` (or `SLACK_API_URL`) at it and the
production code talks to it through the real client. It answers the methods Mailroom uses
with Slack's own request and response shapes and error codes, keeps the messages the bot
posted (updated in place by chat.update, removed by chat.delete), records every call, and
can be told to fail the next calls of a method (429 with Retry-After, 5xx, or an `ok: false`).
Blocks are checked against Slack's text limits; modals open with views.open (a trigger id
is good once, for 3 seconds) and change with views.update (`views()` shows them).

State can also be read and driven over HTTP, so a process outside the test can poll it:

Sign in with Slack (OpenID Connect) is emulated too: `GET /openid/connect/authorize`
(`oidc_authorize_url`) answers as if the browser were signed in as `signed_in_user`
(a 302 back to `redirect_uri` with a code, or `error=access_denied` when nobody is), and
`openid.connect.token` / `openid.connect.userInfo` answer with Slack's shapes and errors.

    GET  /_emulator/calls?method=             {"calls": [...]}
    GET  /_emulator/messages?channel=&thread_ts=   {"messages": [...]}
    GET  /_emulator/reactions?channel=&ts=    {"reactions": [...]}
    POST /_emulator/reset                     {"ok": true}
    POST /_emulator/faults  {"method", "status", "error", "retry_after", "times"}
    GET  /_emulator/statuses?channel=         {"statuses": [...]}  (assistant.threads.setStatus)

The agent surface is emulated with Slack's argument rules: assistant.threads.setStatus /
setSuggestedPrompts (up to four) / setTitle, and chat.startStream (a reply: thread_ts in a
DM; recipient user and team outside DMs) / appendStream / stopStream, whose streams can be
made to expire (`expire_streams_after`) and then answer message_not_in_streaming_state.
Message metadata (`metadata` of chat.postMessage, chat.update and chat.stopStream) is kept
and read back through conversations.history / conversations.replies (oldest, latest,
inclusive, limit, cursor pagination) only with `include_all_metadata`, as Slack does.
Stream chunks are checked with Slack's rules (markdown_text, task_update with an id, a
title and a status of pending/in_progress/complete/error, plan_update with a title,
blocks; anything else is invalid_chunks); task cards are kept on the message (`tasks`).
`without_agent_surface()` stands for a workspace without it (missing_scope).

Run standalone with `python -m infra.local.emulators.slack --port 8401`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import dataclasses
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from infra.local.emulators.base import Emulator, Request, Response, serve_until_interrupted

# Arguments Slack accepts as JSON-encoded strings inside a form body; decoded so that
# `calls()` shows the same structure whichever encoding the client chose.
_JSON_ARGS = frozenset({"blocks", "attachments", "chunks", "metadata", "loading_messages", "unfurls", "view"})

_MAX_BLOCKS = 50  # Slack rejects more than 50 blocks in one message with invalid_blocks
_MARKDOWN_LIMIT = 12_000  # Slack: markdown_text is at most 12,000 characters
# The methods of the agent surface (scope assistant:write, or the streaming feature).
_AGENT_SURFACE_METHODS = frozenset(
    {
        "assistant.threads.setStatus",
        "assistant.threads.setSuggestedPrompts",
        "assistant.threads.setTitle",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
    }
)


class SlackError(Exception):
    """Raised by a method handler to answer HTTP 200 {"ok": false, "error": code}."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass
class PostedMessage:
    """A message the bot posted, as it stands now."""

    channel: str
    ts: str
    thread_ts: str | None = None  # None for a top-level message
    text: str = ""
    blocks: list[Any] = field(default_factory=list)
    user: str | None = None  # the recipient of an ephemeral message; None otherwise
    ephemeral: bool = False
    reactions: list[str] = field(default_factory=list)
    edits: int = 0  # how many chat.update calls changed it
    streaming: bool = False  # True between chat.startStream and chat.stopStream
    appends: int = 0  # chat.appendStream calls it took
    # Slack message metadata ({"event_type", "event_payload"}), kept across chat.update
    # calls that do not give it; returned by conversations.* only with include_all_metadata.
    metadata: dict[str, Any] | None = None
    # Task cards of a streamed message (task_update chunks), in the order first shown,
    # each as it stands now: {"id", "title", "status", ...}.
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _Fault:
    status: int
    error: str | None
    retry_after: int | None
    remaining: int


class SlackEmulator(Emulator):
    def __init__(
        self,
        bot_token: str = "xoxb-local-test-token",  # noqa: S107 - a fake token for a local fake
        bot_user_id: str = "U0MAILBOT",
        team_id: str = "T0LOCAL",
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "1111111111.2222222222",
        client_secret: str = "local-slack-client-secret",  # noqa: S107 - a fake secret for a local fake
    ):
        super().__init__(host=host, port=port)
        self.bot_token = bot_token
        # Sign in with Slack: the app's OAuth client and who the browser is signed in as.
        self.client_id = client_id
        self.client_secret = client_secret
        self.signed_in_user: str | None = None
        self.signed_in_team: str = team_id
        self._oidc_codes: dict[str, dict[str, Any]] = {}
        self._user_tokens: dict[str, dict[str, Any]] = {}
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.bot_id = "B" + bot_user_id[1:]
        # A Condition on the shared lock, so wait_for_messages wakes on every change.
        self._changed = threading.Condition(self.lock)
        self._last_ts_us = 0  # never reset: a ts must stay unique for the emulator's life
        self._calls: list[dict[str, Any]] = []
        self._messages: dict[tuple[str, str], PostedMessage] = {}
        self._faults: dict[str, list[_Fault]] = {}
        # Reactions on messages the bot did not post (e.g. :eyes: on the user's own message).
        self._foreign_reactions: dict[tuple[str, str], list[str]] = {}
        self._statuses: dict[tuple[str, str], str] = {}
        # Every status a thread showed, in order ("" when cleared); prompts and titles.
        self._status_log: list[dict[str, Any]] = []
        self._prompts: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._titles: dict[tuple[str, str], str] = {}
        # Streams expire server-side: after this many chat.appendStream calls (None: never).
        self._stream_expiry_appends: int | None = None
        # Whether this workspace has the agent surface (assistant:write granted).
        self.agent_surface = True
        self._open_dms: set[str] = set()
        self._users: dict[str, dict[str, Any]] = {}
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "assistant.threads.setStatus": self._assistant_threads_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_threads_set_suggested_prompts,
            "assistant.threads.setTitle": self._assistant_threads_set_title,
            "views.open": self._views_open,
            "views.update": self._views_update,
        }
        self._views: dict[str, dict[str, Any]] = {}
        self._used_triggers: set[str] = set()
        # Methods that authenticate with the app's client credentials or a user token
        # from Sign in with Slack, not with the bot token.
        self._oidc_methods: dict[str, Callable[[dict[str, Any], Request], dict[str, Any]]] = {
            "openid.connect.token": self._openid_connect_token,
            "openid.connect.userInfo": self._openid_connect_user_info,
            "auth.revoke": self._auth_revoke_user_token,
        }
        self.reset()

    # -- public API --------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.url}api/"

    @property
    def oidc_authorize_url(self) -> str:
        """SLACK_OIDC_AUTHORIZE_URL for this emulator."""
        return f"{self.url}openid/connect/authorize"

    def sign_in_as(self, user_id: str | None, team_id: str | None = None) -> None:
        """Who the emulated browser is signed in to Slack as (None: nobody, so the
        authorize page answers access_denied as if the user gave up)."""
        with self.lock:
            self.signed_in_user = user_id
            self.signed_in_team = team_id or self.team_id

    def authorize(self, url: str) -> str:
        """GET an authorize URL as a browser would; return the redirect's Location."""
        import urllib.error
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        try:
            with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
                raise AssertionError(f"authorize answered {response.status}, not a redirect")
        except urllib.error.HTTPError as exc:
            if exc.code == 302 and exc.headers.get("Location"):
                return str(exc.headers["Location"])
            raise AssertionError(f"authorize answered {exc.code}: {exc.read()[:200]!r}") from None

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c["method"] == method]

    def messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[PostedMessage]:
        """Snapshots (copies) of the current messages, in the order they were posted."""
        with self.lock:
            return [copy.deepcopy(m) for m in self._messages.values() if _matches(m, channel, thread_ts)]

    def wait_for_messages(
        self,
        count: int = 1,
        channel: str | None = None,
        thread_ts: str | None = None,
        timeout: float = 10.0,
    ) -> list[PostedMessage]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.messages(channel, thread_ts)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    everything = [m.to_dict() for m in self._messages.values()]
                    raise AssertionError(
                        f"expected at least {count} message(s) (channel={channel!r}, thread_ts={thread_ts!r})"
                        f" within {timeout}s; {len(found)} matched. All messages: {everything}; "
                        f"calls: {[(c['method'], c['ok'], c['error']) for c in self._calls]}"
                    )
                self._changed.wait(remaining)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail.

        With `error`, they answer HTTP 200 {"ok": false, "error": error}, as Slack does for
        application errors. Otherwise they answer HTTP `status`; with `retry_after` set the
        status becomes 429 (unless another non-500 status was asked for) and carries a
        Retry-After header, as Slack's rate limiter does.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        if retry_after is not None and status == 500:
            status = 429
        with self.lock:
            self._faults.setdefault(method, []).append(_Fault(status, error, retry_after, times))

    def reset(self) -> None:
        with self._changed:
            self._calls.clear()
            self._messages.clear()
            self._faults.clear()
            self._foreign_reactions.clear()
            self._statuses.clear()
            self._status_log.clear()
            self._prompts.clear()
            self._titles.clear()
            self._stream_expiry_appends = None
            self.agent_surface = True
            self._open_dms.clear()
            self._users.clear()
            self._views.clear()
            self._oidc_codes.clear()
            self._user_tokens.clear()
            self.add_user(self.bot_user_id, name="mailroom", real_name="Mailroom", is_bot=True)
            self._changed.notify_all()

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        tz: str = "Europe/London",
        is_bot: bool = False,
    ) -> None:
        """Give users.info a specific profile; users not added get a generated one."""
        with self.lock:
            self._users[user_id] = self._user_object(user_id, name, real_name, email, tz, is_bot)

    def reactions(self, channel: str, ts: str) -> list[str]:
        """Reaction names on any message, including ones the bot did not post."""
        with self.lock:
            message = self._messages.get((channel, ts))
            if message is not None:
                return list(message.reactions)
            return list(self._foreign_reactions.get((channel, ts), []))

    def views(self) -> dict[str, dict[str, Any]]:
        """Modals opened with views.open, by view id, as they stand now."""
        with self.lock:
            return copy.deepcopy(self._views)

    def thread_status(self, channel_id: str, thread_ts: str) -> str | None:
        """The last assistant.threads.setStatus status for a thread ("" once cleared)."""
        with self.lock:
            return self._statuses.get((channel_id, thread_ts))

    def status_log(self, channel_id: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Every status set ({channel_id, thread_ts, status, at}), oldest first."""
        with self.lock:
            return [
                dict(s)
                for s in self._status_log
                if (channel_id is None or s["channel_id"] == channel_id)
                and (thread_ts is None or s["thread_ts"] == thread_ts)
            ]

    def suggested_prompts(self, channel_id: str, thread_ts: str | None = None) -> dict[str, Any] | None:
        """The prompts last set for a DM (thread_ts None) or an agent thread."""
        with self.lock:
            found = self._prompts.get((channel_id, thread_ts))
            return copy.deepcopy(found) if found is not None else None

    def thread_title(self, channel_id: str, thread_ts: str) -> str | None:
        with self.lock:
            return self._titles.get((channel_id, thread_ts))

    def expire_streams_after(self, appends: int | None) -> None:
        """Make each stream expire (as Slack's do when left too long) after this many
        chat.appendStream calls: later appends and the stop answer
        message_not_in_streaming_state. None: streams never expire."""
        with self.lock:
            self._stream_expiry_appends = appends

    def without_agent_surface(self) -> None:
        """A workspace whose app lacks the agent surface (no assistant:write): the
        assistant.threads.* and streaming methods answer missing_scope."""
        with self.lock:
            self.agent_surface = False

    # -- HTTP routing ------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        if request.path == "/openid/connect/authorize" and request.method == "GET":
            return self._oidc_authorize(request)
        if request.path.startswith("/api/"):
            return self._api(request.path[len("/api/") :], request)
        if request.path.startswith("/_emulator/"):
            return self._inspect(request.path[len("/_emulator/") :], request)
        return Response(404, {"ok": False, "error": "not_found"})

    def _inspect(self, name: str, request: Request) -> Response:
        if name == "calls" and request.method == "GET":
            return Response(200, {"calls": self.calls(_blank_to_none(request.arg("method")))})
        if name == "messages" and request.method == "GET":
            channel = _blank_to_none(request.arg("channel"))
            thread_ts = _blank_to_none(request.arg("thread_ts"))
            return Response(200, {"messages": [m.to_dict() for m in self.messages(channel, thread_ts)]})
        if name == "reactions" and request.method == "GET":
            return Response(200, {"reactions": self.reactions(request.arg("channel") or "", request.arg("ts") or "")})
        if name == "reset" and request.method == "POST":
            self.reset()
            return Response(200, {"ok": True})
        if name == "statuses" and request.method == "GET":
            return Response(200, {"statuses": self.status_log(_blank_to_none(request.arg("channel")))})
        if name == "faults" and request.method == "POST":
            try:
                body = request.json()
                if not isinstance(body, dict) or not isinstance(body.get("method"), str):
                    raise ValueError("a JSON object with a string 'method' is required")
                self.fail_next(
                    body["method"],
                    status=int(body.get("status") or 500),
                    error=body.get("error"),
                    retry_after=None if body.get("retry_after") is None else int(body["retry_after"]),
                    times=int(body.get("times") or 1),
                )
            except (ValueError, TypeError) as exc:
                return Response(400, {"ok": False, "error": str(exc)})
            return Response(200, {"ok": True})
        return Response(404, {"ok": False, "error": "not_found"})

    def _api(self, method: str, request: Request) -> Response:
        received = time.time()
        malformed = False
        try:
            args = _request_args(request)
        except ValueError:
            args, malformed = {}, True
        args.pop("token", None)  # never echo a credential into the call log

        def answer(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
            with self._changed:
                self._calls.append(
                    {
                        "method": method,
                        "args": args,
                        "ok": bool(body.get("ok")),
                        "error": body.get("error"),
                        "ts": received,
                    }
                )
                self._changed.notify_all()
            return Response(status, body, headers)

        # Faults come first: they stand for the platform in front of the API (rate limiter, outage).
        fault = self._take_fault(method)
        if fault is not None:
            if fault.error is not None:
                return answer({"ok": False, "error": fault.error})
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            error = "ratelimited" if fault.status == 429 else "internal_error"
            return answer({"ok": False, "error": error}, fault.status, headers)

        oidc = self._oidc_methods.get(method)
        if oidc is not None:
            try:
                with self._changed:
                    return answer({"ok": True, **oidc(args, request)})
            except SlackError as exc:
                return answer({"ok": False, "error": exc.code})
        auth_error = self._auth_error(request)
        if auth_error is not None:
            return answer({"ok": False, "error": auth_error})
        handler = self._methods.get(method)
        if handler is None:
            return answer({"ok": False, "error": "unknown_method"})
        if method in _AGENT_SURFACE_METHODS and not self.agent_surface:
            return answer({"ok": False, "error": "missing_scope", "needed": "assistant:write"})
        if malformed:
            return answer({"ok": False, "error": "invalid_json"})
        try:
            with self._changed:
                body = handler(args)
                self._changed.notify_all()
        except SlackError as exc:
            return answer({"ok": False, "error": exc.code})
        return answer({"ok": True, **body})

    def _take_fault(self, method: str) -> _Fault | None:
        with self.lock:
            queue = self._faults.get(method)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault

    def _auth_error(self, request: Request) -> str | None:
        # Slack takes the token from the Authorization header, or as a `token` form field.
        header = request.headers.get("authorization", "")
        token: str | None = None
        if header.lower().startswith("bearer "):
            token = header[len("bearer ") :].strip()
        elif "json" not in request.headers.get("content-type", ""):
            try:
                token = _request_args(request).get("token")
            except ValueError:
                token = None
        if not token:
            return "not_authed"
        return None if token == self.bot_token else "invalid_auth"

    # -- helpers for handlers ------------------------------------------------------------
    def _next_ts(self) -> str:
        # Slack's ts is "seconds.microseconds"; unique and increasing within a channel.
        with self.lock:
            now_us = time.time_ns() // 1000
            self._last_ts_us = max(now_us, self._last_ts_us + 1)
            return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _message_json(self, message: PostedMessage, *, with_metadata: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "text": message.text,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
            "ts": message.ts,
        }
        if message.thread_ts is not None:
            body["thread_ts"] = message.thread_ts
            body["parent_user_id"] = self.bot_user_id
        if message.blocks:
            body["blocks"] = message.blocks
        if with_metadata and message.metadata is not None:
            body["metadata"] = copy.deepcopy(message.metadata)
        return body

    def _find(self, args: dict[str, Any], ts_arg: str = "ts") -> PostedMessage:
        channel = _require_channel(args)
        ts = args.get(ts_arg)
        message = self._messages.get((channel, str(ts))) if ts else None
        if message is None or message.ephemeral:  # ephemerals cannot be edited or deleted by the API
            raise SlackError("message_not_found")
        return message

    def _user_object(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        tz: str = "Europe/London",
        is_bot: bool = False,
    ) -> dict[str, Any]:
        name = name or user_id.lower()
        real_name = real_name or name.title()
        profile: dict[str, Any] = {"real_name": real_name, "display_name": name}
        if not is_bot:
            profile["email"] = email or f"{name}@example.com"
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real_name,
            "deleted": False,
            "tz": tz,
            "is_bot": is_bot,
            "profile": profile,
        }

    # -- Web API methods (called with self.lock held) -------------------------------------
    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://mailroom-local.slack.com/",
            "team": "Mailroom Local",
            "user": self._users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _new_message(self, args: dict[str, Any], **extra: Any) -> PostedMessage:
        channel = _require_channel(args)
        text = args.get("text") or args.get("markdown_text") or ""
        blocks = _blocks(args.get("blocks"))
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        thread_ts = _blank_to_none(args.get("thread_ts"))
        if not extra.get("ephemeral"):  # chat.postEphemeral takes no metadata
            extra["metadata"] = _metadata(args.get("metadata"))
        message = PostedMessage(
            channel=channel, ts=self._next_ts(), thread_ts=thread_ts, text=str(text), blocks=blocks, **extra
        )
        self._messages[(channel, message.ts)] = message
        return message

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._new_message(args)
        return {"channel": message.channel, "ts": message.ts, "message": self._message_json(message)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        _require_channel(args)
        user = args.get("user")
        if not isinstance(user, str) or not _is_user_id(user):
            raise SlackError("user_not_found")
        message = self._new_message(args, user=user, ephemeral=True)
        return {"message_ts": message.ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        text = args.get("text", args.get("markdown_text"))
        if not text and args.get("blocks") is None and not args.get("attachments"):
            raise SlackError("no_text")
        if text is not None:
            message.text = str(text)
        if args.get("blocks") is not None:  # absent keeps the old blocks; [] removes them
            message.blocks = _blocks(args["blocks"])
        if args.get("metadata"):  # Slack: absent keeps the message's metadata
            message.metadata = _metadata(args["metadata"])
        message.edits += 1
        return {
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(message),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        del self._messages[(message.channel, message.ts)]
        return {"channel": message.channel, "ts": message.ts}

    def _chat_start_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _require_channel(args)
        thread_ts = _blank_to_none(args.get("thread_ts"))
        # Slack: a stream is a reply (a top-level stream only in channels); outside a DM
        # it needs the recipient user and team.
        if channel.startswith("D") and thread_ts is None:
            raise SlackError("invalid_arguments")
        if not channel.startswith("D") and not (args.get("recipient_user_id") and args.get("recipient_team_id")):
            raise SlackError("invalid_arguments")
        if args.get("recipient_user_id") and not _is_user_id(str(args["recipient_user_id"])):
            raise SlackError("user_not_found")
        if args.get("task_display_mode") not in (None, "", "timeline", "plan"):
            raise SlackError("invalid_arguments")
        _check_markdown(args)
        message = PostedMessage(
            channel=channel,
            ts=self._next_ts(),
            thread_ts=_blank_to_none(args.get("thread_ts")),
            streaming=True,
        )
        _append_stream_content(message, args)
        self._messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts}

    def _streaming_message(self, args: dict[str, Any]) -> PostedMessage:
        message = self._find(args)
        if not message.streaming:
            raise SlackError("message_not_in_streaming_state")
        return message

    def _chat_append_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._streaming_message(args)
        if not args.get("markdown_text") and not args.get("chunks"):
            raise SlackError("invalid_arguments")
        _check_markdown(args)
        message.appends += 1
        if self._stream_expiry_appends is not None and message.appends > self._stream_expiry_appends:
            message.streaming = False  # expired: what was streamed so far stays
            raise SlackError("message_not_in_streaming_state")
        _append_stream_content(message, args)
        return {"channel": message.channel, "ts": message.ts}

    def _chat_stop_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._streaming_message(args)
        _append_stream_content(message, args)
        if args.get("blocks") is not None:  # rendered at the bottom of the final message
            message.blocks = message.blocks + _blocks(args["blocks"])
        if args.get("metadata"):  # chat.stopStream takes metadata; chat.startStream does not
            message.metadata = _metadata(args["metadata"])
        message.streaming = False
        return {"channel": message.channel, "ts": message.ts, "message": self._message_json(message)}

    def _reaction_list(self, args: dict[str, Any]) -> tuple[list[str], str]:
        channel = _require_channel(args)
        ts = args.get("timestamp")
        name = str(args.get("name") or "").strip(":")
        if not ts:
            raise SlackError("no_item_specified")
        if not name:
            raise SlackError("invalid_name")
        message = self._messages.get((channel, str(ts)))
        if message is not None:
            return message.reactions, name
        # Any other message (such as the user's own) is assumed to exist in Slack.
        return self._foreign_reactions.setdefault((channel, str(ts)), []), name

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        reactions, name = self._reaction_list(args)
        if name in reactions:
            raise SlackError("already_reacted")
        reactions.append(name)
        return {}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        reactions, name = self._reaction_list(args)
        if name not in reactions:
            raise SlackError("no_reaction")
        reactions.remove(name)
        return {}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users_arg = args.get("users")
        users = users_arg if isinstance(users_arg, list) else str(users_arg or "").split(",")
        users = [u.strip() for u in users if u and u.strip()]
        if not users:
            if args.get("channel"):
                return {"channel": {"id": str(args["channel"])}}
            raise SlackError("users_list_not_supplied")
        if any(not _is_user_id(u) for u in users):
            raise SlackError("user_not_found")
        others = sorted(set(users) - {self.bot_user_id})
        if len(others) <= 1:
            # Stable and predictable: the DM with U123 is D123.
            user = others[0] if others else self.bot_user_id
            channel_id = "D" + user[1:]
        else:
            digest = hashlib.sha1(",".join(others).encode(), usedforsecurity=False).hexdigest()[:10].upper()
            channel_id = "G" + digest
        already_open = channel_id in self._open_dms
        self._open_dms.add(channel_id)
        channel: dict[str, Any] = {"id": channel_id}
        if _truthy(args.get("return_im")):
            channel.update({"created": int(time.time()), "is_im": channel_id.startswith("D"), "is_open": True})
            if channel_id.startswith("D"):
                channel["user"] = others[0] if others else self.bot_user_id
        body: dict[str, Any] = {"channel": channel}
        if already_open:
            body.update({"no_op": True, "already_open": True})
        return body

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages (no replies), newest first, between `oldest` and `latest`."""
        channel = _require_channel(args)
        found = [
            m
            for m in self._messages.values()
            if m.channel == channel and not m.ephemeral and m.thread_ts is None and _in_window(m.ts, args)
        ]
        found.sort(key=lambda m: _ts_key(m.ts), reverse=True)
        return self._page(found, args, default_limit=100)

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent first (when the bot posted it), then the replies in order,
        those between `oldest` and `latest`."""
        channel = _require_channel(args)
        ts = _blank_to_none(args.get("ts"))
        if ts is None:
            raise SlackError("thread_not_found")
        _check_ts(ts)
        in_channel = [m for m in self._messages.values() if m.channel == channel and not m.ephemeral]
        parent = [m for m in in_channel if m.ts == ts and m.thread_ts is None]
        replies = sorted((m for m in in_channel if m.thread_ts == ts), key=lambda m: _ts_key(m.ts))
        if not parent and not replies:
            # Only the bot's messages are kept here: a thread it never wrote in is unknown.
            raise SlackError("thread_not_found")
        return self._page(parent + [m for m in replies if _in_window(m.ts, args)], args, default_limit=1000)

    def _page(self, found: list[PostedMessage], args: dict[str, Any], *, default_limit: int) -> dict[str, Any]:
        """Slack's cursor pagination: `limit` (at most 999 for history, 1000 by default
        for replies), an opaque `cursor`, `has_more` and `response_metadata.next_cursor`."""
        try:
            limit = int(args.get("limit") or default_limit)
        except (TypeError, ValueError):
            raise SlackError("invalid_limit") from None
        limit = max(1, min(limit, 999 if default_limit == 100 else 1000))
        cursor = args.get("cursor") or ""
        start = 0
        if cursor:
            try:
                start = int(base64.b64decode(str(cursor), validate=True).decode().removeprefix("next_ts:"))
            except ValueError:
                raise SlackError("invalid_cursor") from None
            if not 0 <= start <= len(found):
                raise SlackError("invalid_cursor")
        page = found[start : start + limit]
        more = start + limit < len(found)
        with_metadata = _truthy(args.get("include_all_metadata"))
        body: dict[str, Any] = {
            "messages": [self._message_json(m, with_metadata=with_metadata) for m in page],
            "has_more": more,
        }
        next_cursor = base64.b64encode(f"next_ts:{start + limit}".encode()).decode() if more else ""
        body["response_metadata"] = {"next_cursor": next_cursor}
        return body

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user")
        if not isinstance(user, str) or not _is_user_id(user):
            raise SlackError("user_not_found")
        return {"user": self._users.get(user) or self._user_object(user)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_trigger(args.get("trigger_id"), self._used_triggers)
        view = _check_view(args.get("view"))
        view_id = "V" + hashlib.sha256(f"{len(self._views)}:{time.time_ns()}".encode()).hexdigest()[:10].upper()
        stored = {**view, "id": view_id, "team_id": self.team_id, "hash": f"{time.time():.6f}", "state": {"values": {}}}
        self._views[view_id] = stored
        return {"view": copy.deepcopy(stored)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        if not view_id and not args.get("external_id"):
            raise SlackError("invalid_arguments")
        current = self._views.get(str(view_id))
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = _check_view(args.get("view"))
        stored = {**view, "id": current["id"], "team_id": self.team_id, "hash": f"{time.time():.6f}"}
        stored["state"] = {"values": {}}
        self._views[current["id"]] = stored
        return {"view": copy.deepcopy(stored)}

    def _assistant_threads_set_status(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = args.get("channel_id")
        if not channel_id:
            raise SlackError("channel_not_found")
        thread_ts = args.get("thread_ts")
        if not thread_ts or "status" not in args:
            raise SlackError("invalid_arguments")
        loading = args.get("loading_messages")
        if loading is not None and (not isinstance(loading, list) or len(loading) > 10):
            raise SlackError("invalid_arguments")
        status = str(args["status"])
        self._statuses[(str(channel_id), str(thread_ts))] = status
        self._status_log.append(
            {"channel_id": str(channel_id), "thread_ts": str(thread_ts), "status": status, "at": time.time()}
        )
        return {}

    def _assistant_threads_set_suggested_prompts(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = args.get("channel_id")
        if not isinstance(channel_id, str) or not channel_id:
            raise SlackError("channel_not_found")
        prompts = args.get("prompts")
        if isinstance(prompts, str):
            with contextlib.suppress(ValueError):
                prompts = json.loads(prompts)
        # Slack: up to four prompts, each with a title and a message.
        if not isinstance(prompts, list) or not 0 < len(prompts) <= 4:
            raise SlackError("invalid_arguments")
        for prompt in prompts:
            if not isinstance(prompt, dict) or not prompt.get("title") or not prompt.get("message"):
                raise SlackError("invalid_arguments")
        thread_ts = _blank_to_none(args.get("thread_ts"))
        self._prompts[(channel_id, thread_ts)] = {"title": args.get("title"), "prompts": prompts}
        return {}

    def _assistant_threads_set_title(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = args.get("channel_id")
        if not isinstance(channel_id, str) or not channel_id:
            raise SlackError("channel_not_found")
        thread_ts, title = args.get("thread_ts"), args.get("title")
        if not isinstance(thread_ts, str) or not thread_ts:
            raise SlackError("invalid_thread_ts")
        if not isinstance(title, str) or not title:
            raise SlackError("invalid_arguments")
        self._titles[(channel_id, thread_ts)] = title
        return {}

    # -- Sign in with Slack (OpenID Connect) ---------------------------------------------
    def _oidc_authorize(self, request: Request) -> Response:
        redirect_uri = request.arg("redirect_uri") or ""
        if request.arg("client_id") != self.client_id:
            return Response(400, "<h1>Invalid client_id parameter</h1>")
        if not redirect_uri.startswith(("http://", "https://")):
            return Response(400, "<h1>Invalid redirect_uri</h1>")
        scopes = set((request.arg("scope") or "").split())
        if request.arg("response_type") != "code" or "openid" not in scopes or not scopes <= _OIDC_SCOPES:
            return Response(400, "<h1>Invalid scope or response_type</h1>")
        params: dict[str, str] = {}
        if request.arg("state") is not None:
            params["state"] = request.arg("state") or ""
        with self.lock:
            user, team = self.signed_in_user, self.signed_in_team
            if user is None:
                params["error"] = "access_denied"
            else:
                code = secrets.token_hex(16)
                self._oidc_codes[code] = {
                    "user": user,
                    "team": team,
                    "redirect_uri": redirect_uri,
                    "scopes": scopes,
                    "nonce": request.arg("nonce"),
                    "expires": time.time() + 600,
                }
                params["code"] = code
        separator = "&" if "?" in redirect_uri else "?"
        return Response(302, b"", {"Location": f"{redirect_uri}{separator}{urlencode(params)}"})

    def _openid_connect_token(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        client_id, client_secret = _client_credentials(args, request)
        if client_id != self.client_id:
            raise SlackError("invalid_client_id")
        if client_secret != self.client_secret:
            raise SlackError("bad_client_secret")
        if (args.get("grant_type") or "authorization_code") != "authorization_code":
            raise SlackError("invalid_grant_type")
        grant = self._oidc_codes.pop(str(args.get("code") or ""), None)  # a code works once
        if grant is None or grant["expires"] < time.time():
            raise SlackError("invalid_code")
        if args.get("redirect_uri") != grant["redirect_uri"]:
            raise SlackError("bad_redirect_uri")
        token = "xoxp-" + secrets.token_hex(16)
        self._user_tokens[token] = grant
        claims = {
            "iss": "https://slack.com",
            "sub": grant["user"],
            "aud": self.client_id,
            "exp": int(time.time()) + 3600,
            "iat": int(time.time()),
            "auth_time": int(time.time()),
            **({"nonce": grant["nonce"]} if grant["nonce"] else {}),
            **self._identity_claims(grant),
        }
        return {"access_token": token, "token_type": "Bearer", "id_token": _unsigned_jwt(claims)}

    def _openid_connect_user_info(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"sub": (grant := self._user_grant(request))["user"], **self._identity_claims(grant)}

    def _auth_revoke_user_token(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        # Only Sign in with Slack's user tokens are revocable here; the bot token is not.
        self._user_grant(request)
        token = request.headers.get("authorization", "")[len("bearer ") :].strip()
        self._user_tokens.pop(token, None)
        return {"revoked": True}

    def user_tokens_alive(self) -> int:
        """How many Sign in with Slack user tokens still work."""
        with self.lock:
            return len(self._user_tokens)

    def _user_grant(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token: Any = header[len("bearer ") :].strip()
        else:
            try:
                token = _request_args(request).get("token")  # `args` has had it removed for the call log
            except ValueError:
                token = None
        if not token:
            raise SlackError("not_authed")
        grant = self._user_tokens.get(str(token))
        if grant is None:
            raise SlackError("invalid_auth")
        return grant

    def _identity_claims(self, grant: dict[str, Any]) -> dict[str, Any]:
        profile = (self._users.get(grant["user"]) or self._user_object(grant["user"]))["profile"]
        claims: dict[str, Any] = {
            "https://slack.com/user_id": grant["user"],
            "https://slack.com/team_id": grant["team"],
            "https://slack.com/team_name": "Mailroom Local",
            "https://slack.com/team_domain": "mailroom-local",
        }
        if "profile" in grant["scopes"]:
            claims |= {"name": profile["real_name"], "given_name": profile["real_name"].split()[0], "locale": "en-US"}
        if "email" in grant["scopes"]:
            claims |= {"email": profile.get("email", ""), "email_verified": True}
        return claims


# -- views (modals) ----------------------------------------------------------------------
TRIGGER_LIFETIME_SECONDS = 3.0  # Slack: "pass a valid trigger_id within 3 seconds of receiving it"


# views.open takes a trigger id (<issued ms>.<n>.<hex> here) once, within 3 s; views.update
# takes the view_id views.open returned. Both check the view as Slack does.


def _check_view(view: Any) -> dict[str, Any]:
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except ValueError:
            raise SlackError("invalid_arguments") from None
    if not isinstance(view, dict) or view.get("type") != "modal":
        raise SlackError("invalid_arguments")
    title = view.get("title")
    if not isinstance(title, dict) or title.get("type") != "plain_text" or not 0 < len(str(title.get("text"))) <= 24:
        raise SlackError("invalid_arguments")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > 100:
        raise SlackError("invalid_arguments")
    _check_blocks(blocks)
    if any(b.get("type") == "input" for b in blocks) and not isinstance(view.get("submit"), dict):
        raise SlackError("invalid_arguments")  # a modal with inputs needs a submit button
    if len(str(view.get("private_metadata") or "")) > 3000 or len(str(view.get("callback_id") or "")) > 255:
        raise SlackError("invalid_arguments")
    for block in blocks:
        element = block.get("element") if block.get("type") == "input" else None
        if isinstance(element, dict) and len(str(element.get("initial_value") or "")) > 3000:
            raise SlackError("invalid_arguments")
    return view


def _check_trigger(trigger_id: Any, used: set[str]) -> None:
    if not isinstance(trigger_id, str) or not trigger_id:
        raise SlackError("invalid_arguments")
    issued = trigger_id.split(".", 1)[0]
    if not issued.isdigit():
        raise SlackError("invalid_trigger_id")
    if trigger_id in used:
        raise SlackError("exchanged_trigger_id")
    if time.time() - int(issued) / 1000 > TRIGGER_LIFETIME_SECONDS:
        raise SlackError("expired_trigger_id")
    used.add(trigger_id)


# -- module helpers ---------------------------------------------------------------------
_OIDC_SCOPES = frozenset({"openid", "profile", "email"})


def _client_credentials(args: dict[str, Any], request: Request) -> tuple[str, str]:
    """HTTP Basic auth (what slack-sdk sends) or client_id/client_secret fields."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "", ""
        return client_id, client_secret
    return str(args.get("client_id") or ""), str(args.get("client_secret") or "")


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    """An id_token shaped like Slack's (header.payload.signature); the emulator does not sign."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}."


def _request_args(request: Request) -> dict[str, Any]:
    """Query string plus body (JSON or form), with JSON-in-form fields decoded."""
    args: dict[str, Any] = {k: v[0] for k, v in request.query.items() if v}
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("JSON body must be an object")
        args.update(body)
    elif request.body and "multipart" not in content_type:
        args.update(request.form())
    for name in _JSON_ARGS & args.keys():
        if isinstance(args[name], str) and args[name]:
            # An undecodable value stays a string; _blocks then answers invalid_blocks_format.
            with contextlib.suppress(ValueError):
                args[name] = json.loads(args[name])
    return args


def _metadata(value: Any) -> dict[str, Any] | None:
    """Slack's message metadata: an event_type string and an event_payload object."""
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    if not isinstance(value.get("event_type"), str) or not isinstance(value.get("event_payload"), dict):
        raise SlackError("invalid_metadata_schema")
    return copy.deepcopy(value)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _check_ts(ts: str) -> None:
    try:
        _ts_key(ts)
    except ValueError:
        raise SlackError("thread_not_found") from None


def _in_window(ts: str, args: dict[str, Any]) -> bool:
    """Slack's oldest/latest bounds (exclusive unless `inclusive`); a bad bound is an error."""
    inclusive = _truthy(args.get("inclusive"))
    key = _ts_key(ts)
    for name, after in (("oldest", True), ("latest", False)):
        bound = _blank_to_none(args.get(name))
        if bound is None:
            continue
        try:
            limit = _ts_key(bound)
        except ValueError:
            raise SlackError(f"invalid_ts_{name}") from None
        if key == limit and not inclusive:
            return False
        if (key < limit) if after else (key > limit):
            return False
    return True


def _require_channel(args: dict[str, Any]) -> str:
    channel = args.get("channel")
    if not isinstance(channel, str) or not channel:
        raise SlackError("channel_not_found")
    return channel


def _blocks(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        raise SlackError("invalid_blocks_format")
    if not isinstance(value, list) or len(value) > _MAX_BLOCKS:
        raise SlackError("invalid_blocks")
    if any(not isinstance(b, dict) or not isinstance(b.get("type"), str) for b in value):
        raise SlackError("invalid_blocks")
    _check_blocks(value)
    return value


def _check_blocks(blocks: list[Any]) -> None:
    """Slack's text limits: a section's text 3,000 characters, at most 10 fields of 2,000;
    text objects are never empty; a context holds at most 10 elements."""
    for block in blocks:
        text = block.get("text") if block.get("type") == "section" else None
        if text is not None and not _text_fits(text, 3000):
            raise SlackError("invalid_blocks")
        fields = block.get("fields") or []
        if len(fields) > 10 or not all(_text_fits(f, 2000) for f in fields):
            raise SlackError("invalid_blocks")
        if block.get("type") == "context" and len(block.get("elements") or []) > 10:
            raise SlackError("invalid_blocks")
        if block.get("type") == "context_actions":
            _check_context_actions(block)


def _check_context_actions(block: dict[str, Any]) -> None:
    """A context_actions block: 1-5 feedback_buttons or icon_button elements; feedback
    buttons need both buttons, each with plain_text (75) and a value (2,000)."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 0 < len(elements) <= 5:
        raise SlackError("invalid_blocks")
    for element in elements:
        kind = element.get("type") if isinstance(element, dict) else None
        if kind == "feedback_buttons":
            for side in ("positive_button", "negative_button"):
                button = element.get(side)
                if not isinstance(button, dict) or not _text_fits(button.get("text"), 75):
                    raise SlackError("invalid_blocks")
                if button["text"].get("type") != "plain_text":
                    raise SlackError("invalid_blocks")
                if not isinstance(button.get("value"), str) or not 0 < len(button["value"]) <= 2000:
                    raise SlackError("invalid_blocks")
        elif kind != "icon_button":
            raise SlackError("invalid_blocks")


def _check_markdown(args: dict[str, Any]) -> None:
    texts = [args.get("markdown_text") or ""]
    texts += [c.get("text") or "" for c in args.get("chunks") or [] if isinstance(c, dict)]
    if any(len(str(t)) > _MARKDOWN_LIMIT for t in texts):
        raise SlackError("msg_too_long")


def _text_fits(text: Any, limit: int) -> bool:
    if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
        return False
    value = text.get("text")
    return isinstance(value, str) and 0 < len(value) <= limit


def _append_stream_content(message: PostedMessage, args: dict[str, Any]) -> None:
    # The message text is the concatenation of every markdown_text and markdown_text chunk.
    if args.get("markdown_text"):
        message.text += str(args["markdown_text"])
    chunks = args.get("chunks") or []
    if not isinstance(chunks, list):
        raise SlackError("invalid_chunks")
    for chunk in chunks:
        _check_chunk(chunk)
    # Checked whole before any of it shows: a refused call changes nothing.
    for chunk in chunks:
        if chunk["type"] == "markdown_text":
            message.text += chunk["text"]
        elif chunk["type"] == "blocks":
            message.blocks = message.blocks + _blocks(chunk.get("blocks"))
        elif chunk["type"] == "task_update":
            card = {k: v for k, v in chunk.items() if k != "type"}
            known = [t for t in message.tasks if t["id"] == card["id"]]
            if known:
                known[0].update(card)
            else:
                message.tasks.append(card)


_TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
_TASK_TEXT_LIMIT = 256  # a task's details and output


def _check_chunk(chunk: Any) -> None:
    """Slack's streaming chunks: markdown_text {text}; task_update {id, title, status,
    details?, output?, sources?}; plan_update {title}; blocks {blocks}."""
    if not isinstance(chunk, dict):
        raise SlackError("invalid_chunks")
    kind = chunk.get("type")
    if kind == "markdown_text":
        if not isinstance(chunk.get("text"), str):
            raise SlackError("invalid_chunks")
    elif kind == "task_update":
        if not all(isinstance(chunk.get(k), str) and chunk[k].strip() for k in ("id", "title")):
            raise SlackError("invalid_chunks")
        if chunk.get("status") not in _TASK_STATUSES:
            raise SlackError("invalid_chunks")
        for key in ("details", "output"):
            if key in chunk and not (isinstance(chunk[key], str) and len(chunk[key]) <= _TASK_TEXT_LIMIT):
                raise SlackError("invalid_chunks")
        sources = chunk.get("sources", [])
        if not isinstance(sources, list) or any(
            not isinstance(s, dict) or s.get("type") != "url" or not isinstance(s.get("url"), str) for s in sources
        ):
            raise SlackError("invalid_chunks")
    elif kind == "plan_update":
        if not isinstance(chunk.get("title"), str) or not chunk["title"].strip():
            raise SlackError("invalid_chunks")
    elif kind == "blocks":
        _blocks(chunk.get("blocks"))
    else:
        raise SlackError("invalid_chunks")


def _matches(message: PostedMessage, channel: str | None, thread_ts: str | None) -> bool:
    return (channel is None or message.channel == channel) and (thread_ts is None or message.thread_ts == thread_ts)


def _is_user_id(value: str) -> bool:
    return len(value) > 1 and value[0] in "UW"


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true"}


def _blank_to_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Slack Web API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8401)
    parser.add_argument("--token", default="xoxb-local-test-token")
    parser.add_argument("--bot-user-id", default="U0MAILBOT")
    parser.add_argument("--team-id", default="T0LOCAL")
    options = parser.parse_args(argv)
    emulator = SlackEmulator(options.token, options.bot_user_id, options.team_id, options.host, options.port)
    serve_until_interrupted(emulator, lambda: f"Slack emulator: SLACK_API_URL={emulator.api_url}")


if __name__ == "__main__":
    main()
