"""A form's error shown beside the form, on the page it was sent from — not on a page of its own.

When a form post fails with a visitor's mistake (a 4xx :class:`~arcticcodex.errors.ArcticCodexError`),
the error handler keeps the message and the fields that were sent (:class:`FormErrors`, in memory, for
a few minutes) and answers with a redirect back to the page the form was on, naming the kept error in
the ``form_error`` query parameter.  That page is rendered as usual; :class:`FormErrorContext` makes
the kept error the request's, and the templates show it beside the form whose ``action`` failed
(``form_error_for(action)``, the ``form_error`` macro of ``_macros.html``) with what the visitor typed
still in the fields (``form_value(action, name, default)``).

Why a kept error and not the message in the address: a link could then make the Studio show any text
as if it were its own.  Here the parameter is a random name the Studio made, of an error it kept for
the session that caused it, and an unknown or expired name shows nothing.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .csrf import FORM_FIELD, SESSION_COOKIE

__all__ = ["FormError", "FormErrorContext", "FormErrors", "form_error_for", "form_value", "submitted_fields"]

QUERY_PARAMETER = "form_error"
KEPT_SECONDS = 600.0
KEPT_AT_MOST = 512
SUBMITTED = "arcticcodex.submitted_form"  # where FormGuard leaves a checked urlencoded body in the scope
_current: ContextVar[FormError | None] = ContextVar("acx_studio_form_error", default=None)


@dataclass(frozen=True)
class FormError:
    """A failed form: where it posted, what went wrong, and what was typed into it."""

    action: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    session: str = ""
    kept_at: float = 0.0


class FormErrors:
    """The errors of recent failed forms, by a random name, each for the session that caused it."""

    def __init__(self, *, kept_seconds: float = KEPT_SECONDS, kept_at_most: int = KEPT_AT_MOST) -> None:
        self._kept: OrderedDict[str, FormError] = OrderedDict()
        self._lock = threading.Lock()
        self._kept_seconds = kept_seconds
        self._kept_at_most = kept_at_most

    def keep(self, error: FormError) -> str:
        name = secrets.token_urlsafe(12)
        with self._lock:
            self._kept[name] = error
            while len(self._kept) > self._kept_at_most:
                self._kept.popitem(last=False)
        return name

    def find(self, name: str, session: str) -> FormError | None:
        """The error kept under ``name`` for ``session``, if it is still kept."""
        with self._lock:
            error = self._kept.get(name)
        if error is None or error.session != session or time.monotonic() - error.kept_at > self._kept_seconds:
            return None
        return error

    def redirect_back(self, connection: HTTPConnection, message: str) -> Response | None:
        """A redirect to the page the failed form was sent from, with the error kept for it; None when
        that page is not known (no ``Referer`` of this Studio: a script, not a page, sent the form)."""
        referer = urlsplit(connection.headers.get("referer", ""))
        own = urlsplit(str(connection.url))
        if not referer.path.startswith("/") or (referer.scheme, referer.netloc) != (own.scheme, own.netloc):
            return None
        session = connection.cookies.get(SESSION_COOKIE, "")
        error = FormError(connection.url.path, message, submitted_fields(connection.scope), session, time.monotonic())
        query = [(key, value) for key, value in parse_qsl(referer.query) if key != QUERY_PARAMETER]
        query.append((QUERY_PARAMETER, self.keep(error)))
        return RedirectResponse(f"{referer.path}?{urlencode(query)}", status_code=303)


def submitted_fields(scope: Scope) -> dict[str, str]:
    """The fields of the urlencoded form this request sent (none for a file upload), the form token left out."""
    body = scope.get(SUBMITTED)
    if not isinstance(body, bytes):
        return {}
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=1000)
    return {key: value for key, value in pairs if key != FORM_FIELD}


class FormErrorContext:
    """Makes the error named by ``?form_error=`` (kept for this session) the one the page shows."""

    def __init__(self, app: ASGIApp, *, errors: FormErrors) -> None:
        self.app = app
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        name = connection.query_params.get(QUERY_PARAMETER)
        error = None
        if name:
            error = self.errors.find(name, connection.cookies.get(SESSION_COOKIE, ""))
        with _showing(error):
            await self.app(scope, receive, send)


@contextmanager
def _showing(error: FormError | None) -> Iterator[None]:
    reset = _current.set(error)
    try:
        yield
    finally:
        _current.reset(reset)


def form_error_for(action: str) -> str:
    """The message of the failed form that posted to ``action``, or "" (a template global)."""
    error = _current.get()
    return error.message if error is not None and error.action == action else ""


def form_value(action: str, name: str, default: object = "") -> str:
    """What was typed into field ``name`` of the failed form that posted to ``action``, else ``default``."""
    error = _current.get()
    if error is not None and error.action == action and name in error.fields:
        return error.fields[name]
    return "" if default is None else str(default)
