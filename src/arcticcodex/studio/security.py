"""The Studio's guards: no other site, and no other name for this machine, may act in it.

The Studio runs on the user's machine with the user's vault, keys and money behind it, and the user's
browser visits other sites at the same time.  Those sites are the threat: they can make the browser
send requests to 127.0.0.1 (forms, ``fetch``, images), and a site whose DNS name they re-point at
127.0.0.1 (DNS rebinding) can even read the answers.  Each guard below is ASGI middleware, so every
route, including those added later, is covered without a handler doing anything:

* :class:`SecurityHeaders` — every response forbids framing, scripts, sniffing and cross-origin
  embedding, and sends no ``Referer`` beyond the Studio;
* :class:`HostAllowList` — a request whose ``Host`` is not one of the Studio's own names gets 421:
  under DNS rebinding the browser sends the attacker's name, so it is turned away;
* :class:`TokenGate` — with ``ARCTICCODEX_STUDIO_TOKEN`` set, every request carries the token (Bearer
  header or cookie); a ``?token=`` link is exchanged for the cookie by a redirect that drops it from
  the address bar, history and bookmarks;
* :class:`FormGuard` — a request that names another origin (``Origin``, ``Sec-Fetch-Site``) is
  refused with 403, except a plain link followed to a page; a state-changing request must carry its
  session's form token (:mod:`.csrf`), and its body is read only up to a limit (:mod:`.body`).

Refusals happen before the application sees the request, so a refused request has changed nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from .body import BodyTooLargeError, ClientGoneError, RequestBody
from .csrf import FORM_FIELD, FORM_HEADER, SESSION_COOKIE, FormTokens, form_token_of_request
from .form_errors import SUBMITTED
from .pages import message_page

TOKEN_COOKIE = "acx_studio_token"  # noqa: S105 - a cookie name
FORM_BODY_LIMIT = 1_000_000  # any state-changing request but an upload
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = {
    # Scripts only from the Studio's own files (.assets: no inline script, nothing a document or model
    # wrote); their requests (a run's live events, a streamed answer) only to the Studio; inline styles
    # are the Studio's own.
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on the Studio's own
    # form posts, which could then not be told apart from a sandboxed attacker's.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def refuse(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    """Answer with ``response``; a WebSocket handshake is closed instead (policy violation)."""
    if scope["type"] == "websocket":
        await WebSocketClose(code=1008)(scope, receive, send)
    else:
        await response(scope, receive, send)


# -- the Host allow-list -----------------------------------------------------------------------------


def canonical_host(name: str) -> str:
    """A host name lower-cased without a trailing dot or brackets; an IP address in its short form."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name


