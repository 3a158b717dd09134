"""Slack-facing domain code: request verification and payload parsing."""
