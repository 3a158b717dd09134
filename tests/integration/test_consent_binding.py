"""Consent bound to the person: a Connect Gmail link, or any URL after it, opened by
someone else or in another browser links nothing. Callback and worker in process
against moto's server and the Slack (Sign in with Slack) and Google emulators."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from infra.local.slack_requests import LOCAL_DM_CHANNEL, LOCAL_TEAM_ID, LOCAL_USER_ID
from tests.integration.harness import PUBLIC, Harness

MALLORY = "U0MALLORY"


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def test_the_button_opens_mailroom_which_sends_the_browser_to_sign_in_with_slack(harness: Harness):
    button = harness.button_url()
    assert button.startswith(f"{PUBLIC}/auth/start?state=")
    status, headers, _ = harness.browse(button)
    assert status == 302
    slack = urlsplit(headers["Location"])
    query = parse_qs(slack.query)
    assert f"{slack.scheme}://{slack.netloc}{slack.path}" == harness.slack.oidc_authorize_url
    assert query["scope"] == ["openid profile"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"{PUBLIC}/auth/slack/callback"] and query["team"] == [LOCAL_TEAM_ID]
    assert query["state"] == [state_of(button)]
    [cookie] = harness.cookies.values()
    assert len(cookie) == 43


def test_a_forwarded_link_opened_by_another_slack_user_links_nothing(harness: Harness):
    button = harness.button_url()  # ada's
    harness.browse(button)
    harness.slack.sign_in_as(MALLORY, LOCAL_TEAM_ID)
    _, headers, _ = harness.browse(button)
    status, _, html = harness.browse(harness.slack.authorize(headers["Location"]))
    assert status == 403 and "belongs to someone else" in html
    assert harness.google.calls == []  # Google's consent was never even offered
    assert harness.rows() == []
    told = harness.slack.messages(channel=LOCAL_DM_CHANNEL)[-1]
    assert "opened by a different Slack account" in told.text
    # The link is spent: not even ada can use it now.
    assert harness.browse(button)[0] == 400


def test_the_same_user_in_another_workspace_is_someone_else(harness: Harness):
    button = harness.button_url()
    _, headers, _ = harness.browse(button)
    harness.slack.sign_in_as(LOCAL_USER_ID, "T0ELSEWHERE")
    status, _, html = harness.browse(harness.slack.authorize(headers["Location"]))
    assert status == 403 and "belongs to someone else" in html and harness.rows() == []


def test_a_forwarded_google_consent_url_links_nothing(harness: Harness):
    google_url = harness.consent_url()  # ada signed in with Slack; Google's page is next
    harness.cookies.clear()  # ...but it is opened in someone else's browser
    status, html = harness.callback_to(harness.google.consent(google_url))
    assert status == 403 and "Gmail was not connected" in html
    assert harness.rows() == []
    assert "without your Slack sign-in" in harness.slack.messages(channel=LOCAL_DM_CHANNEL)[-1].text


def test_google_is_not_honoured_without_the_slack_step(harness: Harness):
    button = harness.button_url()
    harness.browse(button)  # this browser is bound, but never signs in with Slack
    status, _, _ = harness.browse(f"{PUBLIC}/auth/callback?state={state_of(button)}&code=anything")
    assert status == 403 and harness.rows() == []


def test_the_slack_step_must_come_back_to_the_browser_that_started(harness: Harness):
    button = harness.button_url()
    _, headers, _ = harness.browse(button)
    harness.slack.sign_in_as(LOCAL_USER_ID, LOCAL_TEAM_ID)
    back = harness.slack.authorize(headers["Location"])
    harness.cookies.clear()
    status, _, _ = harness.browse(back)
    assert status == 403 and harness.rows() == []


def test_a_slack_code_is_refused_twice(harness: Harness):
    button = harness.button_url()
    _, headers, _ = harness.browse(button)
    harness.slack.sign_in_as(LOCAL_USER_ID, LOCAL_TEAM_ID)
    back = harness.slack.authorize(headers["Location"])
    assert harness.browse(back)[0] == 302
    assert harness.browse(back)[0] == 400  # the state has passed its Slack step already


def test_the_success_page_names_the_slack_user_and_the_gmail_address(harness: Harness):
    harness.slack.add_user(LOCAL_USER_ID, name="ada", real_name="Ada Lovelace")
    status, html = harness.link()
    assert status == 200 and "ada@example.com for Ada Lovelace in Slack" in html
    [exchange] = harness.slack.calls("openid.connect.token")
    assert exchange["ok"] and "client_secret" not in repr(exchange)
    # The user token Slack issued for the sign-in was used once and revoked.
    assert [c["ok"] for c in harness.slack.calls("auth.revoke")] == [True]
    assert harness.slack.user_tokens_alive() == 0
