"""`python -m infra.bench.search`: Gmail round trips of one search_emails, before and after
batching.

The Google/Gmail emulator serves a seeded mailbox; `GmailApiMailbox` talks to it through
googleapiclient with a real token. "Before" is what search did until issue 13: messages.list,
then one messages.get (format=metadata) per result; "after" is `GmailApiMailbox.search`:
messages.list, then one POST /batch/gmail/v1 carrying every get. Each HTTP request is
counted at the emulator. Latency is measured at loopback, and again with each HTTP
request held `RTT_MS` in the emulator, a stand-in for the round trip to Google that
loopback lacks (the figure that matters in Lambda).

Prints a table and writes .local/bench-search.json.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from google.oauth2.credentials import Credentials

from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.google import GoogleEmulator
from infra.local.template import ROOT
from mailroom.adapters.gmail_api import _SUMMARY_HEADERS, GmailApiMailbox
from mailroom.mail.decode import summary_line

RESULT_PATH = ROOT / ".local/bench-search.json"
QUERY, RESULTS, RUNS, RTT_MS = "in:inbox", 20, 7, 40


def one_by_one(mailbox: GmailApiMailbox, query: str, max_results: int) -> list[dict[str, Any]]:
    """The search as it was: one messages.get per result."""
    users = mailbox._service.users()
    listed = mailbox._call(users.messages().list(userId="me", q=query, maxResults=max_results))
    return [
        summary_line(
            mailbox._call(
                users.messages().get(userId="me", id=ref["id"], format="metadata", metadataHeaders=_SUMMARY_HEADERS)
            )
        )
        for ref in listed.get("messages", [])[:max_results]
    ]


def measure(google: GoogleEmulator, mailbox: GmailApiMailbox, how: Any) -> dict[str, Any]:
    calls, times, found = [], [], 0
    for _ in range(RUNS):
        before = len([c for c in google.calls if not c.get("batched")])
        start = time.perf_counter()
        found = len(how(mailbox, QUERY, RESULTS))
        times.append((time.perf_counter() - start) * 1000)
        calls.append(len([c for c in google.calls if not c.get("batched")]) - before)
    return {"http_requests": max(calls), "results": found, "median_ms": statistics.median(times)}


def main() -> None:
    google = GoogleEmulator().start()
    try:
        GmailMailbox(google).seed()
        granted = google.issue_tokens()
        credentials = Credentials(granted["access_token"])
        mailbox = GmailApiMailbox(credentials, google.gmail_api_url, google.account_email)
        plain = google.route

        def held(request: Any) -> Any:
            time.sleep(RTT_MS / 1000)
            return plain(request)

        results: dict[str, Any] = {}
        for setting in ("loopback", f"rtt_{RTT_MS}ms"):
            google.route = held if setting != "loopback" else plain  # type: ignore[method-assign]
            results[setting] = {
                "before_one_get_per_result": measure(google, mailbox, one_by_one),
                "after_one_batch": measure(google, mailbox, GmailApiMailbox.search),
            }
    finally:
        google.stop()
    RESULT_PATH.parent.mkdir(exist_ok=True)
    RESULT_PATH.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nsearch_emails ({RESULTS} results): Gmail HTTP requests and latency, median of {RUNS}")
    for setting, rows in results.items():
        for name, row in rows.items():
            print(f"  {setting:<12}{name:<28}{row['http_requests']:>4} requests {row['median_ms']:>9.1f} ms")


if __name__ == "__main__":
    main()
