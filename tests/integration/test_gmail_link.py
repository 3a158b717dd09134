"""Linking Gmail with the worker and callback handlers in process, against moto's
server (DynamoDB, KMS) and the Google and Slack emulators, through the real clients."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

from infra.local.emulators.google import GMAIL_READONLY
from infra.local.slack_requests import LOCAL_DM_CHANNEL, LOCAL_TEAM_ID, LOCAL_USER_ID
from tests.integration.harness import PUBLIC, Harness, logged


def test_auth_consent_callback_status_revoke_status(harness: Harness):
    assert "not connected" in harness.say("status").text
    url = harness.consent_url()
    assert url.startswith(harness.google.auth_uri)
    for part in ("code_challenge_method=S256", "access_type=offline", "prompt=consent", "gmail.send"):
        assert part in url
    status, html = harness.callback_to(harness.google.consent(url))
    assert status == 200 and "Gmail connected" in html and "ada@example.com" in html
    assert "connected as *ada@example.com*" in harness.slack.messages(channel=LOCAL_DM_CHANNEL)[-1].text

    link = harness.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert link is not None and link.email == "ada@example.com" and link.status == "linked"
    assert "read, compose, send" in harness.say("status").text

    assert "revoked Mailroom's access at Google" in harness.say("revoke").text
    assert harness.google.live_refresh_tokens() == set()
    assert harness.rows() == []
    assert "not connected" in harness.say("status").text


def test_no_plaintext_token_is_stored(harness: Harness):
    assert harness.link()[0] == 200
    [row] = harness.rows()
    link = harness.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert link is not None
    raw = repr(row) + json.dumps({k: str(v) for k, v in row.items()})
    for secret in (link.tokens.access_token, link.tokens.refresh_token):
        assert secret and secret not in raw
        assert secret.encode() not in row["tokens"]["B"]


def test_a_token_blob_copied_to_another_users_row_does_not_decrypt_for_them(harness: Harness):
    assert harness.link()[0] == 200
    ddb = harness.deployment.aws.client("dynamodb")
    [row] = harness.rows()
    stolen = dict(row, pk={"S": f"{LOCAL_TEAM_ID}#U0MALLORY"}, user_id={"S": "U0MALLORY"})
    ddb.put_item(TableName=harness.deployment.physical("TokensTable"), Item=stolen)
    reply = harness.say("status", user="U0MALLORY", channel="D0MALLORY")
    assert "ada@example.com" not in reply.text
    assert "no longer works" in reply.text and "`auth`" in reply.text


def test_an_unreadable_link_is_a_broken_link_the_user_can_replace_or_remove(harness: Harness):
    assert harness.link()[0] == 200
    ddb, table = harness.deployment.aws.client("dynamodb"), harness.deployment.physical("TokensTable")
    [row] = harness.rows()
    ddb.put_item(TableName=table, Item=dict(row, tokens={"B": b"not an encrypted message"}))
    assert "no longer works" in harness.say("What came in today?").text
    # auth works and relinking overwrites the unreadable row ...
    assert harness.link()[0] == 200
    link = harness.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert link is not None and link.status == "linked"
    # ... and revoke deletes an unreadable row anyway.
    ddb.put_item(TableName=table, Item=dict(harness.rows()[0], tokens={"B": b"damaged again"}))
    reply = harness.say("revoke")
    assert "deleted" in reply.text and "myaccount.google.com/permissions" in reply.text
    assert harness.rows() == []


def test_a_reused_link_is_refused_and_stores_nothing_new(harness: Harness):
    location = harness.google.consent(harness.consent_url())
    assert harness.callback_to(location)[0] == 200
    harness.say("revoke")
    status, html = harness.callback_to(location)
    assert status == 400 and "expired or was already used" in html
    assert harness.rows() == []


def test_an_expired_link_is_refused_and_stores_nothing(harness: Harness):
    location = harness.google.consent(harness.consent_url())
    ddb = harness.deployment.aws.client("dynamodb")
    table = harness.deployment.physical("OAuthStateTable")
    for item in ddb.scan(TableName=table)["Items"]:
        ddb.update_item(
            TableName=table,
            Key={"state": item["state"]},
            UpdateExpression="SET expires_at = :past",
            ExpressionAttributeValues={":past": {"N": "1000"}},
        )
    status, html = harness.callback_to(location)
    assert status == 400 and "expired" in html
    assert harness.rows() == []


def test_a_forged_state_is_refused_and_stores_nothing(harness: Harness):
    location = harness.google.consent(harness.consent_url())
    forged = location.replace("state=", "state=forged")
    assert harness.callback_to(forged)[0] == 400
    missing = location.split("?")[0] + "?code=abc"
    assert harness.callback_to(missing)[0] == 400
    assert harness.rows() == []


def test_a_state_paired_with_another_flows_code_is_refused(harness: Harness):
    """A valid state with a code from someone else's consent: PKCE does not match."""
    mine = harness.google.consent(harness.consent_url())
    theirs = harness.google.consent(harness.consent_url(user="U0MALLORY"))
    my_state = dict(p.split("=", 1) for p in urlsplit(mine).query.split("&"))["state"]
    their_code = dict(p.split("=", 1) for p in urlsplit(theirs).query.split("&"))["code"]
    status, html = harness.callback_to(f"{PUBLIC}/auth/callback?state={my_state}&code={their_code}")
    assert status == 400 and "did not accept" in html
    assert harness.rows() == []


