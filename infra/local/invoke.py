"""Invoke one function with an event file, as `sam local invoke` does, without Docker.

    uv run python -m infra.local.invoke IngressFunction events/ingress/slack_hello_dm.json

The function runs in its own process with its template environment against the
local stack (embedded AWS and the emulators). For the ingress, the queued message is
then run through the worker too, and what the bot said in Slack is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.local.functions import InvocationError
from infra.local.stack import LocalStack, StackOptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", help="logical id in template.yaml, e.g. IngressFunction")
    parser.add_argument("event", type=Path, help="event JSON file, e.g. events/ingress/slack_hello_dm.json")
    args = parser.parse_args(argv)

    event = json.loads(args.event.read_text())
    with LocalStack(StackOptions(log_path=Path(".local/invoke.log"))) as stack:
        if args.function not in stack.functions:
            parser.error(f"no function {args.function!r}; the template has {', '.join(stack.functions)}")
        try:
            result = stack.functions[args.function].invoke(event)
        except InvocationError as exc:
            print(json.dumps({"errorType": exc.error_type, "errorMessage": str(exc)}, indent=2))
            return 1
        print(json.dumps(result, indent=2))
        stack.wait_until_drained()
        if stack.slack is not None:
            for message in stack.slack.messages():
                print(f"\nbot -> {message.channel}: {message.text}")
    print("\n(function logs: .local/invoke.log)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
