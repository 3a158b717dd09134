"""A browser for the local stack: follows redirects across Mailroom's pages, Slack's
sign-in and Google's consent with one cookie jar, as a person's browser does."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class _Stop(Exception):
    def __init__(self, url: str):
        super().__init__(url)
        self.url = url


class _StopAt(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but not to a URL whose path is `path` (see Browser.open_until)."""

    def __init__(self) -> None:
        self.path: str | None = None

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if self.path is not None and urllib.parse.urlsplit(newurl).path == self.path:
            raise _Stop(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Browser:
    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self._stop = _StopAt()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), self._stop)

    def open_until(self, url: str, path: str) -> str:
        """Follow `url`'s redirects up to, not into, the first URL whose path is `path`,
        and return that URL (open it later with this browser, its cookies intact)."""
        self._stop.path = path
        try:
            status, _ = self.open(url)
        except _Stop as stop:
            return stop.url
        finally:
            self._stop.path = None
        raise AssertionError(f"never redirected to {path} (ended with {status})")

    def open(self, url: str) -> tuple[int, str]:
        """GET `url`, following every redirect; the final status and page."""
        try:
            with self._opener.open(url, timeout=30) as response:  # loopback emulators and front only
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def connect_gmail(url: str) -> tuple[int, str]:
    """Press the Connect Gmail button in a fresh browser: sign in with Slack (as the
    emulator's signed-in user), consent at Google, land on Mailroom's result page."""
    return Browser().open(url)
