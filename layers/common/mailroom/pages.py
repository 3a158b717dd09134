"""The small HTML pages the OAuth callback answers a browser with."""

from __future__ import annotations

from html import escape

from mailroom.http import HttpResponse

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Mailroom: {title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1d1c1d}}
h1{{font-size:1.4rem}} .ref{{color:#616061;font-size:.85rem}}</style></head>
<body><h1>{icon} {title}</h1><p>{message}</p>{reference}</body></html>
"""


def page(status: int, title: str, message: str, *, ok: bool = False, reference: str | None = None) -> HttpResponse:
    body = _PAGE.format(
        icon="✅" if ok else "⚠️",
        title=escape(title),
        message=escape(message),
        reference=f'<p class="ref">Reference: {escape(reference)}</p>' if reference else "",
    )
    # The URL carried a code and state: keep it out of caches and other sites' referrers.
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
    return HttpResponse(status, body, "text/html; charset=utf-8", headers)
