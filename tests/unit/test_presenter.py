"""The turn's view in Slack (mailroom.slack.presenter): statuses, stream, fallbacks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from infra.local.slack_requests import (
    app_home_opened_event,
    assistant_thread_started_event,
    feedback_press,
    interaction_body,
)
from mailroom.feedback import parse_feedback
from mailroom.slack.parsing import PROMPTS, parse_event_callback, parse_interaction
from mailroom.slack.presenter import (
    TASK_DONE,
    TASK_RUNNING,
    THINKING,
    TurnView,
    feedback_blocks,
    step_status,
    task_title,
)


class Refused(Exception):
    pass


class FakeStream:
    def __init__(self, surface: FakeSurface):
        self.surface, self.text, self.stopped, self.calls = surface, "", False, 0
        self.ts: str | None = None
        self.blocks: list[dict[str, Any]] | None = None
        self.chunks: list[dict[str, Any]] = []  # task cards and the like, in order

    def append(self, text: str) -> None:
        if self.surface.expire_after is not None and self.calls >= self.surface.expire_after:
            raise Refused("message_not_in_streaming_state")
        self.text += text

    def flush(self) -> None:
        self.calls += 1
        self.ts = self.ts or "1.000001"

    def append_chunks(self, chunks: list[dict[str, Any]]) -> None:
        self.flush()
        self.chunks.extend(chunks)

    def stop(
        self,
        blocks: list[dict[str, Any]] | None = None,
        chunks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if self.surface.expire_after is not None and self.calls > self.surface.expire_after:
            raise Refused("message_not_in_streaming_state")
        self.stopped, self.blocks = True, blocks
        self.chunks.extend(chunks or [])


class FakeSurface:
    def __init__(self, *, has_surface: bool = True, expire_after: int | None = None):
        self.has_surface, self.expire_after = has_surface, expire_after
        self.statuses: list[str] = []
        self.titles: list[str] = []
        self.streams: list[FakeStream] = []
        self.refreshed = threading.Event()

    def set_status(self, channel_id: str, thread_ts: str, status: str) -> None:
        if not self.has_surface:
            raise Refused("missing_scope")
        if status and status in self.statuses:
            self.refreshed.set()
        self.statuses.append(status)

    def set_title(self, channel_id: str, thread_ts: str, title: str) -> None:
        self.titles.append(title)

    def set_suggested_prompts(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("not used by a turn")

    def start_stream(self, channel: str, thread_ts: str, **kwargs: Any) -> FakeStream:
        self.streams.append(FakeStream(self))
        return self.streams[-1]

    def stop_stream(self, channel: str, ts: str) -> bool:
        return False


def view(surface: FakeSurface, *, stream: bool = True, **kwargs: Any) -> tuple[TurnView, list[str]]:
    started: list[str] = []
    made = TurnView(
        surface,
        channel="D0ADA",
        thread_ts="1795.000100",
        user_id="U0ADA",
        team_id="T0LOCAL",
        stream=stream,
        on_stream_started=started.append,
        **kwargs,
    )
    return made, started


def test_each_tool_has_words_and_a_new_tool_gets_a_plain_default():
    assert step_status("search_emails", {"query": "invoices"}) == "is searching your mail for “invoices”…"
    assert step_status("read_email", {"message_id": "m1"}, {"m1": "Q3 numbers"}) == "is reading “Q3 numbers”…"
    assert step_status("read_email", {"message_id": "m9"}) == "is reading an email…"
    assert step_status("create_draft", {"reply_to_message_id": "m1"}) == "is drafting a reply…"
    assert step_status("archive_emails", {"ids": ["m1"]}) == "is working on it (archive emails)…"


def test_statuses_are_sent_once_each_refreshed_and_cleared_at_the_end():
    surface = FakeSurface()
    shown, _ = view(surface, refresh_seconds=0.05)
    shown.status(THINKING)
    shown.status(THINKING)
    shown.status("is searching your mail for “x”…")
    assert surface.refreshed.wait(5), "the status was never refreshed"
    shown.close()
    assert surface.statuses[:2] == [THINKING, "is searching your mail for “x”…"]
    assert surface.statuses[-1] == ""


def test_without_the_agent_surface_a_status_is_tried_once_and_nothing_fails():
    surface = FakeSurface(has_surface=False)
    shown, _ = view(surface)
    shown.status(THINKING)
    shown.status("is reading an email…")
    shown.close()
    assert surface.statuses == []


def test_the_stream_starts_at_the_first_token_and_is_recorded_at_once():
    surface = FakeSurface()
    shown, started = view(surface)
    for word in ("Alice ", "sent ", "you ", "the ", "Q3 numbers."):
        shown.token(word)
    assert started == ["1.000001"]
    answer = "Alice sent you the Q3 numbers."
    assert shown.finish(answer, feedback_blocks("Ev1")) is True
    [stream] = surface.streams
    assert stream.stopped and stream.blocks == feedback_blocks("Ev1")


def test_a_stream_that_expires_hands_the_answer_to_the_fallback():
    surface = FakeSurface(expire_after=1)
    shown, started = view(surface)
    for word in ("Alice ", "sent ", "you ", "the ", "Q3 numbers."):
        shown.token(word)
    assert started == ["1.000001"]
    assert shown.finish("Alice sent you the Q3 numbers.", feedback_blocks("Ev1")) is False
    assert shown.stream_ts == "1.000001"  # the message the fallback edits


def test_words_that_are_not_the_final_answer_are_replaced():
    surface = FakeSurface()
    shown, _ = view(surface)
    shown.token("Alice sent Alice sent you")  # a retried model call streamed twice
    assert shown.finish("Alice sent you", feedback_blocks("Ev1")) is False
    assert surface.streams[0].stopped and surface.streams[0].blocks is None


def test_a_redelivery_never_streams():
    surface = FakeSurface()
    shown, started = view(surface, stream=False)
    shown.token("Alice")
    assert surface.streams == [] and started == []
    assert shown.finish("Alice", []) is False


def test_close_stops_a_stream_left_open():
    surface = FakeSurface()
    shown, _ = view(surface)
    shown.token("Alice sent")
    shown.close()
    assert surface.streams[0].stopped


def test_close_never_starts_a_stream_that_slack_never_started():
    """chat.startStream failed: stopping the stream now would start one (slack-sdk's
    ChatStream.stop starts a stream without a ts), a stray half-message."""
    surface = FakeSurface()
    shown, _ = view(surface)

    def refused() -> None:
        raise Refused("internal_error")

    shown.token("Alice sent")
    [stream] = surface.streams
    stream.ts, stream.flush = None, refused  # type: ignore[method-assign]
    shown.close()
    assert not stream.stopped


def test_feedback_buttons_fit_slacks_limits():
    [block] = feedback_blocks("Ev" + "x" * 300)
    assert block["type"] == "context_actions" and len(block["block_id"]) <= 255
    [buttons] = block["elements"]
    assert buttons["type"] == "feedback_buttons"
    for side in ("positive_button", "negative_button"):
        assert buttons[side]["text"]["type"] == "plain_text" and len(buttons[side]["value"]) <= 2000


@pytest.mark.parametrize("side", ["positive_button", "negative_button"])
def test_a_feedback_press_parses_to_its_vote(side: str):
    value = feedback_blocks("Ev123")[0]["elements"][0][side]["value"]
    command = parse_interaction(
        interaction_body(feedback_press(value, message_ts="1.1", thread_ts="1795.000100")), "https://x"
    )
    assert command is not None and command.name == "answer_feedback"
    feedback = parse_feedback(command)
    assert feedback is not None
    assert (feedback.answer_id, feedback.vote) == ("Ev123", "up" if side == "positive_button" else "down")
    assert feedback.conversation_id == "T0LOCAL:D0ADA:1795.000100"


def test_openings_parse_to_the_prompts_command():
    opened = parse_event_callback(app_home_opened_event(), "https://x")
    assert opened is not None and opened.name == PROMPTS and opened.thread_ts is None
    started = parse_event_callback(assistant_thread_started_event("1795.000100"), "https://x")
    assert started is not None and started.name == PROMPTS and started.thread_ts == "1795.000100"


def test_a_task_title_is_the_step_in_the_users_words():
    assert task_title("is searching your mail for “invoices”…") == "Searching your mail for “invoices”"
    assert len(task_title("is reading " + "x" * 400 + "…")) <= 150


def test_each_step_is_a_task_card_that_starts_the_stream_and_ends_complete():
    surface = FakeSurface()
    shown, started = view(surface)
    shown.task("call_1", "Searching your mail for “x”", TASK_RUNNING)
    assert started == ["1.000001"], "the card starts the streamed reply, recorded at once"
    shown.end_task("call_1", ok=True)
    shown.end_task("call_unknown", ok=True)  # no card was shown for it: nothing to end
    shown.token("Alice sent it.")
    assert shown.finish("Alice sent it.", feedback_blocks("Ev1")) is True
    [stream] = surface.streams
    assert [(c["id"], c["status"]) for c in stream.chunks] == [("call_1", "in_progress"), ("call_1", TASK_DONE)]


def test_a_step_still_running_when_the_turn_fails_ends_as_an_error():
    surface = FakeSurface()
    shown, _ = view(surface)
    shown.task("call_1", "Reading an email", TASK_RUNNING)
    shown.token("Let me look.")
    shown.close()  # the tool raised: the turn failed
    [stream] = surface.streams
    assert stream.stopped and stream.chunks[-1] == {
        "type": "task_update",
        "id": "call_1",
        "title": "Reading an email",
        "status": "error",
    }


def test_a_redelivery_shows_no_task_cards():
    surface = FakeSurface()
    shown, started = view(surface, stream=False)
    shown.task("call_1", "Reading an email", TASK_RUNNING)
    assert surface.streams == [] and started == []


def test_words_said_before_a_step_stay_part_of_the_streamed_answer():
    surface = FakeSurface()
    shown, _ = view(surface)
    shown.token("Let me look in your mail.")
    shown.task("call_1", "Searching your mail", TASK_RUNNING)
    shown.end_task("call_1", ok=True)
    shown.token("Alice sent the Q3 numbers.")
    shown.spoke(["Let me look in your mail.", "Alice sent the Q3 numbers."])
    assert shown.finish("Alice sent the Q3 numbers.", feedback_blocks("Ev1")) is True
    assert surface.streams[0].text == "Let me look in your mail.\n\nAlice sent the Q3 numbers."


def test_a_streamed_preamble_without_the_answer_is_replaced():
    surface = FakeSurface()
    shown, _ = view(surface)
    shown.token("Let me prepare the email.")
    shown.spoke(["Let me prepare the email."])
    # Waiting for Approve: the answer is Mailroom's own words, which were not streamed.
    assert shown.finish("Here is the email. Check it.", []) is False


def test_a_step_waiting_for_approve_ends_complete_when_the_turn_ends_well():
    surface = FakeSurface()
    shown, _ = view(surface)
    shown.task("call_1", "Preparing the email for your approval", TASK_RUNNING)  # interrupted: no result
    assert shown.finish("Here is the email. Check it.", []) is False
    assert surface.streams[0].chunks[-1]["status"] == TASK_DONE
