from collections.abc import Iterator

import pytest

from infra.local.browser import connect_gmail
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack, StackOptions


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log = tmp_path_factory.mktemp("stack") / "functions.log"
    with LocalStack(StackOptions(log_path=log, retry_delay=1)) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_slack(stack: LocalStack) -> None:
    stack.wait_until_drained()
    assert stack.slack is not None
    stack.slack.reset()


@pytest.fixture(scope="module")
def linked(stack: LocalStack) -> Iterator[LocalStack]:
    """The stack with ada's Gmail linked for one test module, unlinked after it."""
    assert stack.google is not None and stack.slack is not None
    assert post_event(stack.url, message_event("auth")).status == 200
    stack.wait_until_drained()
    prompt = stack.slack.messages(channel=LOCAL_DM_CHANNEL)[-1]
    [url] = [e["url"] for b in prompt.blocks for e in b.get("elements", []) if "url" in e]
    status, _ = connect_gmail(url)
    assert status == 200
    stack.wait_until_drained()
    yield stack
    # The stack is shared by the e2e modules: leave it unlinked, as it started.
    assert post_event(stack.url, message_event("revoke")).status == 200
    stack.wait_until_drained()
