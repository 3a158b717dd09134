"""What a SnapStart snapshot of the worker should already hold: the agent path.

Lambda takes the snapshot after init; a restored worker starts from it. So when init
runs for a snapshot, it imports everything the first `chat` needs (LangGraph,
LangChain, the OpenAI client, Google's clients, the Encryption SDK, the DynamoDB
checkpointer) and does the work that needs no secret and no client: the tools and
their OpenAI schemas. Clients, credentials and connections are still made on first
use, after the restore, so no copy of the snapshot shares them.
"""

from __future__ import annotations

import importlib

# Modules the first `chat` (and Approve press) imports, ours and the libraries behind them.
AGENT_MODULES = (
    "mailroom.agent.runner",
    "mailroom.agent.checkpoints",
    "mailroom.adapters.gmail_api",
    "mailroom.adapters.google_oauth",
    "mailroom.gmail_link",
    "mailroom.oauth_state",
    "mailroom.rate_limit",
    "mailroom.vault",
    "langchain_openai.chat_models",  # ChatOpenAI's (the package itself is lazy, see below)
    "aws_encryption_sdk",
    "aws_encryption_sdk.key_providers.kms",
    "google.auth.transport.requests",
    "googleapiclient.discovery",
    "googleapiclient.http",
)
# Packages whose __init__ the layer build makes lazy (infra/scripts/build_layer.py,
# LAZY_REEXPORTS): a first `chat` imports only what it touches of them; a snapshot
# takes all of it, as the libraries' own files would import it.
LAZY_PACKAGES = ("openai.types", "openai.types.responses", "langsmith.types", "langchain_openai", "langgraph_sdk")


def preload_agent() -> int:
    """Import the agent path and build the tools' schemas; returns the modules loaded."""
    import sys

    for name in AGENT_MODULES:
        importlib.import_module(name)
    for name in LAZY_PACKAGES:
        package = importlib.import_module(name)
        for exported in getattr(package, "__all__", ()):
            getattr(package, exported)

    from langchain_core.utils.function_calling import convert_to_openai_tool

    from mailroom.agent.tools import gmail_tools

    # bind_tools does this on the first turn: pydantic builds each tool's JSON schema.
    for tool in gmail_tools():
        convert_to_openai_tool(tool)
    return len(sys.modules)
