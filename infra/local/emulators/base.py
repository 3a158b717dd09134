"""A small threaded HTTP server base that every emulator builds on."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


class Request:
    """What an emulator route sees of one HTTP request."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lower-cased names
        self.body = body

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        """The body as form fields, or JSON object fields, whichever it is."""
        content_type = self.headers.get("content-type", "")
        if "json" in content_type:
            data = json.loads(self.body or b"{}")
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Response:
    def __init__(self, status: int = 200, body: bytes | str | Any = b"", headers: dict[str, str] | None = None):
        # Faults: answer nothing and reset the connection (the client sees ECONNRESET), or
        # close it cleanly without an answer (as a proxy dropping an idle request does).
        self.reset = False
        self.hang_up = False
        # Send only this many bytes of the body (its full length announced), then close:
        # a connection lost mid-answer, as in a stream cut off.
        self.cut_after: int | None = None
        self.status = status
        self.headers = dict(headers or {})
        if isinstance(body, bytes):
            self.body = body
        elif isinstance(body, str):
            self.body = body.encode()
            self.headers.setdefault("Content-Type", "text/html; charset=utf-8")
        else:
            self.body = json.dumps(body).encode()
            self.headers.setdefault("Content-Type", "application/json; charset=utf-8")


class Emulator:
    """Serve `self.route(request) -> Response` on 127.0.0.1 in a daemon thread.

    Subclasses implement `route`. `start()` binds an ephemeral port unless one is given;
    `url` is the base URL with a trailing slash.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Self:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; without TCP_NODELAY, Nagle and the
            # client's delayed ACK stall each response by ~40 ms.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                try:
                    response = emulator.route(request)
                except Exception as exc:  # an emulator bug should be visible, not hang a client
                    response = Response(500, {"error": f"emulator error: {exc!r}"})
                if response.reset:
                    # Drop the connection with a TCP RST and no answer, as a network fault would.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if response.hang_up:
                    self.close_connection = True
                    return
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if response.cut_after is not None:
                    self.wfile.write(response.body[: response.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        # serve_forever notices shutdown() only on its 0.5 s poll; throwaway connections
        # wake it at once, so tests that start and stop an emulator do not pay for it.
        address = (str(server.server_address[0]), int(server.server_address[1]))
        stopped = threading.Event()

        def wake() -> None:
            while not stopped.wait(0.01):
                try:
                    socket.create_connection(address, timeout=0.5).close()
                except OSError:
                    return

        threading.Thread(target=wake, name=f"{type(self).__name__}-stop", daemon=True).start()
        try:
            server.shutdown()
            server.server_close()
        finally:
            stopped.set()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/"

    # -- routing ---------------------------------------------------------------------
    def route(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError


def serve_until_interrupted(emulator: Emulator, banner: Callable[[], str]) -> None:
    """Run one emulator on its own (`python -m infra.local.emulators.X`) until Ctrl-C;
    `banner` is printed once it listens (its URL is known only then)."""
    emulator.start()
    print(banner(), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
