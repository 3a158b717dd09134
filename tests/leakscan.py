"""A pytest plugin: scan every log line the suite produced for secrets and mail text.

What is scanned: the output each test captured (the in-process functions' Powertools
JSON logs on stdout, stderr, and the `logging` records), and every `*.log` file the
local stacks wrote under pytest's temporary directory (each function process's
stdout/stderr, as CloudWatch would get it).

What must not be there: Slack bot tokens (`xoxb-`), Google access tokens (`ya29.`),
refresh tokens (`1//`) and authorization codes (`4/0`) in any form, the exact tokens,
codes and OAuth states the emulators issued during the run, the signing secret and the
client secrets the stacks were given, and distinctive text of the seeded mailbox.

A hit fails the session (exit status 1) and prints where it was, with the secret
itself redacted. Off with `-p no:tests.leakscan`.
"""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path
from typing import Any

import pytest

PATTERNS = {
    "slack bot token": re.compile(r"xoxb-[A-Za-z0-9-]{6,}"),
    "google access token": re.compile(r"ya29\.[\w-]{10,}"),
    "google refresh token": re.compile(r"1//0[\w-]{10,}"),
    "google authorization code": re.compile(r"4/0[\w-]{10,}"),
}
_STASH = pytest.StashKey[dict[str, Any]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STASH] = {"captured": [], "bytes": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _state()
    if state is None:
        return
    for name, content in report.sections:
        if name.startswith("Captured") and content:
            state["captured"].append((report.nodeid, name, content))


_config: pytest.Config | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    global _config
    _config = session.config


def _state() -> dict[str, Any] | None:
    return _config.stash.get(_STASH, None) if _config is not None else None


def needles() -> dict[str, str]:
    """Exact values that must never be logged, by what they are."""
    from infra.local.emulators.base import Emulator
    from infra.local.slack_requests import LOCAL_SIGNING_SECRET

    found: dict[str, str] = {LOCAL_SIGNING_SECRET: "the Slack signing secret"}
    for emulator in Emulator.started:
        for attribute, what in (
            ("bot_token", "a Slack bot token"),
            ("client_secret", "a Google client secret"),
            ("api_key", "an OpenAI API key"),
        ):
            value = getattr(emulator, attribute, None)
            if isinstance(value, str) and value:
                found[value] = what
        for attribute, what in (
            ("_codes", "an OAuth code"),
            ("_refresh_tokens", "a refresh token"),
            ("_access_tokens", "an access token"),
        ):
            for value in list(getattr(emulator, attribute, {}) or {}):
                found[str(value)] = what
        calls = getattr(emulator, "calls", None)
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and call.get("path") in ("/o/oauth2/auth", "/o/oauth2/v2/auth"):
                state = (call.get("params") or {}).get("state")
                if isinstance(state, str) and len(state) >= 16:
                    found[state] = "an OAuth state"
    for phrase in mail_phrases():
        found[phrase] = "text of a seeded email"
    return found


def mail_phrases() -> list[str]:
    """Distinctive lines of the seeded mailbox's plain-text bodies and its subjects."""
    from infra.local.emulators.mailbox_seed import seed_messages

    phrases: set[str] = set()
    for seeded in seed_messages():
        message = email.message_from_bytes(seeded.raw, policy=policy.default)
        subject = str(message.get("Subject", ""))
        if len(subject) >= 12:
            phrases.add(subject)
        for part in message.walk():
            if part.get_content_type() != "text/plain":
                continue
            try:
                text = part.get_content()
            except (LookupError, ValueError):
                continue
            for line in str(text).splitlines():
                line = line.strip()
                if len(line) >= 30 and not line.startswith((">", "On ")):
                    phrases.add(line[:60])
    return sorted(phrases)


def scan(texts: list[tuple[str, str]], exact: dict[str, str]) -> list[str]:
    hits: list[str] = []
    for where, text in texts:
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in PATTERNS.items():
                if pattern.search(line):
                    hits.append(f"{where}:{number}: {what}: {_redact(line, pattern.pattern)}")
            for value, what in exact.items():
                if value in line:
                    hits.append(f"{where}:{number}: {what}: {_redact(line, re.escape(value))}")
    return hits


def _redact(line: str, pattern: str) -> str:
    return re.sub(pattern, "<SECRET>", line)[:300]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state()
    if state is None:
        return
    texts = [(f"{nodeid} [{name}]", content) for nodeid, name, content in state["captured"]]
    basetemp = session.config._tmp_path_factory.getbasetemp() if hasattr(session.config, "_tmp_path_factory") else None
    log_files: list[Path] = sorted(Path(basetemp).rglob("*.log")) if basetemp else []
    texts += [(str(path), path.read_text(errors="replace")) for path in log_files]
    hits = scan(texts, needles())
    lines = sum(t.count("\n") + 1 for _, t in texts)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = f"log leak scan: {lines} log lines in {len(texts)} captures and stack logs, {len(hits)} leak(s)"
    if reporter is not None:
        reporter.write_sep("-", summary)
        for hit in hits[:50]:
            reporter.write_line(hit)
    if hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
