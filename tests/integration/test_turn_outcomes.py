"""A turn completes or leaves the conversation as it was, and runs once.

The worker in process against moto's server (checkpoints, turn records, rate limit)
and the emulators (Slack, Gmail, and an OpenAI emulator that refuses a history with
unanswered tool calls, as the real API does)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.openai import Call, Rule
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL, LOCAL_TEAM_ID, LOCAL_USER_ID
from mailroom.agent.checkpoints import TurnCachedSaver
from mailroom.agent.encrypted_memory import KmsEnvelopeCipher, encrypt_memory, owner_scope
from mailroom.agent.graph import build_graph
from mailroom.agent.runner import WORKING
from mailroom.agent.tools import gmail_tools
from tests.integration.harness import Harness, logged

ALICE = "What did Alice send me this week?"


@pytest.fixture(autouse=True)
def _slack_after_linking(agent: Harness) -> None:
    agent.slack.reset()  # what the tests count starts after Gmail was linked


def gmail(harness: Harness) -> GmailMailbox:
    assert harness.gmail is not None
    return harness.gmail


def bot_messages(harness: Harness) -> list[PostedMessage]:
    return harness.slack.messages(channel=LOCAL_DM_CHANNEL)


def refused_requests(harness: Harness) -> int:
    """Model requests the emulator refused (it answers 400 to unanswered tool calls)."""
    assert harness.openai is not None
    return len(harness.openai.requests) - len(harness.openai.decisions)


def memory(harness: Harness) -> Any:
    """The agent's memory as the worker opens it: encrypted for its owner (use within
    `owner_scope` of that owner)."""
    table = harness.deployment.physical("CheckpointsTable")
    return encrypt_memory(
        TurnCachedSaver(table_name=table), KmsEnvelopeCipher(harness.deployment.physical("TokensKey", "Arn"))
    )


def checkpoint_messages(harness: Harness, conversation_id: str) -> list[Any]:
    with owner_scope(LOCAL_TEAM_ID, LOCAL_USER_ID):
        found = memory(harness).get_tuple({"configurable": {"thread_id": conversation_id, "checkpoint_ns": ""}})
    return list(found.checkpoint["channel_values"].get("messages", [])) if found else []


def unanswered(messages: list[Any]) -> list[str | None]:
    answered = {getattr(m, "tool_call_id", None) for m in messages}
    return [c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls if c["id"] not in answered]


def test_after_a_gmail_outage_that_outlasts_every_retry_the_next_message_works(
    agent: Harness, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
):
    # The case: Gmail answers 500 through a whole turn (every client retry of
    # every delivery), the user is told, then Gmail is back.
    outage = agent.chat(ALICE)
    gmail(agent).fail_next("messages.list", 500, times=8)
    assert agent.deliver(outage, receive_count=1) is False, "a transient failure is retried by SQS"
    [placeholder] = bot_messages(agent)
    assert placeholder.text == WORKING
    assert agent.deliver(outage, receive_count=4) is False, "the last delivery goes on to the DLQ"
    [told] = bot_messages(agent)
    assert told.ts == placeholder.ts and "not answering" in told.text and outage.event_id in told.text
    assert checkpoint_messages(agent, outage.conversation_id) == [], "the failed turn saved nothing"
    assert "alice" not in logged(caplog, capsys).lower(), "the search query stays out of the logs"

    reply = agent.say(ALICE)
    assert "Notes from Tuesday" in reply.text
    assert unanswered(checkpoint_messages(agent, outage.conversation_id)) == []


def test_a_retry_after_an_outage_answers_in_the_same_placeholder(agent: Harness):
    question = agent.chat(ALICE)
    gmail(agent).fail_next("messages.list", 503, times=4)  # the first try and its 3 client retries
    assert agent.deliver(question) is False
    assert agent.deliver(question, receive_count=2) is True
    [answer] = bot_messages(agent)
    assert "Notes from Tuesday" in answer.text and answer.edits == 1
    messages = checkpoint_messages(agent, question.conversation_id)
    assert [type(m).__name__ for m in messages].count("HumanMessage") == 1
    assert unanswered(messages) == []


@pytest.fixture
def clumsy_model(agent: Harness) -> Harness:
    """The model gets the arguments wrong: too many results, recipients as a list."""
    assert agent.openai is not None
    agent.openai.script.rules[:0] = [
        Rule(user="everything", call=Call("search_emails", {"query": "from:alice SECRET-QUERY-7", "max_results": 50})),
        Rule(user="a list", call=Call("create_draft", {"to": ["bob@example.com"], "subject": "Hi", "body": "Hello"})),
        Rule(user="no such", call=Call("read_email", {"message_id": "18c0ffee00000000"})),
        Rule(result=r"^\s*Error", say=lambda conv: "The tool said: " + conv.results[-1].content),
    ]
    return agent


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        ("Search everything from Alice", "Error: invalid arguments for search_emails (max_results:"),
        ("Draft to a list of people", "Error: invalid arguments for create_draft (to:"),
        ("Read no such message", "Error: Gmail answered 404"),
    ],
)
def test_arguments_the_model_got_wrong_come_back_to_it_as_tool_messages(
    clumsy_model: Harness, ask: str, expected: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
):
    reply = clumsy_model.say(ask)
    assert "The tool said: " + expected in reply.text
    assert clumsy_model.say(ALICE).text.count("Notes from Tuesday") >= 1, "the conversation goes on"
    text = logged(caplog, capsys)
    assert "SECRET-QUERY-7" not in text and "bob@example.com" not in text


def test_a_conversation_saved_with_unanswered_tool_calls_is_repaired(agent: Harness):
    # What earlier versions left after a failed tool: a model message whose calls were never answered.
    conversation = agent.chat("first").conversation_id
    broken = build_graph(_model(), gmail_tools(), memory(agent))
    config: Any = {"configurable": {"thread_id": conversation}}
    call = {"id": "call_lost", "name": "search_emails", "args": {"query": "from:alice"}}
    with owner_scope(LOCAL_TEAM_ID, LOCAL_USER_ID):
        broken.update_state(
            config,
            {
                "messages": [
                    HumanMessage(content=ALICE, id="h-old"),
                    AIMessage(content="", id="a-old", tool_calls=[call]),
                ]
            },
            as_node="agent",
        )
    assert unanswered(checkpoint_messages(agent, conversation)) == ["call_lost"]

    reply = agent.say(ALICE)
    assert "Notes from Tuesday" in reply.text
    assert refused_requests(agent) == 0
    assert unanswered(checkpoint_messages(agent, conversation)) == []


def _model() -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", api_key="unused")  # type: ignore[arg-type]


def test_a_redelivery_after_slack_failed_posts_the_recorded_answer_without_running_again(agent: Harness):
    assert agent.openai is not None
    ask = agent.chat("Draft a reply to Bob saying Thursday works")
    agent.slack.fail_next("chat.update", status=503, times=3)  # the answer's edit and both client retries
    assert agent.deliver(ask) is False
    model_calls, drafts = len(agent.openai.requests), len(gmail(agent).drafts("ada@example.com"))
    assert drafts == 1

    assert agent.deliver(ask, receive_count=2) is True
    assert len(agent.openai.requests) == model_calls, "the agent did not run again"
    assert len(gmail(agent).drafts("ada@example.com")) == 1, "no second draft"
    [answer] = bot_messages(agent)  # the placeholder, edited; no second one
    assert "draft" in answer.text.lower() and answer.text != WORKING
    usage = agent.deployment.aws.client("dynamodb").scan(TableName=agent.deployment.physical("UsageTable"))["Items"]
    [counter] = [i for i in usage if i["pk"]["S"].startswith(f"chat#{LOCAL_TEAM_ID}#{LOCAL_USER_ID}#")]
    assert counter["turns"]["N"] == "1", "the rate limit counted the turn once"
    assert counter["events"]["SS"] == [ask.event_id], "it knows which event it counted (ids only)"
    # Slack is the record of what was posted (the placeholder's metadata), not a table.
    assert not [i for i in usage if i["pk"]["S"].startswith("turn#")]
    assert answer.metadata == {
        "event_type": "mailroom_reply",
        "event_payload": {"event_id": ask.event_id, "part": "placeholder"},
    }


def test_a_turn_retried_after_it_drafted_finds_its_draft_instead_of_making_another(agent: Harness):
    assert agent.openai is not None
    failures = [1, 1, 1]  # every try of the model call that follows the draft, in the first delivery

    def model_down_once_drafted(conv: Any) -> bool:
        if failures:
            failures.pop()
            raise RuntimeError("the model is down")  # the emulator answers 500
        return False

    agent.openai.script.rules.insert(0, Rule(tool="create_draft", when=model_down_once_drafted, say="never"))
    ask = agent.chat("Draft a reply to Bob saying Thursday works")
    assert agent.deliver(ask) is False
    assert len(gmail(agent).drafts("ada@example.com")) == 1
    assert checkpoint_messages(agent, ask.conversation_id) == [], "the failed turn saved nothing"

    assert agent.deliver(ask, receive_count=2) is True
    assert len(gmail(agent).drafts("ada@example.com")) == 1, "the retry found the draft it had made"
    [answer] = bot_messages(agent)
    assert "draft" in answer.text.lower()


def test_a_deleted_placeholder_does_not_stop_the_answer(agent: Harness):
    agent.slack.fail_next("chat.update", status=200, error="message_not_found")  # the user deleted it
    assert agent.deliver(agent.chat(ALICE)) is True
    [placeholder, answer] = bot_messages(agent)
    assert placeholder.text == WORKING, "(the emulator only said it was gone)"
    assert "Notes from Tuesday" in answer.text and answer.edits == 0


def test_an_empty_answer_still_replaces_the_placeholder(agent: Harness):
    """A model that ends its turn with no words (a refusal, an empty final message) must
    not leave "Working on it…" up forever."""
    assert agent.openai is not None
    agent.openai.script.rules.insert(0, Rule(user="say nothing", say=""))
    assert agent.deliver(agent.chat("say nothing at all")) is True
    [answer] = bot_messages(agent)
    assert answer.text != WORKING and answer.edits == 1
    assert "nothing to add" in answer.text
