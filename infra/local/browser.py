"""A browser for the local stack: follows redirects across Mailroom's pages, Slack's
sign-in and Google's consent with one cookie jar, as a person's browser does."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.request


class Browser:
    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

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
