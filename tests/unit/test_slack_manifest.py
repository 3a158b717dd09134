"""infra/slack-app-manifest.yaml asks Slack for what the code needs: no less, no more."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from infra.local.slack_requests import LOCAL_BOT_USER_ID, message_event
from infra.local.template import ROOT, Template
from mailroom.adapters import slack_chat
from mailroom.slack.parsing import parse_event_callback

MANIFEST: dict[str, Any] = yaml.safe_load((ROOT / "infra/slack-app-manifest.yaml").read_text())
TEMPLATE = Template.load()

# Bot event subscriptions Slack offers for a bot that is DMed or mentioned, and an
# event of each as Slack delivers it (type, channel_type).
SUBSCRIPTIONS: dict[str, dict[str, Any]] = {
    "message.im": {"type": "message", "channel_type": "im", "channel": "D0ADA"},
    "message.channels": {"type": "message", "channel_type": "channel", "channel": "C0GENERAL"},
    "message.groups": {"type": "message", "channel_type": "group", "channel": "G0PRIVATE"},
    "message.mpim": {"type": "message", "channel_type": "mpim", "channel": "G0MPIM"},
    "app_mention": {"type": "app_mention", "channel": "C0GENERAL", "text": f"<@{LOCAL_BOT_USER_ID}> hello"},
    "app_home_opened": {"type": "app_home_opened", "channel": "D0ADA", "tab": "messages"},
    "assistant_thread_started": {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": "U0ADA", "channel_id": "D0ADA", "thread_ts": "1795000000.000100"},
    },
    "assistant_thread_context_changed": {
        "type": "assistant_thread_context_changed",
        "assistant_thread": {"user_id": "U0ADA", "channel_id": "D0ADA", "thread_ts": "1795000000.000100"},
    },
}
# The bot scope each subscription needs.
EVENT_SCOPES = {
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.mpim": "mpim:history",
    "app_mention": "app_mentions:read",
    "app_home_opened": None,  # Slack: no scope needed
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
}
# The bot scope each Web API method the code calls needs (Slack's method reference).
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "conversations.open": "im:write",
    # A repeated delivery reads back what it posted in the DM (mailroom.reply_once).
    "conversations.history": "im:history",
    "conversations.replies": "im:history",
    "users.info": "users:read",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "assistant.threads.setStatus": "assistant:write",
    "assistant.threads.setSuggestedPrompts": "assistant:write",
    "assistant.threads.setTitle": "assistant:write",
    # Slack: "No scopes required" (the trigger id or view id is the permission).
    "views.open": None,
    "views.update": None,
}
# Kept on purpose although no call needs them today: the DM is the bot's home, and
# these let it see and open that conversation (im:read, im:write).
DM_SCOPES = {"im:read", "im:write"}


def bot_events() -> list[str]:
    return list(MANIFEST["settings"]["event_subscriptions"]["bot_events"])


def bot_scopes() -> list[str]:
    return list(MANIFEST["oauth_config"]["scopes"]["bot"])


def web_api_methods_called() -> set[str]:
    """Every `self._call("chat_postMessage", ...)` (and `self._call_unless(refusals,
    "views_open", ...)`) in the Slack adapter, as `chat.postMessage`; slack-sdk's
    `chat_stream` calls chat.startStream, chat.appendStream and chat.stopStream."""
    source = Path(slack_chat.__file__).read_text()
    tree = ast.parse(source)
    methods = {"chat.startStream", "chat.appendStream", "chat.stopStream"} if ".chat_stream(" in source else set()
    method_arg = {"_call": 0, "_call_unless": 1}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        position = method_arg.get(node.func.attr)
        if position is None or len(node.args) <= position:
            continue
        name = node.args[position]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            methods.add(name.value.replace("_", "."))
    return methods


def parses_to_a_command(subscription: str) -> bool:
    payload = message_event("hello")
    base = {k: v for k, v in payload["event"].items() if k != "channel_type"}
    payload["event"] = base | SUBSCRIPTIONS[subscription]
    return parse_event_callback(payload, "https://api.example") is not None


def test_it_subscribes_to_exactly_the_events_the_ingress_acts_on():
    acted_on = {name for name in SUBSCRIPTIONS if parses_to_a_command(name)}
    # The parser's contract (see parsing.py): DMs, mentions, and the openings of the DM.
    assert acted_on == {"message.im", "app_mention", "app_home_opened", "assistant_thread_started"}
    assert sorted(bot_events()) == sorted(acted_on)


def test_the_adapter_calls_the_chat_methods_the_scopes_are_for():
    assert web_api_methods_called() == {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "views.open",
        "conversations.history",
        "conversations.replies",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
        "assistant.threads.setStatus",
        "assistant.threads.setSuggestedPrompts",
        "assistant.threads.setTitle",
    }


def test_it_asks_for_exactly_the_scopes_the_code_needs():
    unknown = web_api_methods_called() - METHOD_SCOPES.keys()
    assert not unknown, f"add the scope of {unknown} to METHOD_SCOPES (and to the manifest)"
    needed = {METHOD_SCOPES[m] for m in web_api_methods_called()} - {None}
    needed |= {EVENT_SCOPES[e] for e in bot_events()} - {None}
    assert len(bot_scopes()) == len(set(bot_scopes())), "a scope is listed twice"
    assert set(bot_scopes()) == needed | DM_SCOPES


def test_nothing_uses_reactions_so_it_does_not_ask_for_them():
    package = ROOT / "layers/common/mailroom"
    uses_reactions = any(re.search(r"reactions[._](add|remove)", p.read_text()) for p in package.rglob("*.py"))
    assert ("reactions:write" in bot_scopes()) == uses_reactions


@pytest.mark.parametrize(
    ("setting", "output"),
    [("event_subscriptions", "SlackEventsUrl"), ("interactivity", "SlackInteractionsUrl")],
)
def test_request_urls_are_routes_of_the_ingress_and_say_which_output_to_paste(setting, output):
    url = urlsplit(MANIFEST["settings"][setting]["request_url"])
    routes = {(r.method, r.path): r.function for r in TEMPLATE.http_routes()}
    assert url.scheme == "https"
    assert routes.get(("POST", url.path)) == "IngressFunction"
    assert output in url.netloc
    # The output is the whole URL: same path, so pasting it keeps the route.
    assert TEMPLATE.body["Outputs"][output]["Value"]["Fn::Sub"].endswith(url.path)


def test_users_can_dm_the_bot_and_interactions_reach_it_over_http():
    features, settings = MANIFEST["features"], MANIFEST["settings"]
    assert MANIFEST["display_information"]["name"] == "Mailroom"
    assert len(MANIFEST["display_information"]["description"]) <= 140  # Slack's limit
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    assert features["bot_user"]["always_online"] is False
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_sign_in_with_slack_asks_for_what_the_link_flow_requests_and_comes_back_to_its_route():
    from mailroom.adapters.slack_oidc import SCOPES
    from mailroom.slack_sign_in import SLACK_CALLBACK_PATH

    assert MANIFEST["oauth_config"]["scopes"]["user"] == SCOPES.split()
    [redirect] = MANIFEST["oauth_config"]["redirect_urls"]
    assert urlsplit(redirect).path == SLACK_CALLBACK_PATH
    assert TEMPLATE.body["Outputs"]["SlackRedirectUrl"]["Value"]["Fn::Sub"].endswith(SLACK_CALLBACK_PATH)


def test_it_declares_the_agent_surface_the_code_uses():
    from mailroom.slack.prompts import LINKED, MAX_PROMPTS, NOT_LINKED

    features = MANIFEST["features"]
    # agent_view for Slack's agent surface; assistant_view for workspaces still on the
    # earlier assistant experience. Either needs assistant:write.
    assert features["agent_view"]["agent_description"]
    assert features["assistant_view"]["assistant_description"]
    assert "assistant:write" in bot_scopes()
    assert {"app_home_opened", "assistant_thread_started"} <= set(bot_events())
    assert len(LINKED) <= MAX_PROMPTS == 4 and len(NOT_LINKED) <= MAX_PROMPTS
