"""The events under events/ drive the real handlers."""

from __future__ import annotations

import json
import time

from functions.ingress import app as ingress_app
from functions.worker import app as worker_app
from infra.local.slack_requests import LOCAL_DM_CHANNEL
from infra.scripts.sign_events import EVENTS, build
from mailroom.bootstrap import build_ingress, build_worker


def test_freshly_signed_events_are_accepted_and_stale_ones_refused(function_env, lambda_context, deployment):
    function_env("IngressFunction")
    ingress = build_ingress()
    fresh = build(int(time.time()))
    assert (
        ingress_app.handler(fresh["ingress/slack_hello_dm.json"], lambda_context, ingress=ingress)["statusCode"] == 200
    )
    verification = ingress_app.handler(fresh["ingress/slack_url_verification.json"], lambda_context, ingress=ingress)
    assert json.loads(verification["body"]) == {"challenge": "local-challenge-value"}
    press = ingress_app.handler(fresh["ingress/slack_approve_press.json"], lambda_context, ingress=ingress)
    assert press["statusCode"] == 200
    forged = ingress_app.handler(fresh["ingress/slack_forged_signature.json"], lambda_context, ingress=ingress)
    assert forged["statusCode"] == 401
    assert len(deployment.queued()) == 2  # the hello and the press

    stale = build(int(time.time()) - 600)["ingress/slack_hello_dm.json"]
    assert ingress_app.handler(stale, lambda_context, ingress=ingress)["statusCode"] == 401


def test_the_worker_event_says_hello(function_env, lambda_context, slack):
    function_env("WorkerFunction")
    event = json.loads((EVENTS / "worker/sqs_hello.json").read_text())
    response = worker_app.handler(event, lambda_context, worker=build_worker())
    assert response == {"batchItemFailures": []}
    [reply] = slack.messages(channel=LOCAL_DM_CHANNEL)
    assert "auth" in reply.text