def host_of(header: str) -> str | None:
    """The host in a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), or None when malformed."""
    header = header.strip()
    if header.startswith("["):
        name, closed, rest = header[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = header.partition(":")
    if not name or not (port == "" or port.isdigit()):
        return None
    return canonical_host(name)


def studio_host_names(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names the Studio answers to: loopback's, the address it is bound to, and ``extra``.

    Bound to every interface (``0.0.0.0``, ``::``), the machine's own host name is added; its
    addresses must be named in ``extra`` (``--allow-host``), since the Studio cannot know which of
    them people will type.
    """
    names = {canonical_host(name) for name in LOOPBACK_NAMES}
    bound_name = canonical_host(bound)
    try:
        wildcard = ipaddress.ip_address(bound_name).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names.add(canonical_host(socket.gethostname()))
    elif bound_name:
        names.add(bound_name)
    for name in extra:
        host = host_of(name)
        if host:
            names.add(host)
    return frozenset(names)


class HostAllowList:
    """421 Misdirected Request for a ``Host`` that is not one of the Studio's names (DNS rebinding)."""

    def __init__(self, app: ASGIApp, *, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        if header is not None and host_of(header) in self.names:
            await self.app(scope, receive, send)
            return
        server = scope.get("server") or ("", None)
        address = f"http://127.0.0.1:{server[1]}/" if server[1] else "http://127.0.0.1/"
        shown = ", ".join(f"[{n}]" if ":" in n else n for n in sorted(self.names))
        named = repr(header[:100]) if header is not None else "no name at all"
        refusal = PlainTextResponse(
            f"Misdirected request: this ArcticCodex Studio answers to {shown}, and this request named "
            f"{named}, so it was not served (a page reaching the Studio through another name may be a "
            f"DNS-rebinding attack).  Open {address} instead; to serve another name, start "
            "the Studio with `arcticcodex studio --allow-host NAME`.\n",
            status_code=421,
        )
        await refuse(scope, receive, send, refusal)


# -- the access token (beyond loopback) --------------------------------------------------------------


class TokenGate:
    """Every request carries the Studio's token (``Authorization: Bearer`` or the cookie), or gets 401.

    ``?token=…`` on a GET is checked and exchanged for the cookie by a 303 redirect to the same
    address without it, so the token stays out of the address bar, history, bookmarks and logs.  The
    cookie is SameSite=Lax, so following a link to the Studio from elsewhere still finds it signed in;
    that only ever reads a page, since every state-changing request also needs the form token.
    """

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _valid(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode("utf-8", "replace"), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        in_query = connection.query_params.get("token")
        if in_query is not None and scope.get("method") in ("GET", "HEAD"):
            if self._valid(in_query):
                redirect = RedirectResponse(_without_token(scope), status_code=303)
                redirect.set_cookie(TOKEN_COOKIE, in_query, httponly=True, samesite="lax")
                await redirect(scope, receive, send)
                return
        else:
            header = connection.headers.get("authorization", "")
            bearer = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
            if self._valid(bearer) or self._valid(connection.cookies.get(TOKEN_COOKIE)):
                await self.app(scope, receive, send)
                return
        refusal = message_page(
            "Token needed",
            "This Studio is protected by a token: open it once with the address it printed "
            "(…/?token=…), or send the header Authorization: Bearer TOKEN.",
            401,
        )
        await refuse(scope, receive, send, refusal)


def _without_token(scope: Scope) -> str:
    """The request's own path and query without ``token``: relative, so it cannot point elsewhere."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"])
    path = "/" + path.lstrip("/\\").replace("\\", "%5C")  # never "//host" or "/\\host": another site
    query = [(k, v) for k, v in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)]
    kept = urlencode([(k, v) for k, v in query if k != "token"])
    return f"{path}?{kept}" if kept else path


# -- other sites, form tokens and body limits --------------------------------------------------------


class FormGuard:
    """Refuses cross-site requests and state-changing requests without their session's form token.

    * ``Origin`` naming another origin (or ``null``): 403, whatever the method;
    * ``Sec-Fetch-Site: cross-site`` or ``same-site`` (another port of 127.0.0.1 is same-site): 403,
      except a GET that navigates to a page (a link followed from elsewhere);
    * POST, PUT, PATCH, DELETE: the session cookie and its form token (``X-CSRF-Token`` header or
      the form's ``csrf_token`` field) are required; the body is read only up to the path's limit
      (``body_limits``, else :data:`FORM_BODY_LIMIT`), and a longer one is refused with 413.

    Every request without a session gets one (a new cookie), and the session's form token is made
    available to the pages (:func:`.csrf.current_form_token`).  A WebSocket handshake from another
    origin is closed (there are no WebSocket routes yet; a later one is covered all the same).
    """

    def __init__(self, app: ASGIApp, *, tokens: FormTokens, body_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.tokens = tokens
        self.body_limits = dict(body_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method, path = scope.get("method", "GET"), scope["path"]
        address = f"{scope['scheme']}://{headers.get('host', '127.0.0.1')}/"
        foreign = _foreign_initiator(scope, headers)
        if foreign:
            await self._refuse(
                scope,
                receive,
                send,
                403,
                f"Refused: {foreign} tried to send {method} {path} to this Studio; the Studio only acts on "
                f"requests from its own pages, so nothing was done.  Open {address} and use its pages.",
            )
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        presented = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
        session = presented if FormTokens.is_session(presented) else None
        if method not in SAFE_METHODS:
            checked = await self._checked_body(scope, receive, send, headers, session, address)
            if checked is None:
                return
            receive = checked.replay()
            if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                scope[SUBMITTED] = checked.data  # kept for a failed form's page (see .form_errors)
        # A link followed from another site arrives without the SameSite=Strict cookie the browser may well
        # hold: a new one set now would replace it and break the forms of the user's other Studio tabs.
        arrived_from_elsewhere = headers.get("sec-fetch-site") in ("cross-site", "same-site")
        fresh = session is None and not arrived_from_elsewhere
        session = session or self.tokens.new_session()

        async def send_with_session(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                value = f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict"
                MutableHeaders(scope=message).append("set-cookie", value)
            await send(message)

        with form_token_of_request(self.tokens.token_for(session)):
            await self.app(scope, receive, send_with_session)

    async def _checked_body(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, session: str | None, address: str
    ) -> RequestBody | None:
        """The body of a state-changing request whose form token matched, or None once refused."""
        what = f"{scope['method']} {scope['path']}"
        reload = f"Reload the page at {address} and submit again."
        if session is None:
            message = (
                f"Refused: {what} came without the Studio's session cookie, so it cannot be told apart "
                f"from a request forged by another site; nothing was done.  {reload}  (Cookies for this "
                "address must be allowed.)"
            )
            await self._refuse(scope, receive, send, 403, message)
            return None
        limit = self.body_limits.get(scope["path"], FORM_BODY_LIMIT)
        declared = headers.get("content-length", "")
        try:
            body = None if declared.isdigit() and int(declared) > limit else await RequestBody.read(receive, limit)
        except BodyTooLargeError:
            body = None
        except ClientGoneError:
            return None
        if body is None:
            advice = LARGE_BODY_ADVICE.get(scope["path"], "Send less: a form takes up to that much.")
            message = (
                f"Refused: {what} is over {size_text(limit)}, the Studio's limit for it; it was not read "
                f"to the end and nothing was done.  {advice}"
            )
            await self._refuse(scope, receive, send, 413, message)
            return None
        offered = headers.get(FORM_HEADER) or body.form_field(headers.get("content-type", ""), FORM_FIELD)
        if offered is None or not self.tokens.matches(session, offered):
            message = (
                f"Refused: {what} did not carry this page's form token (the page may be from before the "
                f"Studio restarted, or the request from another site); nothing was done.  {reload}"
            )
            await self._refuse(scope, receive, send, 403, message)
            return None
        return body

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        await refuse(scope, receive, send, message_page("Refused", message, status))


# what to do instead when an upload is over its path's limit: the command line reads a file of any size
LARGE_BODY_ADVICE = {
    "/vault/import": "Import a large file with `arcticcodex vault import PATH`.",
    "/runs/new": "Start a run on a large prompts file with `arcticcodex distill --prompts FILE --out DIR`.",
}


def _foreign_initiator(scope: Scope, headers: Headers) -> str | None:
    """Who, other than the Studio's own pages, started this request; None when nobody else did."""
    origin = headers.get("origin")
    own = f"{scope['scheme']}://{headers.get('host', '')}".lower()
    if origin is not None and origin.lower() != own:
        return f"a page from {origin[:100]}" if origin != "null" else "a page with a hidden origin"
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        navigates = headers.get("sec-fetch-mode") == "navigate" and headers.get("sec-fetch-dest") == "document"
        if scope.get("method") not in ("GET", "HEAD") or not navigates:
            return f"a page from another {'site' if site == 'cross-site' else 'port or subdomain'}"
    return None


def size_text(size: int) -> str:
    """``20 MB``, ``64 KB``, ``100 bytes``: a limit as people say it."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if size >= scale:
            return f"{size / scale:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{size} bytes"
