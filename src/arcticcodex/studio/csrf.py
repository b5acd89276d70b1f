"""Sessions and form tokens: what proves that a state-changing request came from the Studio's own page.

A browser attaches the Studio's cookies to a request that another site makes it send, so a cookie
alone proves nothing.  The proof is a *form token* that only the Studio's pages contain:

* a session is a random id in an HttpOnly, SameSite=Strict cookie, made on the first page a browser
  loads; nothing about it is stored on the server;
* the session's form token is HMAC-SHA256 of its id under a secret made when the process starts,
  embedded in every page (a hidden ``csrf_token`` input in each form, and a
  ``<meta name="csrf-token">`` for scripts, which send it as ``X-CSRF-Token``) and compared in
  constant time.

Another site cannot read a Studio page (the same-origin policy, and the Host allow-list against DNS
rebinding), so it cannot learn the token; it can set a session cookie (cookies are shared by every
port of 127.0.0.1), but without the secret it cannot compute that session's token.  A restart makes
a new secret, so pages loaded before it must be reloaded: the refusal says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

SESSION_COOKIE = "acx_studio_session"
FORM_FIELD = "csrf_token"  # the hidden input's name (also excluded from the fields a handler reads)
FORM_HEADER = "x-csrf-token"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 random bytes, base64url without padding
_form_token: ContextVar[str] = ContextVar("acx_studio_form_token", default="")


class FormTokens:
    """Makes session ids and checks the form tokens bound to them, under a per-process secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def is_session(value: str | None) -> bool:
        """Whether a cookie's value has the shape of a session id (anything else is ignored)."""
        return value is not None and _SESSION_ID.fullmatch(value) is not None

    def token_for(self, session: str) -> str:
        digest = hmac.new(self._secret, b"studio-form:" + session.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def matches(self, session: str, offered: str) -> bool:
        """Constant-time comparison of an offered token with the session's."""
        return hmac.compare_digest(self.token_for(session).encode(), offered.encode("utf-8", "replace"))


def current_form_token() -> str:
    """The form token of the request being served (empty outside a request)."""
    return _form_token.get()


@contextmanager
def form_token_of_request(token: str) -> Iterator[None]:
    """Make ``token`` the one pages render while the request is served (also in worker threads,
    which run with a copy of the request's context)."""
    reset = _form_token.set(token)
    try:
        yield
    finally:
        _form_token.reset(reset)
