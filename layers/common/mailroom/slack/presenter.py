"""How one agent turn shows in Slack while it runs: a status line per step, the answer
streamed as it is written, feedback buttons under it, and one complete answer at the end
whatever fails on the way.

Statuses and streams need Slack's agent surface (`assistant:write`) and a thread: the
agent surface's conversations are threads, and in a DM Slack streams only replies. Each
tool step is also a task card (a `task_update` chunk, "timeline" display) in the streamed
reply. Anywhere else, or where a workspace refuses a call, the turn degrades to what it
did before: the "Working on it…" placeholder edited into the answer. Nothing here makes
a turn fail.

Status lines are shown only in the user's own DM thread (turns run only in DMs): they
may name a search or a subject, never anything the user could not already see.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mailroom.observability import logger, metrics
from mailroom.slack.format import InertStream, split_message, to_mrkdwn

# Slack drops a status after 2 minutes without an update; it is sent again before that.
STATUS_REFRESH_SECONDS = 90.0
# The first token flushes at once (time to first visible token); then one Slack call per
# this many characters (a few words: the answer grows as it is written; a 2,000-character
# answer takes ~30 calls) or, when the model is slow, per this many seconds.
STREAM_BUFFER_CHARS = 64
STREAM_FLUSH_SECONDS = 0.5
THINKING = "is thinking…"
FEEDBACK_ACTION = "answer_feedback"
# Slack caps a markdown_text at 12,000 characters: longer answers go by the fallback.
_STREAM_MAX_CHARS = 11_000

_STEP_WORDS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], str]] = {
    "search_emails": lambda a, s: f"is searching your mail for {_quote(a.get('query'))}…",
    "read_email": lambda a, s: f"is reading {_quote(s.get(str(a.get('message_id'))), 'an email')}…",
    "read_thread": lambda a, s: f"is reading {_quote(s.get(str(a.get('thread_id'))), 'a conversation')}…",
    "create_draft": lambda a, s: "is drafting a reply…" if a.get("reply_to_message_id") else "is drafting an email…",
    "send_email": lambda a, s: "is preparing the email for your approval…",
    "send_draft": lambda a, s: "is preparing the draft for your approval…",
}


def step_status(tool: str, args: Mapping[str, Any], subjects: Mapping[str, str] | None = None) -> str:
    """Words for a tool step as it starts; a tool not listed gets a plain default, so new
    tools need no edit here."""
    words = _STEP_WORDS.get(tool)
    if words is None:
        return f"is working on it ({tool.replace('_', ' ')})…"
    return words(args, subjects or {})


def _quote(value: Any, default: str = "it") -> str:
    if not isinstance(value, str) or not value.strip():
        return default
    text = " ".join(value.split())
    return f"“{text[:60]}{'…' if len(text) > 60 else ''}”"


def feedback_blocks(answer_id: str) -> list[dict[str, Any]]:
    """Slack's feedback buttons (context_actions + feedback_buttons) for one answer; the
    value names the answer and the vote, and nothing else."""
    return [
        {
            "type": "context_actions",
            "block_id": f"feedback:{answer_id}"[:255],
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": FEEDBACK_ACTION,
                    "positive_button": {
                        "text": {"type": "plain_text", "text": "👍"},
                        "value": f"up:{answer_id}",
                        "accessibility_label": "This answer was helpful",
                    },
                    "negative_button": {
                        "text": {"type": "plain_text", "text": "👎"},
                        "value": f"down:{answer_id}",
                        "accessibility_label": "This answer was not helpful",
                    },
                }
            ],
        }
    ]


def first_status(surface: AgentSurface, channel: str, thread_ts: str) -> None:
    """ "is thinking…" as soon as a question is taken, before anything heavy loads; a
    workspace without the agent surface refuses it, which changes nothing."""
    try:
        surface.set_status(channel, thread_ts, THINKING)
    except Exception as exc:
        logger.info("status unavailable", extra={"error": type(exc).__name__})


class Stream(Protocol):
    @property
    def ts(self) -> str | None: ...
    def append(self, text: str) -> None: ...
    def flush(self) -> None: ...
    def append_chunks(self, chunks: list[dict[str, Any]]) -> None: ...
    def stop(
        self,
        blocks: list[dict[str, Any]] | None = None,
        chunks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None: ...


# Slack's task_update statuses (chat.appendStream chunks).
TASK_RUNNING, TASK_DONE, TASK_FAILED = "in_progress", "complete", "error"
_TASK_TITLE_MAX = 150


def task_title(status_line: str) -> str:
    """A task card's title from a step's status words: "is searching your mail for “x”…"
    becomes "Searching your mail for “x”"."""
    words = status_line.removeprefix("is ").rstrip("…").strip() or "Working"
    words = words[0].upper() + words[1:]
    return words if len(words) <= _TASK_TITLE_MAX else words[: _TASK_TITLE_MAX - 1] + "…"


def task_chunk(task_id: str, title: str, status: str) -> dict[str, Any]:
    return {"type": "task_update", "id": task_id, "title": title, "status": status}


class AgentSurface(Protocol):
    """Slack's agent surface (SlackChat implements it)."""

    def set_status(self, channel_id: str, thread_ts: str, status: str) -> None: ...
    def set_title(self, channel_id: str, thread_ts: str, title: str) -> None: ...
    def set_suggested_prompts(
        self, channel_id: str, prompts: list[dict[str, str]], *, thread_ts: str | None = None, title: str | None = None
    ) -> None: ...
    def start_stream(
        self, channel: str, thread_ts: str, *, user_id: str, team_id: str, buffer_size: int = ...
    ) -> Stream: ...
    def stop_stream(self, channel: str, ts: str) -> bool: ...


