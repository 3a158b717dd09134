"""Each Gmail request's socket timeout comes from the turn's time left."""

from __future__ import annotations

import socket
import time

import pytest
from google.oauth2.credentials import Credentials

from mailroom.adapters.gmail_api import DeadlineHttp, GmailApiMailbox
from mailroom.errors import OutOfTime, TransientError
from mailroom.timeouts import GMAIL_CALL_SECONDS, MIN_CALL_SECONDS


def closed_port() -> str:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


def test_no_request_starts_with_too_little_time_left():
    http = DeadlineHttp(time.monotonic() + MIN_CALL_SECONDS / 2)
    with pytest.raises(OutOfTime):
        http.request(closed_port())


@pytest.mark.parametrize(("left", "expected_at_most"), [(5.0, 5.0), (300.0, GMAIL_CALL_SECONDS)])
def test_a_request_gets_the_time_left_capped_at_the_gmail_call_limit(left: float, expected_at_most: float):
    http = DeadlineHttp(time.monotonic() + left)
    with pytest.raises(ConnectionRefusedError):
        http.request(closed_port())
    assert MIN_CALL_SECONDS <= http.timeout <= expected_at_most


def test_a_mailbox_past_its_deadline_stops_and_one_that_cannot_connect_is_transient():
    credentials = Credentials(token="t")  # never sent: nothing listens
    late = GmailApiMailbox(credentials, closed_port(), "ada@example.com", deadline=time.monotonic())
    with pytest.raises(OutOfTime):
        late.search("from:alice", 5)
    down = GmailApiMailbox(credentials, closed_port(), "ada@example.com", deadline=time.monotonic() + 60)
    with pytest.raises(TransientError):
        down.search("from:alice", 5)
