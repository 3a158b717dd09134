"""HTTP emulators of the outside services Mailroom talks to (Slack, Google, OpenAI).

Each one is a real HTTP server on loopback, so the production code reaches it through
its real client library with only a base URL changed (see the configuration contract
in DESIGN.md). Tests and the local stack start them in-process.
"""