class TurnView:
    """One turn's presence in Slack. `status` and `token` never raise; `close` ends the
    stream and the status whatever happened (call it in a finally)."""

    def __init__(
        self,
        surface: AgentSurface,
        *,
        channel: str,
        thread_ts: str,
        user_id: str,
        team_id: str,
        stream: bool,
        on_stream_started: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = STATUS_REFRESH_SECONDS,
    ):
        self._surface = surface
        self._channel, self._thread_ts = channel, thread_ts
        self._user_id, self._team_id = user_id, team_id
        self._streaming = stream  # False: no stream this turn (a redelivery, or it broke)
        self._on_stream_started = on_stream_started
        self._stream: Stream | None = None
        self._announced = False  # on_stream_started called
        self._streamed = ""  # what the model said, as it said it
        # What Slack is given: the same with every link inert (Slack renders a stream's
        # markdown_text as Markdown, where `[label](url)` would be live).
        self._inert = InertStream()
        self._shown = 0  # characters given to Slack
        self._open_tasks: dict[str, str] = {}  # task id -> title, shown in progress
        self._spoken = ""
        self._clock = clock
        self._last_flush = 0.0
        self._status = ""
        self._status_works = True
        self._lock = threading.Lock()
        self._stop_refresh = threading.Event()
        self._refresh_seconds = refresh_seconds
        self._refresher: threading.Thread | None = None

    @property
    def stream_ts(self) -> str | None:
        return self._stream.ts if self._stream is not None else None

    @property
    def left_open(self) -> bool:
        """True when ending the stream failed: it may still be open in Slack."""
        return getattr(self, "_left_open", False)

    @property
    def streamed(self) -> str:
        return self._streamed

    # -- status ------------------------------------------------------------------------
    def status(self, text: str) -> None:
        with self._lock:
            if not self._status_works or text == self._status:
                return
            self._status = text
        self._send_status(text)
        if text and self._refresher is None:
            self._refresher = threading.Thread(target=self._refresh, name="status-refresh", daemon=True)
            self._refresher.start()

    def title(self, text: str) -> None:
        """The thread's title from the user's first request (agent surface only)."""
        words = " ".join(text.split())
        if not words:
            return
        try:
            self._surface.set_title(self._channel, self._thread_ts, words[:80])
        except Exception as exc:
            logger.info("no thread title", extra={"error": type(exc).__name__})

    def _send_status(self, text: str) -> None:
        try:
            self._surface.set_status(self._channel, self._thread_ts, text)
            if text:
                metrics.add_metric(name="StatusUpdates", unit="Count", value=1)
        except Exception as exc:
            # A workspace without the agent surface: the placeholder or stream says enough.
            self._status_works = False
            logger.info("status unavailable", extra={"error": type(exc).__name__})

    def _refresh(self) -> None:
        while not self._stop_refresh.wait(self._refresh_seconds):
            with self._lock:
                text = self._status if self._status_works else ""
            if text:
                self._send_status(text)

    # -- stream ------------------------------------------------------------------------
    def token(self, text: str) -> None:
        if not text or not self._streaming:
            return
        shown = self._inert.feed(text)
        self._streamed += text
        if self._shown + len(shown) > _STREAM_MAX_CHARS:
            self._break_stream("too long")
            return
        if not shown:
            return  # held back until what it may be part of (a link, a URL) is complete
        try:
            stream = self._open()
            first = not self._shown
            stream.append(shown)
            self._shown += len(shown)
            now = self._clock()
            if first or now - self._last_flush >= STREAM_FLUSH_SECONDS:
                stream.flush()
                self._last_flush = now
            self._announce(stream)
        except Exception as exc:
            self._break_stream(type(exc).__name__)

    def task(self, task_id: str, title: str, status: str) -> None:
        """A tool step as a task card in the streamed reply: in progress, then complete or
        error. The reply starts with the first card, so the user sees the work before the
        words. Never raises; nothing once the stream is given up."""
        if not self._streaming or not task_id:
            return
        try:
            stream = self._open()
            self._show_held(stream)
            if self._streamed and not self._streamed.endswith("\n"):
                # Words the model said before this step end their paragraph.
                stream.append("\n\n")
                self._streamed += "\n\n"
                self._inert.feed("\n\n")
            stream.append_chunks([task_chunk(task_id, title, status)])
            if status == TASK_RUNNING:
                self._open_tasks[task_id] = title
            else:
                self._open_tasks.pop(task_id, None)
            self._last_flush = self._clock()
            self._announce(stream)
        except Exception as exc:
            self._break_stream(type(exc).__name__)

    def _show_held(self, stream: Stream) -> None:
        """What the model said that was held back (a word, a link being written) goes out."""
        rest = self._inert.end()
        if rest:
            stream.append(rest)
            self._shown += len(rest)

    def end_task(self, task_id: str, *, ok: bool) -> None:
        """The card of a step shown in progress turns complete (or error)."""
        title = self._open_tasks.get(task_id)
        if title is not None:
            self.task(task_id, title, TASK_DONE if ok else TASK_FAILED)

    def _open(self) -> Stream:
        if self._stream is None:
            self._stream = self._surface.start_stream(
                self._channel,
                self._thread_ts,
                user_id=self._user_id,
                team_id=self._team_id,
                buffer_size=STREAM_BUFFER_CHARS,
            )
        return self._stream

    def _announce(self, stream: Stream) -> None:
        # Once Slack has the message: recorded at once, so a redelivery edits it.
        if not self._announced and stream.ts is not None:
            self._announced = True
            metrics.add_metric(name="StreamedAnswers", unit="Count", value=1)
            self._on_stream_started(stream.ts)

    def _unfinished_tasks(self, status: str) -> list[dict[str, Any]]:
        # Steps still shown in progress when the stream ends: done when the turn ended well
        # (a send waiting for Approve has no tool result yet), failed when it did not.
        unfinished = [task_chunk(i, title, status) for i, title in self._open_tasks.items()]
        self._open_tasks.clear()
        return unfinished

    def _break_stream(self, reason: str) -> None:
        # From here the answer goes by chat.update of the stream's message (or a post).
        logger.info("stream given up; the answer will be posted whole", extra={"reason": reason})
        metrics.add_metric(name="StreamFallbacks", unit="Count", value=1)
        self._streaming = False

    def spoke(self, messages: list[str]) -> None:
        """What the model said this turn, message by message, once the run ended."""
        self._spoken = " ".join(messages)

    def finish(self, answer: str, blocks: list[dict[str, Any]], metadata: dict[str, Any] | None = None) -> bool:
        """End the stream with `blocks` under it (and `metadata`, the mark that says which
        turn it answers); True if the streamed text is the whole answer (nothing more to
        post), False if the caller must put `answer` in place."""
        stream, self._stream_done = self._stream, True
        if stream is None:
            return False
        # Complete when the stream holds exactly what the model said this turn (words it
        # said before a tool step, then the answer), ending with the answer.
        said = _words(self._spoken or answer)
        complete = bool(said) and self._streaming and _words(self._streamed) == said and said.endswith(_words(answer))
        try:
            if self._streaming:
                self._show_held(stream)
            stream.stop(
                blocks=blocks if complete else None,
                chunks=self._unfinished_tasks(TASK_DONE) or None,
                metadata=metadata,
            )
        except Exception as exc:
            self._left_open = True  # Slack may still show it streaming: the caller closes it
            self._break_stream(type(exc).__name__)
            return False
        return complete

    def close(self) -> None:
        """Stop the refresher, close a stream still open (the model or Gmail failed
        mid-answer), clear the status. Never raises."""
        self._stop_refresh.set()
        if self._stream is not None and not getattr(self, "_stream_done", False):
            self._stream_done = True
            # A stream never started (chat.startStream failed, or nothing was flushed)
            # is left alone: stopping it would start one, a stray half-message.
            if self._stream.ts is not None:
                with contextlib.suppress(Exception):
                    self._stream.stop(chunks=self._unfinished_tasks(TASK_FAILED) or None)
        with self._lock:
            was = self._status
            self._status = ""
        if was and self._status_works:
            with contextlib.suppress(Exception):
                self._surface.set_status(self._channel, self._thread_ts, "")


def _words(text: str) -> str:
    return " ".join(text.split())


def answer_pieces(answer: str) -> list[str]:
    return split_message(to_mrkdwn(answer) or "I have nothing to add.")


def with_blocks(text: str, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`text` as section blocks (Slack shows blocks instead of text when both are given)
    followed by `extra`."""
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in split_message(text, 3000)]
    return [*sections, *extra]
