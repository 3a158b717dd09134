"""The Slack emulator, driven through the real slack_sdk.WebClient."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from infra.local.emulators.slack import PostedMessage, SlackEmulator

TOKEN = "xoxb-local-test-token"
DM = "D0ALICE"
USER = "U0ALICE"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(bot_token=TOKEN)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def client(slack: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url)


def _http(slack: SlackEmulator, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(slack.url + path, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the local emulator
        return json.loads(response.read())


def test_auth_test_names_the_bot(slack: SlackEmulator, client: WebClient) -> None:
    response = client.auth_test()
    assert response["user_id"] == "U0MAILBOT"
    assert response["team_id"] == "T0LOCAL"
    assert response["bot_id"] == "B0MAILBOT"
    assert response["url"].startswith("https://")


def test_post_message_and_read_it_back(slack: SlackEmulator, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = client.chat_postMessage(channel=DM, text="hello", blocks=blocks)
    second = client.chat_postMessage(channel=DM, text="again")

    assert first["ok"] and first["channel"] == DM
    assert first["message"]["text"] == "hello" and first["message"]["user"] == "U0MAILBOT"
    assert first["message"]["blocks"] == blocks
    assert float(second["ts"]) > float(first["ts"])  # unique and increasing
    assert [m.text for m in slack.messages(channel=DM)] == ["hello", "again"]
    stored = slack.messages(channel=DM)[0]
    assert stored == PostedMessage(channel=DM, ts=first["ts"], text="hello", blocks=blocks)
    # The call log keeps the decoded arguments, blocks as a list.
    call = slack.calls("chat.postMessage")[0]
    assert call["args"]["blocks"] == blocks and call["ok"] is True and call["error"] is None


def test_post_message_errors(slack: SlackEmulator, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as missing_text:
        client.api_call("chat.postMessage", json={"channel": DM, "text": ""})
    assert missing_text.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as missing_channel:
        client.api_call("chat.postMessage", json={"text": "hi"})
    assert missing_channel.value.response["error"] == "channel_not_found"
    broken = urllib.request.Request(  # noqa: S310 - the local emulator
        slack.api_url + "chat.postMessage",
        data=b"{not json",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(broken, timeout=5) as response:  # noqa: S310
        assert json.loads(response.read()) == {"ok": False, "error": "invalid_json"}
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("chat.teleport", params={"channel": DM})
    assert unknown.value.response["error"] == "unknown_method"


def test_thread_replies_are_filtered_by_thread(slack: SlackEmulator, client: WebClient) -> None:
    parent_ts = "1732450000.000100"  # the user's message, which the bot did not post
    client.chat_postMessage(channel=DM, text="top level")
    reply = client.chat_postMessage(channel=DM, text="in thread", thread_ts=parent_ts)

    assert reply["message"]["thread_ts"] == parent_ts
    in_thread = slack.messages(channel=DM, thread_ts=parent_ts)
    assert [m.text for m in in_thread] == ["in thread"]
    assert [m.thread_ts for m in slack.messages(channel=DM)] == [None, parent_ts]


def test_update_and_delete(slack: SlackEmulator, client: WebClient) -> None:
    blocks = [{"type": "actions", "elements": []}]
    posted = client.chat_postMessage(channel=DM, text="Send this?", blocks=blocks)
    updated = client.chat_update(channel=DM, ts=posted["ts"], text="Sent.", blocks=[])

    assert updated["text"] == "Sent."
    [message] = slack.messages(channel=DM)
    assert (message.text, message.blocks, message.edits) == ("Sent.", [], 1)

    client.chat_delete(channel=DM, ts=posted["ts"])
    assert slack.messages(channel=DM) == []
    with pytest.raises(SlackApiError) as gone:
        client.chat_update(channel=DM, ts=posted["ts"], text="again")
    assert gone.value.response["error"] == "message_not_found"


def test_ephemeral_message(slack: SlackEmulator, client: WebClient) -> None:
    response = client.chat_postEphemeral(channel="C0GENERAL", user=USER, text="Let's talk in DM")
    [message] = slack.messages(channel="C0GENERAL")
    assert message.ts == response["message_ts"]
    assert message.ephemeral and message.user == USER
    with pytest.raises(SlackApiError) as no_user:
        client.api_call("chat.postEphemeral", json={"channel": "C0GENERAL", "text": "x"})
    assert no_user.value.response["error"] == "user_not_found"


def test_reactions(slack: SlackEmulator, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=DM, text="hi")
    client.reactions_add(channel=DM, timestamp=posted["ts"], name="eyes")
    with pytest.raises(SlackApiError) as twice:
        client.reactions_add(channel=DM, timestamp=posted["ts"], name="eyes")
    assert twice.value.response["error"] == "already_reacted"
    assert slack.messages(channel=DM)[0].reactions == ["eyes"]
    client.reactions_remove(channel=DM, timestamp=posted["ts"], name="eyes")
    assert slack.messages(channel=DM)[0].reactions == []
    # A reaction on the user's own message (not posted by the bot) is kept too.
    client.reactions_add(channel=DM, timestamp="1732450000.000100", name="white_check_mark")
    assert slack.reactions(DM, "1732450000.000100") == ["white_check_mark"]


def test_conversations_open_and_users_info(slack: SlackEmulator, client: WebClient) -> None:
    first = client.conversations_open(users=USER)
    second = client.conversations_open(users=[USER])
    assert first["channel"]["id"].startswith("D")
    assert second["channel"]["id"] == first["channel"]["id"]
    assert second["already_open"] is True
    assert client.conversations_open(users="U0BOB")["channel"]["id"] != first["channel"]["id"]

    slack.add_user(USER, name="alice", real_name="Alice Example", email="alice@example.org")
    info = client.users_info(user=USER)
    assert info["user"]["profile"]["email"] == "alice@example.org"
    assert client.users_info(user="U0OTHER")["user"]["id"] == "U0OTHER"
    with pytest.raises(SlackApiError) as bad:
        client.users_info(user="nobody")
    assert bad.value.response["error"] == "user_not_found"


def test_assistant_thread_status(slack: SlackEmulator, client: WebClient) -> None:
    client.assistant_threads_setStatus(channel_id=DM, thread_ts="1732450000.000100", status="is thinking...")
    assert slack.thread_status(DM, "1732450000.000100") == "is thinking..."
    assert slack.calls("assistant.threads.setStatus")[0]["args"]["status"] == "is thinking..."


@pytest.mark.parametrize(
    ("token", "error"),
    [("xoxb-wrong", "invalid_auth"), (None, "not_authed")],
)
def test_token_is_checked(slack: SlackEmulator, token: str | None, error: str) -> None:
    client = WebClient(token=token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as failure:
        client.chat_postMessage(channel=DM, text="hi")
    assert failure.value.response["error"] == error
    assert slack.messages() == []
    assert slack.calls()[0]["error"] == error


def test_rate_limit_is_retried_by_slack_sdk(slack: SlackEmulator) -> None:
    client = WebClient(token=TOKEN, base_url=slack.api_url, retry_handlers=[RateLimitErrorRetryHandler()])
    slack.fail_next("chat.postMessage", retry_after=0)

    response = client.chat_postMessage(channel=DM, text="after the limit")

    assert response["ok"]
    calls = slack.calls("chat.postMessage")
    assert [(c["ok"], c["error"]) for c in calls] == [(False, "ratelimited"), (True, None)]
    assert [m.text for m in slack.messages()] == ["after the limit"]


def test_rate_limit_without_retry_handler_surfaces_retry_after(slack: SlackEmulator, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel=DM, text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"


def test_server_error_is_retried_by_slack_sdk(slack: SlackEmulator) -> None:
    handler = ServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.01))
    client = WebClient(token=TOKEN, base_url=slack.api_url, retry_handlers=[handler])
    slack.fail_next("chat.update", status=503)
    posted = client.chat_postMessage(channel=DM, text="v1")

    client.chat_update(channel=DM, ts=posted["ts"], text="v2")

    assert [c["ok"] for c in slack.calls("chat.update")] == [False, True]
    assert slack.messages()[0].text == "v2"


def test_injected_api_error_and_times(slack: SlackEmulator, client: WebClient) -> None:
    slack.fail_next("reactions.add", error="ratelimited", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as failure:
            client.reactions_add(channel=DM, timestamp="1.000001", name="eyes")
        assert failure.value.response.status_code == 200
        assert failure.value.response["error"] == "ratelimited"
    assert client.reactions_add(channel=DM, timestamp="1.000001", name="eyes")["ok"]


def test_streaming_methods_concatenate_text(slack: SlackEmulator, client: WebClient) -> None:
    thread_ts = "1732450000.000100"
    started = client.chat_startStream(channel=DM, thread_ts=thread_ts, markdown_text="Hello, ")
    assert slack.messages()[0].streaming
    client.chat_appendStream(channel=DM, ts=started["ts"], markdown_text="wor")
    client.chat_appendStream(channel=DM, ts=started["ts"], markdown_text="ld")
    stopped = client.chat_stopStream(channel=DM, ts=started["ts"], markdown_text="!")

    assert stopped["message"]["text"] == "Hello, world!"
    [message] = slack.messages(channel=DM, thread_ts=thread_ts)
    assert (message.text, message.ts, message.streaming) == ("Hello, world!", started["ts"], False)
    with pytest.raises(SlackApiError) as closed:
        client.chat_appendStream(channel=DM, ts=started["ts"], markdown_text="late")
    assert closed.value.response["error"] == "message_not_in_streaming_state"


def test_chat_stream_helper(slack: SlackEmulator, client: WebClient) -> None:
    # slack_sdk's ChatStream buffers text and sends it as markdown_text chunks.
    streamer = client.chat_stream(
        channel=DM,
        thread_ts="1732450000.000100",
        recipient_team_id="T0LOCAL",
        recipient_user_id=USER,
        buffer_size=4,
    )
    for piece in ["Three ", "unread ", "emails", "."]:
        streamer.append(markdown_text=piece)
    streamer.stop()

    [message] = slack.messages(channel=DM)
    assert message.text == "Three unread emails."
    assert not message.streaming
    methods = [c["method"] for c in slack.calls()]
    assert methods[0] == "chat.startStream" and methods[-1] == "chat.stopStream"


def test_task_chunks_become_cards_on_the_streamed_message(slack: SlackEmulator, client: WebClient) -> None:
    from slack_sdk.models.messages.chunk import TaskUpdateChunk

    streamer = client.chat_stream(
        channel=DM, thread_ts="1732450000.000100", buffer_size=64, task_display_mode="timeline"
    )
    streamer.append(chunks=[TaskUpdateChunk(id="t1", title="Searching your mail", status="in_progress")])
    streamer.append(markdown_text="Found it. ")
    streamer.append(chunks=[TaskUpdateChunk(id="t1", title="Searching your mail", status="complete")])
    streamer.stop(markdown_text="Done.")

    [message] = slack.messages(channel=DM)
    assert message.text == "Found it. Done." and not message.streaming
    assert message.tasks == [{"id": "t1", "title": "Searching your mail", "status": "complete"}]


@pytest.mark.parametrize(
    "chunk",
    [
        {"type": "task_update", "id": "t1", "title": "Reading", "status": "done"},  # not a status Slack knows
        {"type": "task_update", "id": "", "title": "Reading", "status": "complete"},
        {"type": "task_update", "id": "t1", "status": "complete"},
        {"type": "task_update", "id": "t1", "title": "Reading", "status": "complete", "output": "x" * 257},
        {"type": "task_update", "id": "t1", "title": "Reading", "status": "complete", "sources": [{"url": 1}]},
        {"type": "plan_update"},
        {"type": "markdown_text"},
        {"type": "thinking", "text": "hm"},
        "just text",
    ],
)
def test_chunks_breaking_slacks_rules_are_refused_and_change_nothing(
    slack: SlackEmulator, client: WebClient, chunk: Any
) -> None:
    started = client.chat_startStream(channel=DM, thread_ts="1732450000.000100", markdown_text="Hi")
    with pytest.raises(SlackApiError) as refused:
        client.chat_appendStream(
            channel=DM, ts=started["ts"], chunks=[{"type": "markdown_text", "text": " there"}, chunk]
        )
    assert refused.value.response["error"] == "invalid_chunks"
    [message] = slack.messages(channel=DM)
    assert (message.text, message.tasks, message.streaming) == ("Hi", [], True)


def test_a_stream_in_a_dm_must_be_a_reply_and_its_display_mode_known(slack: SlackEmulator, client: WebClient) -> None:
    for args in ({"markdown_text": "Hi"}, {"thread_ts": "1732450000.000100", "task_display_mode": "cards"}):
        with pytest.raises(SlackApiError) as refused:
            client.api_call("chat.startStream", json={"channel": DM, **args})
        assert refused.value.response["error"] == "invalid_arguments"
    assert slack.messages() == []


def test_wait_for_messages(slack: SlackEmulator, client: WebClient) -> None:
    threading.Timer(0.1, lambda: client.chat_postMessage(channel=DM, text="late")).start()
    assert [m.text for m in slack.wait_for_messages(1, channel=DM, timeout=3)] == ["late"]

    started = time.monotonic()
    with pytest.raises(AssertionError, match="expected at least 2"):
        slack.wait_for_messages(2, channel=DM, timeout=0.2)
    assert time.monotonic() - started < 2


def test_emulator_http_endpoints(slack: SlackEmulator, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=DM, text="hi", thread_ts="1.000001")
    client.chat_postMessage(channel="D0BOB", text="other")

    messages = _http(slack, "GET", f"_emulator/messages?channel={DM}&thread_ts=1.000001")["messages"]
    assert [(m["text"], m["ts"]) for m in messages] == [("hi", posted["ts"])]
    calls = _http(slack, "GET", "_emulator/calls?method=chat.postMessage")["calls"]
    assert [c["args"]["channel"] for c in calls] == [DM, "D0BOB"]

    assert _http(slack, "POST", "_emulator/faults", {"method": "auth.test", "error": "account_inactive"})["ok"]
    with pytest.raises(SlackApiError) as injected:
        client.auth_test()
    assert injected.value.response["error"] == "account_inactive"

    assert _http(slack, "POST", "_emulator/reset", {})["ok"]
    assert slack.messages() == [] and slack.calls() == []
    assert _http(slack, "GET", "_emulator/messages")["messages"] == []


def test_form_encoded_requests_decode_json_fields(slack: SlackEmulator, client: WebClient) -> None:
    # Slack also accepts blocks as a JSON string in a form body, and the token as a form field.
    blocks = [{"type": "divider"}]
    client.api_call("chat.postMessage", params={"channel": DM, "text": "t", "blocks": json.dumps(blocks)})
    assert slack.messages()[0].blocks == blocks
    form = urllib.parse.urlencode({"token": TOKEN}).encode()
    with urllib.request.urlopen(slack.api_url + "auth.test", data=form, timeout=5) as response:  # noqa: S310
        assert json.loads(response.read())["ok"] is True
    assert "token" not in slack.calls("auth.test")[0]["args"]


def _modal(**extra: Any) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": "Edit email"}, "blocks": [], **extra}


def test_views_open_takes_a_fresh_trigger_once_and_views_update_replaces_the_view(
    slack: SlackEmulator, client: WebClient
) -> None:
    trigger = f"{int(time.time() * 1000)}.1.abc"
    opened = client.views_open(trigger_id=trigger, view=_modal(private_metadata="m"))
    view_id = opened["view"]["id"]
    with pytest.raises(SlackApiError) as again:
        client.views_open(trigger_id=trigger, view=_modal())
    assert again.value.response["error"] == "exchanged_trigger_id"
    stale = f"{int((time.time() - 4) * 1000)}.2.abc"
    with pytest.raises(SlackApiError) as expired:
        client.views_open(trigger_id=stale, view=_modal())
    assert expired.value.response["error"] == "expired_trigger_id"
    field = {"type": "input", "block_id": "to", "label": {"type": "plain_text", "text": "To"}}
    field["element"] = {"type": "plain_text_input", "action_id": "to"}
    with pytest.raises(SlackApiError) as no_submit:
        client.views_update(view_id=view_id, view=_modal(blocks=[field]))
    assert no_submit.value.response["error"] == "invalid_arguments"  # inputs need a submit button
    client.views_update(view_id=view_id, view=_modal(blocks=[field], submit={"type": "plain_text", "text": "Save"}))
    assert slack.views()[view_id]["blocks"] == [field]
    with pytest.raises(SlackApiError) as missing:
        client.views_update(view_id="VNOPE", view=_modal())
    assert missing.value.response["error"] == "not_found"


def test_a_section_over_slacks_text_limit_is_refused(slack: SlackEmulator, client: WebClient) -> None:
    too_long = [{"type": "section", "text": {"type": "plain_text", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="D1", text="t", blocks=too_long)
    assert refused.value.response["error"] == "invalid_blocks"


# -- Sign in with Slack (OpenID Connect) ---------------------------------------------------
REDIRECT = "https://mailroom.example/auth/slack/callback"


def authorize_url(slack: SlackEmulator, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "scope": "openid profile",
        "client_id": slack.client_id,
        "state": "s1",
        "redirect_uri": REDIRECT,
        **overrides,
    }
    return f"{slack.oidc_authorize_url}?{urllib.parse.urlencode(params)}"


def code_from(location: str) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def test_sign_in_with_slack_names_the_signed_in_user_through_slack_sdk(slack: SlackEmulator):
    slack.add_user(USER, name="alice", real_name="Alice Liddell")
    slack.sign_in_as(USER)
    location = slack.authorize(authorize_url(slack))
    assert location.startswith(REDIRECT + "?")
    anonymous = WebClient(base_url=slack.api_url)
    token = anonymous.openid_connect_token(
        client_id=slack.client_id, client_secret=slack.client_secret, code=code_from(location), redirect_uri=REDIRECT
    )
    assert token["token_type"] == "Bearer" and str(token["access_token"]).startswith("xoxp-")
    header, claims, signature = str(token["id_token"]).split(".")
    assert header and claims and signature == ""
    info = WebClient(token=str(token["access_token"]), base_url=slack.api_url).openid_connect_userInfo()
    assert info["sub"] == USER and info["https://slack.com/user_id"] == USER
    assert info["https://slack.com/team_id"] == slack.team_id and info["name"] == "Alice Liddell"
    assert "email" not in info.data  # not asked for


def test_nobody_signed_in_is_access_denied(slack: SlackEmulator):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(slack.authorize(authorize_url(slack))).query)
    assert query == {"error": ["access_denied"], "state": ["s1"]}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_secret": "wrong"}, "bad_client_secret"),
        ({"client_id": "0.0"}, "invalid_client_id"),
        ({"redirect_uri": "https://elsewhere.example/cb"}, "bad_redirect_uri"),
        ({"code": "made-up"}, "invalid_code"),
    ],
)
def test_the_code_exchange_refuses_like_slack(slack: SlackEmulator, change: dict[str, str], error: str):
    slack.sign_in_as(USER)
    args = {
        "client_id": slack.client_id,
        "client_secret": slack.client_secret,
        "code": code_from(slack.authorize(authorize_url(slack))),
        "redirect_uri": REDIRECT,
    } | change
    with pytest.raises(SlackApiError) as refused:
        WebClient(base_url=slack.api_url).openid_connect_token(**args)
    assert refused.value.response["error"] == error


def test_a_code_works_once_and_a_made_up_token_has_no_identity(slack: SlackEmulator):
    slack.sign_in_as(USER)
    code = code_from(slack.authorize(authorize_url(slack)))
    anonymous = WebClient(base_url=slack.api_url)
    anonymous.openid_connect_token(
        client_id=slack.client_id, client_secret=slack.client_secret, code=code, redirect_uri=REDIRECT
    )
    with pytest.raises(SlackApiError) as again:
        anonymous.openid_connect_token(
            client_id=slack.client_id, client_secret=slack.client_secret, code=code, redirect_uri=REDIRECT
        )
    assert again.value.response["error"] == "invalid_code"
    for token, error in ((TOKEN, "invalid_auth"), ("xoxp-made-up", "invalid_auth")):
        with pytest.raises(SlackApiError) as refused:
            WebClient(token=token, base_url=slack.api_url).openid_connect_userInfo()
        assert refused.value.response["error"] == error
    with pytest.raises(SlackApiError) as unauthenticated:
        anonymous.openid_connect_userInfo()
    assert unauthenticated.value.response["error"] == "not_authed"


def test_the_authorize_page_refuses_a_bad_request(slack: SlackEmulator):
    for bad in ({"client_id": "0.0"}, {"scope": "chat:write"}, {"redirect_uri": "javascript:x"}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(authorize_url(slack, **bad), timeout=5)  # noqa: S310 (loopback)
        assert refused.value.code == 400


def test_history_and_replies_return_metadata_only_when_asked(slack: SlackEmulator, client: WebClient) -> None:
    mark = {"event_type": "mailroom_reply", "event_payload": {"event": "Ev1", "part": "0"}}
    top = client.chat_postMessage(channel=DM, text="top", metadata=mark)
    reply = client.chat_postMessage(channel=DM, text="reply", thread_ts="1795000000.000100", metadata=mark)
    client.chat_update(channel=DM, ts=reply["ts"], text="reply, edited")  # keeps the metadata

    plain = client.conversations_history(channel=DM)
    assert [m["text"] for m in plain["messages"]] == ["top"]  # replies are not in the history
    assert "metadata" not in plain["messages"][0]
    history = client.conversations_history(channel=DM, include_all_metadata=True)
    assert history["messages"][0]["metadata"] == mark
    thread = client.conversations_replies(channel=DM, ts="1795000000.000100", include_all_metadata=True)
    assert [(m["text"], m["metadata"]) for m in thread["messages"]] == [("reply, edited", mark)]
    assert top["ts"] != reply["ts"]


def test_history_window_and_pagination(slack: SlackEmulator, client: WebClient) -> None:
    posted = [client.chat_postMessage(channel=DM, text=f"m{i}")["ts"] for i in range(5)]
    after_first = client.conversations_history(channel=DM, oldest=posted[0])
    assert [m["text"] for m in after_first["messages"]] == ["m4", "m3", "m2", "m1"]  # newest first, exclusive
    inclusive = client.conversations_history(channel=DM, oldest=posted[0], latest=posted[2], inclusive=True)
    assert [m["text"] for m in inclusive["messages"]] == ["m2", "m1", "m0"]

    first = client.conversations_history(channel=DM, limit=2)
    assert first["has_more"] and [m["text"] for m in first["messages"]] == ["m4", "m3"]
    cursor = first["response_metadata"]["next_cursor"]
    second = client.conversations_history(channel=DM, limit=2, cursor=cursor)
    third = client.conversations_history(channel=DM, limit=2, cursor=second["response_metadata"]["next_cursor"])
    assert [m["text"] for m in second["messages"] + third["messages"]] == ["m2", "m1", "m0"]
    assert not third["has_more"] and third["response_metadata"]["next_cursor"] == ""


def test_history_and_replies_refuse_as_slack_does(slack: SlackEmulator, client: WebClient) -> None:
    client.chat_postMessage(channel=DM, text="x")
    cases = [
        (lambda: client.conversations_history(channel=DM, cursor="not-a-cursor"), "invalid_cursor"),
        (lambda: client.conversations_history(channel=DM, oldest="yesterday"), "invalid_ts_oldest"),
        (lambda: client.conversations_replies(channel=DM, ts="1795000000.000999"), "thread_not_found"),
        (lambda: client.api_call("conversations.history", json={}), "channel_not_found"),
        (
            lambda: client.chat_postMessage(channel=DM, text="x", metadata={"event_payload": {}}),
            "invalid_metadata_schema",
        ),
    ]
    for call, error in cases:
        with pytest.raises(SlackApiError) as refused:
            call()
        assert refused.value.response["error"] == error
