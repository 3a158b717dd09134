"""Property-based fuzzing (hypothesis) of everything that reaches Mailroom from outside:
Slack's Events API and interactivity payloads, signed correctly and not, and the OAuth
callback's query. Through the real handlers, against moto's server and the emulators.

Properties: every answer is a clean status (never a 500, never an exception out of
the handler, never a stack trace in the body); nothing is queued when a request is
refused; a refused or forged callback stores no token and tells no one in Slack.

Examples per property: FUZZ_EXAMPLES (default 150); see `make fuzz` for more.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingress import app as ingress_app
from infra.local.front import api_gateway_event
from infra.local.slack_requests import LOCAL_SIGNING_SECRET, block_action, message_event, sign
from mailroom.bootstrap import build_ingress
from tests.integration.harness import Harness

HOST = "abc123.execute-api.us-east-1.amazonaws.com"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
INGRESS_STATUSES = {200, 400, 401, 404, 413}

# -- strategies -------------------------------------------------------------------------
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A real-shaped payload with some fields, at any depth, replaced or removed."""
    payload = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 4))):
        node: Any = payload
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if not isinstance(node, dict) or not node:
            continue
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(json_values)
    return payload


event_payloads = st.one_of(
    mutated(message_event("hello")),
    mutated(message_event("chat what did Alice send?", thread_ts="1700000000.000100")),
    mutated({"type": "url_verification", "challenge": "abc", "token": "x"}),
    mutated({**message_event("hi"), "event": {"type": "app_mention", "user": "U0ADA", "text": "<@U0MAILBOT> hi"}}),
    json_values,
)
interaction_payloads = st.one_of(
    mutated(block_action("approve_send", "send-abc", message_ts="1700000000.000100")),
    mutated(block_action("cancel_send", "send-abc", message_ts="1700000000.000100", thread_ts="1.1")),
    mutated({"type": "view_submission", "user": {"id": "U0ADA"}, "team": {"id": "T0LOCAL"}, "view": {}}),
    json_values,
)


