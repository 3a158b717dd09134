"""The log scan finds what it must (tests/leakscan.py runs it over the whole suite)."""

from __future__ import annotations

from infra.local.emulators.google import GoogleEmulator
from infra.local.slack_requests import LOCAL_SIGNING_SECRET
from tests.leakscan import mail_phrases, needles, scan


def test_the_scan_finds_issued_tokens_secrets_and_mail_text(google: GoogleEmulator):
    tokens = google.issue_tokens()
    phrase = mail_phrases()[0]
    logs = "\n".join(
        [
            '{"level":"INFO","message":"ok"}',
            f'{{"message":"refreshed","token":"{tokens["access_token"]}"}}',
            f"Authorization: Bearer {tokens['refresh_token']}",
            f"secret={LOCAL_SIGNING_SECRET}",
            f'{{"error":"tool failed: {phrase}"}}',
            "xoxb-1234567890-abcdef",
        ]
    )
    hits = scan([("worker.log", logs)], needles())
    assert {h.split(":")[1] for h in hits} == {"2", "3", "4", "5", "6"}
    assert all(tokens["access_token"] not in h and LOCAL_SIGNING_SECRET not in h for h in hits)


def test_clean_logs_pass():
    assert scan([("x.log", '{"level":"INFO","message":"queued","correlation_id":"Ev1"}')], needles()) == []
