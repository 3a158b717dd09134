"""`hello` must not pay for the agent: a fresh worker process answers it without
importing LangChain, LangGraph, the OpenAI client, Google's clients or the Encryption SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from infra.local.template import ROOT
from infra.scripts.sign_events import EVENTS

HEAVY = ("langchain", "langgraph", "openai", "googleapiclient", "google_auth_oauthlib", "aws_encryption_sdk")

_PROBE = """
import json, sys, time
sys.path[:0] = sys.argv[1:3]
from infra.local.lambda_child import LocalLambdaContext
import app
event = json.load(open(sys.argv[3]))
result = app.handler(event, LocalLambdaContext("worker", "probe", time.time() + 60, 1024))
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[4])))
print(json.dumps({"result": result, "heavy": heavy}), file=sys.__stderr__)
"""


def test_hello_loads_no_agent_or_google_library(function_env, slack):
    env = function_env("WorkerFunction")
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            str(ROOT / "functions/worker"),
            str(ROOT / "layers/common"),
            str(EVENTS / "worker/sqs_hello.json"),
            json.dumps(HEAVY),
        ],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    assert report["result"] == {"batchItemFailures": []}
    assert "auth" in slack.messages()[0].text  # it really answered hello
    assert report["heavy"] == []


_SNAPSHOT_INIT = """
import json, sys
sys.path[:0] = sys.argv[1:3]
import app
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[3])))
print(json.dumps({"loaded": loaded, "worker_built": app._worker is not None}), file=sys.__stderr__)
"""


def test_snapstart_init_loads_the_agent_and_reaches_no_service(function_env):
    """Init for a snapshot imports the agent path, and makes no client and reads no secret:
    every AWS endpoint is a closed port here, so any call would fail the import."""
    env = function_env("WorkerFunction") | {
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
    }
    env = {k: v for k, v in env.items() if k not in ("SLACK_BOT_TOKEN", "OPENAI_API_KEY")}
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _SNAPSHOT_INIT,
            str(ROOT / "functions/worker"),
            str(ROOT / "layers/common"),
            json.dumps([*HEAVY, "langgraph_checkpoint_aws", "langchain_openai", "langchain_core"]),
        ],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    assert report["worker_built"] is False
    assert set(report["loaded"]) >= {
        "langgraph",
        "langchain_core",
        "langchain_openai",
        "openai",
        "googleapiclient",
        "aws_encryption_sdk",
        "langgraph_checkpoint_aws",
    }