@st.composite
def interaction_bodies(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return urlencode({"payload": json.dumps(draw(interaction_payloads))}).encode()
    if choice == 1:  # a payload field that is not JSON, or not there
        return urlencode({draw(st.sampled_from(["payload", "x", ""])): draw(st.text(max_size=60))}).encode()
    if choice == 2:
        return draw(st.binary(max_size=200))
    return json.dumps(draw(interaction_payloads)).encode()


@st.composite
def event_bodies(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    return json.dumps(draw(event_payloads)).encode()


header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@st.composite
def signatures(draw: st.DrawFn, body: bytes) -> tuple[dict[str, str], bool]:
    """Headers for `body` and whether they are a valid signature."""
    # Half the requests are signed right, so that most examples reach the parsers.
    kinds = ["valid"] * 6 + ["wrong-secret", "stale", "future", "garbage", "missing", "tampered"]
    kind = draw(st.sampled_from(kinds))
    now = int(time.time())
    if kind == "valid":
        return sign(body), True
    if kind == "wrong-secret":
        return sign(body, draw(st.text(min_size=1, max_size=30).filter(lambda s: s != LOCAL_SIGNING_SECRET))), False
    if kind == "stale":
        return sign(body, timestamp=now - draw(st.integers(301, 10**9))), False
    if kind == "future":
        # A minute beyond the 5-minute window: a slow (cold) first call must not bring a
        # timestamp drawn at now+301 back inside it, making the request validly signed.
        return sign(body, timestamp=now + draw(st.integers(360, 10**9))), False
    if kind == "garbage":
        return {"X-Slack-Request-Timestamp": draw(header_values), "X-Slack-Signature": draw(header_values)}, False
    if kind == "missing":
        headers = sign(body)
        headers.pop(draw(st.sampled_from(sorted(headers))))
        return headers, False
    return sign(body + b" "), False


# -- the ingress ------------------------------------------------------------------------
@pytest.fixture
def ingress(function_env, lambda_context, deployment):
    function_env("IngressFunction")
    built = build_ingress()
    sqs = deployment.aws.client("sqs")
    url = deployment.physical("MessagesQueue")

    def depth() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def call(path: str, body: bytes, headers: dict[str, str], base64_body: bool = False) -> tuple[int, str, int]:
        event = api_gateway_event("POST", path, headers, body, HOST)
        if base64_body:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        before = depth()
        response = ingress_app.handler(event, lambda_context, ingress=built)  # an exception here is a 500
        return int(response["statusCode"]), str(response.get("body") or ""), depth() - before

    return call


def check_clean(status: int, body: str, queued: int, valid_signature: bool) -> None:
    assert status in INGRESS_STATUSES, status
    assert "Traceback" not in body and "Error" not in body
    assert queued in (0, 1)
    if status != 200 or not valid_signature:
        assert queued == 0, "queued although refused"


@FUZZ
@given(data=st.data())
def test_events_fuzz(ingress, data):
    body = data.draw(event_bodies())
    headers, valid = data.draw(signatures(body))
    content_type = data.draw(st.sampled_from(["application/json", "text/plain", "application/octet-stream", ""]))
    status, answer, queued = ingress("/slack/events", body, {"Content-Type": content_type, **headers})
    check_clean(status, answer, queued, valid)
    if not valid:
        assert status == 401


@FUZZ
@given(data=st.data())
def test_interactions_fuzz(ingress, data):
    body = data.draw(interaction_bodies())
    headers, valid = data.draw(signatures(body))
    encoded = data.draw(st.booleans())
    headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    status, answer, queued = ingress("/slack/interactions", body, headers, base64_body=encoded)
    check_clean(status, answer, queued, valid)
    if not valid:
        assert status == 401


@FUZZ
@given(path=st.text(max_size=30).map(lambda s: "/" + s), body=st.binary(max_size=50))
def test_other_paths_are_404_and_queue_nothing(ingress, path, body):
    status, _, queued = ingress(
        path if path not in ("/slack/events", "/slack/interactions") else "/x", body, sign(body)
    )
    assert status == 404 and queued == 0


@pytest.mark.parametrize(
    "field",
    [
        {"container": True},
        {"message": [1]},
        {"container": {"channel_id": 7, "message_ts": "1.1"}},
        {"team": {"id": 5}},
        {"actions": [True]},
        {"user": "U0ADA"},
    ],
)
def test_a_signed_interaction_with_fields_of_the_wrong_type_is_a_clean_400(ingress, field):
    """Found by the fuzzing above: these crashed the ingress (500) before."""
    payload = {**block_action("approve_send", "send-abc", message_ts="1700000000.000100"), **field}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    status, _, queued = ingress("/slack/interactions", body, headers)
    assert (status, queued) == (400, 0)


# -- the OAuth callback -----------------------------------------------------------------
query_values = st.text(max_size=60) | st.sampled_from(["", "access_denied", "invalid_scope", "x" * 3000])
query_names = st.sampled_from(["state", "code", "scope", "error", "error_description", "iss", "authuser", "prompt"])


@st.composite
def callback_queries(draw: st.DrawFn, real_state: str | None) -> str:
    pairs = draw(st.lists(st.tuples(query_names | st.text(max_size=10), query_values), max_size=6))
    if real_state is not None and draw(st.booleans()):
        pairs.append(("state", real_state))
    if draw(st.integers(0, 5)) == 0:  # a query that is not even form-encoded
        return draw(st.text(max_size=80)).replace("#", "").replace(" ", "%20")
    return urlencode(pairs)


@FUZZ
@given(data=st.data())
def test_callback_fuzz(harness: Harness, data):
    real_state = None
    if data.draw(st.integers(0, 3)) == 0:  # sometimes with a live state, to reach the code exchange
        location = harness.consent_url()
        real_state = dict(pair.split("=", 1) for pair in location.split("?", 1)[1].split("&"))["state"]
    query = data.draw(callback_queries(real_state))
    posted_before = len(harness.slack.calls("chat.postMessage"))
    event = api_gateway_event("GET", f"/auth/callback?{query}", {"User-Agent": "Mozilla/5.0"}, b"", HOST)
    from functions.oauth_callback import app as callback_app

    response = callback_app.handler(event, harness.context, callback=harness.callback)
    status, page = int(response["statusCode"]), str(response.get("body") or "")
    assert status in {200, 400, 403, 404, 405, 502, 503}, status
    assert "Traceback" not in page
    # A made-up code never links anything: the emulated Google knows only its own codes.
    assert harness.rows() == []
    if real_state is None:  # with no live state, nobody is told anything
        assert len(harness.slack.calls("chat.postMessage")) == posted_before
