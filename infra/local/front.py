"""A local HTTP front that does what API Gateway (HTTP API, payload 2.0) does.

Maps the template's routes to the functions, turns each request into the 2.0 event
(base64-encoding non-text bodies, as API Gateway does: Slack's form-encoded
interactions arrive that way) and the function's answer back into HTTP.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra.local.functions import FunctionPool, InvocationError, LocalFunction

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def api_gateway_event(
    method: str, target: str, headers: Mapping[str, str], body: bytes, host: str, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    parts = urlsplit(target)
    lowered: dict[str, str] = {}
    for name, value in headers.items():  # repeated headers are comma-joined in 2.0
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    content_type = lowered.get("content-type", "")
    is_text = not body or content_type.startswith(_TEXT_TYPES)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {parts.path}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {parts.path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode(),
        "isBase64Encoded": not is_text,
    }
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "cookie" in lowered:  # 2.0 moves them out of the headers into a list
        event["cookies"] = [c.strip() for c in lowered.pop("cookie").split(";") if c.strip()]
    return event


class LocalFront:
    def __init__(
        self, routes: Mapping[tuple[str, str], LocalFunction | FunctionPool], host: str = "127.0.0.1", port: int = 0
    ):
        self._routes = dict(routes)
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="LocalFront", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; without TCP_NODELAY, Nagle and the
            # client's delayed ACK stall each response by ~40 ms.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_PAYLOAD_BYTES:
                    self._answer(413, {"Content-Type": "application/json"}, b'{"message":"Request Entity Too Large"}')
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                function = front._routes.get((self.command, path))
                if function is None:
                    self._answer(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')
                    return
                host = self.headers.get("Host") or "127.0.0.1"
                headers = {**dict(self.headers.items()), "X-Forwarded-Proto": "http"}
                event = api_gateway_event(self.command, self.path, headers, body, host, self.client_address[0])
                try:
                    result = function.invoke(event)
                except InvocationError:
                    self._answer(500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}')
                    return
                self._answer(*_to_http(result))

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def _answer(self, status: int, headers: Mapping[str, str] | list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items() if isinstance(headers, Mapping) else headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (Slack does after 3 s)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _to_http(result: Any) -> tuple[int, dict[str, str] | list[tuple[str, str]], bytes]:
    """Payload 2.0's response rules: a dict with statusCode, or anything else as JSON 200."""
    if isinstance(result, dict) and "statusCode" in result:
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        # One Set-Cookie header per cookie: they must not be comma-joined.
        headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        return int(result["statusCode"]), headers, raw
    return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