def test_access_denied_gives_a_clear_page_and_tells_the_user(harness: Harness):
    harness.google.deny_next_consent = True
    status, html = harness.link()
    assert status == 200 and "not connected" in html and "declined" in html
    assert "declined" in harness.slack.messages(channel=LOCAL_DM_CHANNEL)[-1].text
    assert harness.rows() == []


def test_missing_scopes_are_refused_and_the_partial_grant_revoked(harness: Harness):
    harness.google.grant_scopes = [GMAIL_READONLY]
    status, html = harness.link()
    assert status == 200 and "not connected" in html
    assert "compose, send" in harness.slack.messages(channel=LOCAL_DM_CHANNEL)[-1].text
    assert harness.google.live_refresh_tokens() == set()
    assert harness.rows() == []


def test_an_expiring_access_token_is_refreshed_and_saved_back(harness: Harness):
    harness.google.access_token_ttl = 60  # inside the refresh margin: status refreshes at once
    assert harness.link()[0] == 200
    before = harness.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert "ada@example.com" in harness.say("status").text
    after = harness.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert before is not None and after is not None
    assert after.tokens.access_token != before.tokens.access_token
    assert after.linked_at == before.linked_at


def test_invalid_grant_marks_the_link_broken_and_asks_to_link_again(harness: Harness):
    harness.google.access_token_ttl = 60
    assert harness.link()[0] == 200
    harness.google.invalidate_refresh_tokens()
    assert "no longer works" in harness.say("status").text
    link = harness.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert link is not None and link.status == "broken"
    assert "no longer works" in harness.say("what did Alice send me?").text


def test_revoke_works_when_google_already_revoked_the_grant(harness: Harness):
    assert harness.link()[0] == 200
    link = harness.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert link is not None
    revoke = urllib.request.Request(  # noqa: S310 (the emulator)
        harness.google.revoke_uri, data=f"token={link.tokens.refresh_token}".encode(), method="POST"
    )
    urllib.request.urlopen(revoke).close()  # noqa: S310
    reply = harness.say("revoke").text
    assert "Google had already revoked access" in reply
    assert harness.rows() == []


def test_auth_in_a_channel_is_shown_to_the_asker_only(harness: Harness):
    prompt = harness.say("auth", channel="C0GENERAL")
    assert prompt.ephemeral and prompt.user == LOCAL_USER_ID


def test_a_failed_callback_logs_what_failed_never_the_errors_words(harness: Harness, caplog, capsys):
    """Google's error text can quote the account; the logs keep the error's type, status
    and place, and the person gets a page with a reference id, never a stack trace."""
    harness.google.add_fault(
        "status",
        "/gmail/v1/users/me/profile",
        status=400,
        times=2,
        body={"error": {"code": 400, "message": "ada@example.com: failedPrecondition"}},
    )
    status, html = harness.link()
    assert status == 500 and "not connected" in html and "Reference" in html and "Traceback" not in html
    text = logged(caplog, capsys)
    assert "callback failed" in text and "HttpError" in text
    assert "ada@example.com" not in text and "failedPrecondition" not in text
    assert harness.rows() == []
