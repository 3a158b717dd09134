import time

import pytest

from infra.local.slack_requests import LOCAL_SIGNING_SECRET, sign
from mailroom.slack.signature import is_valid_slack_request

BODY = b'{"type":"event_callback","event_id":"Ev1"}'
NOW = 1_795_000_000


def headers_for(body: bytes, secret: str = LOCAL_SIGNING_SECRET, timestamp: int = NOW) -> dict[str, str]:
    return {k.lower(): v for k, v in sign(body, secret, timestamp).items()}


def check(headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> bool:
    return is_valid_slack_request(LOCAL_SIGNING_SECRET, headers, body, lambda: now)


def test_a_request_slack_signed_is_valid():
    assert check(headers_for(BODY))


def test_a_signature_made_with_another_secret_is_refused():
    assert not check(headers_for(BODY, secret="not-the-signing-secret"))


def test_a_body_changed_after_signing_is_refused():
    assert not check(headers_for(BODY), body=BODY.replace(b"Ev1", b"Ev2"))


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_a_timestamp_outside_five_minutes_is_refused(age: int):
    assert not check(headers_for(BODY, timestamp=NOW - age))


@pytest.mark.parametrize("age", [0, 299, -299])
def test_a_timestamp_within_five_minutes_is_accepted(age: int):
    assert check(headers_for(BODY, timestamp=NOW - age))


@pytest.mark.parametrize("missing", ["x-slack-signature", "x-slack-request-timestamp"])
def test_missing_headers_are_refused(missing: str):
    headers = headers_for(BODY)
    del headers[missing]
    assert not check(headers)


@pytest.mark.parametrize("timestamp", ["", "abc", "1.5", "-1", "١٢٣"])
def test_a_timestamp_that_is_not_a_number_is_refused_without_error(timestamp: str):
    headers = headers_for(BODY) | {"x-slack-request-timestamp": timestamp}
    assert not check(headers)


def test_a_signature_of_another_version_is_refused():
    headers = headers_for(BODY)
    headers["x-slack-signature"] = headers["x-slack-signature"].replace("v0=", "v1=")
    assert not check(headers)


def test_a_body_that_is_not_utf8_is_refused_without_error():
    body = b"\xff\xfe\x00garbage"
    assert not check(headers_for(body), body=body)


def test_the_real_clock_is_used_by_default():
    body = b"{}"
    headers = {k.lower(): v for k, v in sign(body, LOCAL_SIGNING_SECRET, int(time.time())).items()}
    assert is_valid_slack_request(LOCAL_SIGNING_SECRET, headers, body)
    stale = {k.lower(): v for k, v in sign(body, LOCAL_SIGNING_SECRET, int(time.time()) - 600).items()}
    assert not is_valid_slack_request(LOCAL_SIGNING_SECRET, stale, body)


# slack-sdk's verifier is the reference: ours is the same scheme without its import cost.
@pytest.mark.parametrize(
    "case",
    ["valid", "other secret", "changed body", "stale", "future", "v1", "truncated", "empty body", "unicode body"],
)
def test_agrees_with_slack_sdks_signature_verifier(case: str):
    from slack_sdk.signature import Clock, SignatureVerifier

    class Frozen(Clock):
        def now(self) -> float:
            return NOW

    body = '{"text":"héllo ✉"}'.encode() if case == "unicode body" else b"" if case == "empty body" else BODY
    timestamp = {"stale": NOW - 301, "future": NOW + 301}.get(case, NOW)
    headers = headers_for(body, "another-secret" if case == "other secret" else LOCAL_SIGNING_SECRET, timestamp)
    if case == "changed body":
        body = body + b" "
    if case == "v1":
        headers["x-slack-signature"] = headers["x-slack-signature"].replace("v0=", "v1=")
    if case == "truncated":
        headers["x-slack-signature"] = headers["x-slack-signature"][:-1]
    theirs = SignatureVerifier(LOCAL_SIGNING_SECRET, clock=Frozen()).is_valid(
        body.decode(), headers["x-slack-request-timestamp"], headers["x-slack-signature"]
    )
    assert check(headers, body) is theirs
    assert theirs is (case in ("valid", "empty body", "unicode body"))
