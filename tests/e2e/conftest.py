from collections.abc import Iterator

import pytest

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
