"""Slack request signatures (v0), checked on the raw body with slack-sdk's verifier."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier


class _CallableClock(Clock):
    def __init__(self, now: Callable[[], float]):
        self._now = now

    def now(self) -> float:
        return self._now()


def is_valid_slack_request(
    signing_secret: str, headers: Mapping[str, str], body: bytes, now: Callable[[], float] | None = None
) -> bool:
    """True only for a request Slack signed within the last 5 minutes.

    `headers` must have lower-case names. slack-sdk compares in constant time and
    enforces the 300 s window; we only guard the inputs it would choke on.
    """
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature or not timestamp.isdigit() or not signature.startswith("v0="):
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    verifier = SignatureVerifier(signing_secret, clock=_CallableClock(now) if now else Clock())
    return verifier.is_valid(text, timestamp, signature)
