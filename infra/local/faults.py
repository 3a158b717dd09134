"""A fault proxy in front of embedded AWS (moto's server), for fault-injection tests.

Functions of the local stack reach AWS through `AWS_ENDPOINT_URL`; with the proxy on,
that URL is this proxy's, and every call is forwarded to moto unchanged unless a fault
matches it. A fault names a service (`dynamodb`, `kms`, `secretsmanager`, `sqs`) and
optionally an operation (`PutItem`, `Decrypt`, `GetSecretValue`, `SendMessage`), read
from `X-Amz-Target` (the JSON protocols) or the Query `Action`, and makes the next
`times` matching calls:

- `error`: answer with AWS's own error shape for that protocol and code
  (`ThrottlingException`, `ProvisionedThroughputExceededException`,
  `InternalServerError`, `ServiceUnavailable`, KMS `AccessDeniedException`,
  `DisabledException`, ...; see `ERROR_STATUS`). A conditional-check failure is the
  database answering, not a fault, and is refused here.
- `timeout`: hold the call `seconds` (bounded) and close the connection unanswered.
- `reset`: drop the connection with an RST.

`after=True` forwards the call first (it takes effect in moto) and loses only the
answer. `skip=N` lets N matching calls through first. `body_contains` narrows a fault to
the calls whose request body holds that text (a table, an index, a key prefix), so a
fault hits one named call whatever else the same operation is used for. `on_match` runs when the fault
fires, e.g. `LocalFunction.kill` to crash the worker at that exact call. Loopback only.

    proxy = AwsFaultProxy(aws.endpoint_url).start()
    proxy.fail("dynamodb", "PutItem", code="ProvisionedThroughputExceededException", times=12)
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local.emulators.base import MAX_HOLD_SECONDS, reset_connection

SERVICES = ("dynamodb", "kms", "secretsmanager", "sqs")
KINDS = ("error", "timeout", "reset")

# The HTTP status AWS answers each error code with.
ERROR_STATUS: dict[str, int] = {
    # throttling (botocore retries these with backoff)
    "ThrottlingException": 400,
    "ProvisionedThroughputExceededException": 400,
    "RequestLimitExceeded": 400,
    "RequestThrottled": 400,
    # the service failing
    "InternalServerError": 500,
    "InternalFailure": 500,
    "InternalError": 500,
    "InternalServiceError": 500,
    "KMSInternalException": 500,
    "ServiceUnavailable": 503,
    # refusals that are not transient
    "AccessDeniedException": 400,
    "DisabledException": 400,
    "KMSInvalidStateException": 400,
    "KeyUnavailableException": 500,
    "ResourceNotFoundException": 400,
}
# Per service: what "throttle" and "error" mean in the fault matrix.
THROTTLE_CODE = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "kms": "ThrottlingException",
    "secretsmanager": "ThrottlingException",
    "sqs": "RequestThrottled",
}
ERROR_CODE = {
    "dynamodb": "InternalServerError",
    "kms": "KMSInternalException",
    "secretsmanager": "InternalServiceError",
    "sqs": "InternalError",
}
_TARGET_PREFIX = {
    "DynamoDB_20120810": "dynamodb",
    "TrentService": "kms",
    "secretsmanager": "secretsmanager",
    "AmazonSQS": "sqs",
}
_JSON_VERSION = {"dynamodb": "1.0", "sqs": "1.0", "kms": "1.1", "secretsmanager": "1.1"}
_TYPE_PREFIX = {
    "dynamodb": "com.amazonaws.dynamodb.v20120810#",
    "sqs": "com.amazonaws.sqs#",
    "kms": "",
    "secretsmanager": "",
}


@dataclass
class AwsFault:
    service: str
    operation: str | None = None  # None: any operation of the service
    kind: str = "error"
    code: str = "ServiceUnavailable"
    times: int = 1
    seconds: float = 2.0
    after: bool = False
    skip: int = 0
    body_contains: str | None = None  # only calls whose request body holds this text
    on_match: Callable[[], None] | None = None
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValueError(f"service must be one of {SERVICES}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if "ConditionalCheckFailed" in self.code or "TransactionCanceled" in self.code:
            raise ValueError("a conditional-check failure is an answer, not a fault")
        if self.kind == "error" and self.code not in ERROR_STATUS:
            raise ValueError(f"unknown error code {self.code!r}; known: {sorted(ERROR_STATUS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        self.seconds = min(max(0.0, float(self.seconds)), MAX_HOLD_SECONDS)

    def matches(self, service: str, operation: str, body: bytes = b"") -> bool:
        if self.body_contains is not None and self.body_contains.encode() not in body:
            return False
        return service == self.service and (self.operation is None or self.operation == operation)


@dataclass(frozen=True)
class AwsCall:
    service: str
    operation: str
    fault: str | None  # the fault kind that fired on it, if any


def identify(headers: dict[str, str], body: bytes) -> tuple[str, str, str]:
    """(service, operation, protocol) of one AWS request; protocol is "json" or "query"."""
    target = headers.get("x-amz-target", "")
    if target and "." in target:
        prefix, operation = target.rsplit(".", 1)
        service = _TARGET_PREFIX.get(prefix, prefix.lower())
        return service, operation, "json"
    # Query protocol (SQS's older one): Action in the form body; the service from the
    # SigV4 credential scope (.../<region>/<service>/aws4_request).
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    operation = (form.get("Action") or [""])[0]
    scope = headers.get("authorization", "").split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    service = scope[3] if len(scope) >= 5 else ""
    return service, operation, "query"


def error_body(service: str, code: str, protocol: str, message: str) -> tuple[int, dict[str, str], bytes]:
    status = ERROR_STATUS[code]
    request_id = str(uuid.uuid4())
    if protocol == "query":
        kind = "Sender" if status < 500 else "Receiver"
        xml = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml.encode()
    headers = {
        "Content-Type": f"application/x-amz-json-{_JSON_VERSION.get(service, '1.0')}",
        "x-amzn-RequestId": request_id,
        "x-amzn-ErrorType": code,
    }
    if service == "sqs":  # SQS's JSON protocol also carries the Query error code
        headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
    body = {"__type": _TYPE_PREFIX.get(service, "") + code, "message": message}
    return status, headers, json.dumps(body).encode()


class AwsFaultProxy:
    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0):
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy forwards to loopback only")
        self._upstream = (parts.hostname, parts.port or 80)
        self._lock = threading.Lock()
        self._faults: list[AwsFault] = []
        self.calls: list[AwsCall] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="AwsFaultProxy", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> AwsFaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- faults ------------------------------------------------------------------------
    def fail(self, service: str, operation: str | None = None, **options: Any) -> AwsFault:
        fault = AwsFault(service, operation, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.calls.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(f.times - f.fired for f in self._faults)

    def fired(self) -> list[AwsCall]:
        with self._lock:
            return [c for c in self.calls if c.fault]

    def _take(self, service: str, operation: str, body: bytes = b"") -> AwsFault | None:
        with self._lock:
            found = None
            for fault in self._faults:
                if fault.matches(service, operation, body):
                    fault.seen += 1
                    if fault.seen <= fault.skip:
                        break
                    fault.fired += 1
                    if fault.fired >= fault.times:
                        self._faults.remove(fault)
                    found = fault
                    break
            self.calls.append(AwsCall(service, operation, found.kind if found else None))
            return found

    # -- serving -----------------------------------------------------------------------
    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                lowered = {k.lower(): v for k, v in headers.items()}
                service, operation, protocol = identify(lowered, body)
                fault = None if self.path.startswith("/moto-api") else proxy._take(service, operation, body)
                answer = None
                if fault is None or fault.after:  # `after`: the call takes effect first
                    answer = proxy._forward(self.command, self.path, headers, body)
                if fault is not None and fault.on_match is not None:
                    fault.on_match()
                if fault is not None:
                    if fault.kind == "timeout":
                        time.sleep(fault.seconds)
                    if fault.kind in ("timeout", "reset"):
                        reset_connection(self)
                        return
                    message = f"injected {fault.code} ({operation})"
                    status, fault_headers, payload = error_body(service, fault.code, protocol, message)
                    self._answer(status, list(fault_headers.items()), payload)
                    return
                assert answer is not None
                self._answer(*answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def _answer(self, status: int, headers: list, payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
