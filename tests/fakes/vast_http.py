"""The HTTP side of the fake Vast API: answers and errors in Vast's shapes, parsed requests, the request log, faults.

Why its own module: the offer search, the instance records and the route handlers all refuse bad input with the
same ``ApiError`` and answer through the same helpers, and the server plumbing (keep-alive HTTP/1.1 that can hang
up or answer a 429 on demand) is the same whatever the routes do; ``vast_server`` puts the pieces together.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakes.vast_server import FakeVastServer

HOST = "127.0.0.1"
Response = tuple[int, list[tuple[str, str]], bytes]

_FAULTS = frozenset({"429", "429-json", "429-quota", "500", "502", "503", "504", "410", "drop"})
# processed, then the answer is spoiled: the work is done at Vast, but the client never learns its result
_PROCESSED_FAULTS = frozenset({"processed-drop", "processed-not-json", "processed-no-id"})
_SLOW = re.compile(r"slow:\d+(\.\d+)?")
# "429-retry-date:N": a rate limit whose Retry-After is an HTTP-date at least N real seconds ahead
_RETRY_DATE = re.compile(r"429-retry-date:\d+")
_NGINX = (
    "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center><hr><center>nginx</center></body></html>"
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it, with the status it answered; tests assert on what clients really sent."""

    method: str
    path: str
    query: dict[str, str]  # the last value of each name, URL-decoded; JSON-valued parameters stay JSON text
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when empty or not JSON
    status: int  # 0 when the connection was dropped without an answer
    fault: str | None
    timestamp: float


def check_fault(fault: str) -> str:
    """Reject unknown fault names when injected, so a typo fails the test instead of silently passing."""
    if fault in _FAULTS or fault in _PROCESSED_FAULTS or _SLOW.fullmatch(fault) or _RETRY_DATE.fullmatch(fault):
        return fault
    raise ValueError(
        f"unknown fault {fault!r}; known: {sorted(_FAULTS | _PROCESSED_FAULTS)}, "
        "slow:SECONDS and 429-retry-date:SECONDS"
    )


class ApiError(Exception):
    """An error answer in Vast's shape: ``{"success": false, "error": code, "msg": text, ...}``."""

    def __init__(self, status: int, code: str, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.status, self.body = status, {"success": False, "error": code, "msg": msg, **extra}


def _json(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return status, [("Content-Type", "application/json"), *(headers or [])], json.dumps(payload).encode()


def _text(status: int, text: str, kind: str = "text/plain") -> Response:
    return status, [("Content-Type", kind)], text.encode()


class _Request:
    """What a route handler reads of a request: its query parameters and its body, parsed on demand."""

    def __init__(self, query: dict[str, str], raw: bytes) -> None:
        self.query, self.raw = query, raw

    def body(self) -> dict[str, Any]:
        """The JSON object body, or a 400 ``invalid_request`` the way Vast answers garbage."""
        try:
            body = json.loads(self.raw) if self.raw.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "Invalid json body")
        return body

    def json_param(self, name: str, default: Any) -> Any:
        text = self.query.get(name)
        if text is None or text == "":
            return default
        try:
            return json.loads(text)
        except ValueError:
            raise ApiError(400, "invalid_args", f"{name} must be JSON") from None


def _fault_response(fault: str, path: str, now: float) -> Response | None:
    """The answer an injected fault gives instead of the real one (None: drop the connection); ``now`` is fake time."""
    if fault == "drop":
        return None
    if fault == "429":
        return _text(429, "API requests too frequent")
    if _RETRY_DATE.fullmatch(fault):  # an HTTP-date in real time (the client's clock), not the fake's time
        moment = email.utils.formatdate(math.ceil(time.time()) + int(fault.partition(":")[2]), usegmt=True)
        return _json(429, {"detail": "API requests too frequent"}, [("Retry-After", moment)])
    if fault == "429-json":
        return _json(429, {"detail": "API requests too frequent endpoint threshold=1.0"})
    if fault == "429-quota":
        today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        reset = str(int((today + timedelta(days=1)).timestamp()))
        body = {"success": False, "error": "search_quota_exceeded", "msg": "Daily search quota exceeded"}
        return _json(429, body, [("X-RateLimit-Reset", reset)])
    if fault == "500":
        return _json(500, {"success": False, "error": "server_error", "msg": "Internal Server Error"})
    if fault == "410":
        if "/asks/" in path:
            msg = f"Offer {path.rstrip('/').rsplit('/', 1)[-1]} is no longer available: it has already been rented."
            return _json(410, {"success": False, "error": "no_such_ask", "msg": msg})
        return _json(410, {"success": False, "error": "gone", "msg": "Use /api/v1/instances/ instead"})
    status = int(fault)  # 502, 503, 504: the gateway's HTML page, not JSON
    return _text(status, _NGINX.format(f"{status} {HTTPStatus(status).phrase}"), "text/html")


def spoil_answer(fault: str, response: Response) -> Response | None:
    """The answer a ``processed-*`` fault gives after the request was really carried out (None: hang up).

    ``processed-not-json`` is a 200 that is not JSON (a proxy's page); ``processed-no-id`` is Vast's JSON
    without ``new_contract``, the instance id a create answers with.
    """
    if fault == "processed-drop":
        return None
    status, _headers, payload = response
    if fault == "processed-not-json":
        return _text(200, "<html><body>Service temporarily rerouted</body></html>", "text/html")
    try:
        body = json.loads(payload)
    except ValueError:
        return response
    if isinstance(body, dict):
        body.pop("new_contract", None)
    return _json(status, body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeVastServer) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer is not news; anything else is a bug in the fake and is shown."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as Vast's own front end; all the work is in ``FakeVastServer.handle``."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-vast/1.0"
    sys_version = ""
    timeout = 30
    wbufsize = 1 << 16  # headers and body leave in one write: no 40 ms delayed-ACK stall on keep-alive
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        self.server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is the record; stderr stays quiet

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.fake.handle(self.command, self.path, headers, raw)
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, extra, payload = response
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()
