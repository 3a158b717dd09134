"""Slack request signatures (v0), checked on the raw body.

Slack's documented scheme, in the standard library: `v0=` + hex HMAC-SHA256 of
`v0:<timestamp>:<raw body>` under the signing secret, compared in constant time, the
timestamp within 5 minutes. (slack-sdk's SignatureVerifier does the same, but
importing it runs `slack_sdk/__init__`, which loads the whole Web API client: a third of
the ingress's cold start. tests/unit/test_signature.py checks both agree.)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

MAX_AGE_SECONDS = 300


def is_valid_slack_request(
    signing_secret: str, headers: Mapping[str, str], body: bytes, now: Callable[[], float] | None = None
) -> bool:
    """True only for a request Slack signed within the last 5 minutes. `headers` must
    have lower-case names."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if not signature.startswith("v0="):
        return False
    if abs((now or time.time)() - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    try:
        body.decode("utf-8")  # Slack sends UTF-8; anything else is not from Slack
    except UnicodeDecodeError:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
