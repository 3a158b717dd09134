"""`make dev`: serve the local stack on a fixed port for a real Slack app.

Put a tunnel (ngrok, cloudflared, ...) in front of the port and paste
https://<tunnel>/slack/events and /slack/interactions into your Slack app. Real
credentials come from `.env` (see `.env.example`): with SLACK_SIGNING_SECRET and
SLACK_BOT_TOKEN set the bot talks to real Slack; Google and the model stay emulated
unless their credentials are set too. AWS is always the embedded one.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from infra.local.stack import SECRET_NAMES, LocalStack, StackOptions

ENDPOINT_NAMES = (
    "SLACK_API_URL",
    "SLACK_OIDC_AUTHORIZE_URL",
    "GOOGLE_AUTH_URI",
    "GOOGLE_TOKEN_URI",
    "GOOGLE_REVOKE_URI",
    "GMAIL_API_URL",
    "OPENAI_BASE_URL",
    "PUBLIC_BASE_URL",
)


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def main() -> int:
    config = read_dotenv(Path(".env")) | {k: v for k, v in os.environ.items() if k in (*SECRET_NAMES, *ENDPOINT_NAMES)}
    secrets = {name: config[name] for name in SECRET_NAMES if config.get(name)}
    if bool(secrets.get("SLACK_BOT_TOKEN")) != bool(secrets.get("SLACK_SIGNING_SECRET")):
        print("Set both SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN in .env, or neither.", file=sys.stderr)
        return 2
    endpoints = {name: config[name] for name in ENDPOINT_NAMES if config.get(name)}
    port = int(config.get("PORT", "3000"))
    options = StackOptions(
        secrets=secrets, endpoints=endpoints, front_port=port, log_path=Path(".local/dev.log"), run_schedules=True
    )
    with LocalStack(options) as stack:
        print(f"Mailroom is listening on {stack.url}")
        print(f"  Slack:  {'real Slack' if stack.slack is None else 'emulated at ' + stack.slack.api_url}")
        print(f"  Google: {'real Google' if stack.google is None else 'emulated at ' + stack.google.url}")
        print(f"  AWS:    embedded at {stack.aws.endpoint_url}")
        print("  Routes: POST /slack/events, POST /slack/interactions,")
        print("          GET /auth/start, GET /auth/slack/callback, GET /auth/callback")
        print("  Logs:   .local/dev.log     (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nstopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
