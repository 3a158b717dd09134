"""A small threaded HTTP server base that every emulator builds on.

Every emulator also takes *transport faults* (see `TransportFault`): the next calls of
a method and path can answer an HTTP status, be held without an answer (a timeout) or
have their connection dropped (a reset), before or after the call took effect. They
are set from Python (`emulator.add_fault(...)`) or over HTTP with
`POST /_emulator/faults {"kind": "status" | "timeout" | "reset", "path": ..., ...}`
(a body without "kind" goes to the emulator's own fault API, if it has one).
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
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


FAULT_KINDS = ("status", "timeout", "reset")
MAX_HOLD_SECONDS = 30.0  # a timeout fault never holds a request longer than this


@dataclass
class TransportFault:
    """What happens to the next `times` requests whose path starts with `path` (a `*`
    in it stands for one path segment) and whose method is `method`, when given.

    - `status`: answer `status` with `body` (JSON) and `headers`, as a gateway would.
    - `timeout`: hold the request `seconds` (at most MAX_HOLD_SECONDS) without an answer,
      then close the connection: a client whose timeout is shorter sees its own timeout;
      a longer one sees the connection end unanswered (a load balancer's idle cut).
    - `reset`: close the connection at once with a TCP RST, no answer.

    With `after=True` the request is served first (it takes effect) and only its answer
    is replaced by the fault: the "it worked but the caller never heard" case.
    `on_match` runs when the fault fires (tests use it to kill a worker mid-call).
    """

    kind: str
    path: str = "/"
    method: str | None = None
    times: int = 1
    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 2.0
    after: bool = False
    skip: int = 0  # let this many matching requests through first ("after N calls")
    on_match: Callable[[], None] | None = None
    fired: int = 0
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        self.seconds = min(max(0.0, float(self.seconds)), MAX_HOLD_SECONDS)

    def matches(self, method: str, path: str) -> bool:
        return _path_matches(self.path, path) and (self.method is None or self.method.upper() == method.upper())

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> TransportFault:
        allowed = {"kind", "path", "method", "times", "status", "body", "headers", "seconds", "after", "skip"}
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**body)


def _path_matches(pattern: str, path: str) -> bool:
    """`path` starts with `pattern`, where a `*` in the pattern stands for one path
    segment (e.g. /gmail/v1/users/me/messages/*/attachments)."""
    if "*" not in pattern:
        return path.startswith(pattern)
    return re.match("[^/]*".join(re.escape(part) for part in pattern.split("*")), path) is not None


class TransportFaults:
    """The pending transport faults of one server; first match wins, each used `times` times."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[TransportFault] = []
        self.fired: list[tuple[str, str, str]] = []  # (kind, method, path) of each fault that fired
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request since the last clear

    def add(self, fault: TransportFault) -> TransportFault:
        with self._lock:
            self._pending.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self.fired.clear()
            self.seen.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(f.times - f.fired for f in self._pending)

    def take(self, method: str, path: str) -> TransportFault | None:
        with self._lock:
            self.seen.append((method, path))
            for fault in self._pending:
                if fault.matches(method, path):
                    fault.seen += 1
                    if fault.seen <= fault.skip:
                        return None
                    fault.fired += 1
                    if fault.fired >= fault.times:
                        self._pending.remove(fault)
                    self.fired.append((fault.kind, method, path))
                    return fault
        return None


def apply_fault(handler: BaseHTTPRequestHandler, fault: TransportFault) -> bool:
    """Carry out a timeout or reset on the handler's connection; True if it did
    (nothing more may be written), False for a status fault (the caller answers)."""
    if fault.on_match is not None:
        fault.on_match()
    if fault.kind == "status":
        return False
    if fault.kind == "timeout":
        time.sleep(fault.seconds)
    reset_connection(handler)
    return True


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with an RST (SO_LINGER 0), as a crashed peer or a middlebox does."""
    import struct

    handler.close_connection = True
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    handler.connection.close()


def fault_response(fault: TransportFault) -> Response:
    body = fault.body if fault.body is not None else {"error": "injected fault", "status": fault.status}
    return Response(fault.status, body, fault.headers)


class Emulator:
    """Serve `self.route(request) -> Response` on 127.0.0.1 in a daemon thread.

    Subclasses implement `route`. `start()` binds an ephemeral port unless one is given;
    `url` is the base URL with a trailing slash.
    """

    # Every emulator started in this process, so that the tests' log scan can learn the
    # tokens, codes and states they issued (tests/leakscan.py).
    started: ClassVar[list[Emulator]] = []

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()
        self.transport_faults = TransportFaults()

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
                fault = None
                if not parts.path.startswith("/_emulator/"):
                    fault = emulator.transport_faults.take(self.command, parts.path)
                if fault is not None and not fault.after:
                    if apply_fault(self, fault):
                        return
                    response = fault_response(fault)
                else:
                    try:
                        response = emulator.serve_control(request) or emulator.route(request)
                    except Exception as exc:  # an emulator bug should be visible, not hang a client
                        response = Response(500, {"error": f"emulator error: {exc!r}"})
                    if fault is not None:  # it took effect; only the answer is lost
                        if apply_fault(self, fault):
                            return
                        response = fault_response(fault)
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
        Emulator.started.append(self)
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

    # -- transport faults ----------------------------------------------------------------
    def add_fault(self, kind: str, path: str = "/", **options: Any) -> TransportFault:
        """Make the next matching requests fail at the transport; see `TransportFault`."""
        return self.transport_faults.add(TransportFault(kind, path, **options))

    def clear_faults(self) -> None:
        self.transport_faults.clear()

    def serve_control(self, request: Request) -> Response | None:
        """`POST /_emulator/faults` with a "kind" sets a transport fault (any emulator);
        `POST /_emulator/transport-faults/reset` clears them. Anything else: None."""
        if request.method != "POST":
            return None
        if request.path == "/_emulator/transport-faults/reset":
            self.clear_faults()
            return Response(200, {"ok": True})
        if request.path != "/_emulator/faults":
            return None
        try:
            body = request.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or "kind" not in body:
            return None  # the emulator's own fault API
        try:
            self.transport_faults.add(TransportFault.from_json(body))
        except (ValueError, TypeError) as exc:
            return Response(400, {"ok": False, "error": str(exc)})
        return Response(200, {"ok": True})

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
