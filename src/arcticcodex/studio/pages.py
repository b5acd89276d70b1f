"""Rendering the Studio's pages, and the texts they show about the machine they run on.

Every page is rendered here, so two things hold for all of them:

* the form token of the request's session (see :mod:`.csrf`) is in the context as ``csrf_token``,
  which every ``<form method="post">`` carries as a hidden input (``tests/test_studio_guard.py``
  checks each template);
* a name a template uses but its page did not pass is an error (Jinja's ``StrictUndefined``), not an
  empty cell: a blank "imported" column or sha256 fails a test instead of reaching a user;
* an error message never shows where things lie on the server: :func:`without_paths` turns paths
  inside the workspace into paths relative to it and any other absolute path into its last name, so
  an error page tells a visitor what went wrong without mapping the owner's disk for them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from .csrf import current_form_token
from .form_errors import form_error_for, form_value

_templates = Environment(
    loader=PackageLoader("arcticcodex.studio", "templates"), autoescape=select_autoescape(), undefined=StrictUndefined
)
_templates.globals.update(form_error_for=form_error_for, form_value=form_value)
# An absolute POSIX path: "/" then names made of file-name characters; what precedes it must not be a
# word, a dot or a slash (so "http://host/x", "a/b" and "3.5/s" are not taken for one).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\-])/(?:[\w.+@%=~-]+/)*[\w.+@%=~-]+/?")


def render(name: str, **context: Any) -> str:
    """The template ``name`` with ``context`` and the session's form token."""
    return _templates.get_template(name).render(csrf_token=current_form_token(), **context)


def page(name: str, title: str, section: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page of the Studio's layout; ``refresh`` (seconds) makes it follow something still running."""
    context.setdefault("refresh", None)
    return HTMLResponse(render(name, title=title, section=section, **context), status_code=status_code)


def message_page(title: str, message: str, status_code: int) -> HTMLResponse:
    """A page that says one thing: an error, or why a request was refused."""
    return page("error.html", title, "", status_code=status_code, message=message, status=status_code)


def without_paths(message: str, workspace_root: Path) -> str:
    """``message`` with no absolute path of this machine in it.

    A path inside the workspace becomes relative to it (``.arcticcodex/uploads/a.pdf``), the workspace
    folder itself "the workspace folder", and any other absolute path whose first folder exists here
    (``/home/…``, ``/tmp/…``) just its last name, after ``…/``.  Texts that only look like paths,
    such as the route ``/api/search``, are kept.
    """
    roots = sorted({str(workspace_root), os.path.realpath(workspace_root)}, key=len, reverse=True)
    for root in roots:
        message = message.replace(root + os.sep, "")
        message = re.sub(re.escape(root) + r"(?![\w.+@%=~-])", "the workspace folder", message)
    return _ABSOLUTE_PATH.sub(_shorten, message)


def _shorten(match: re.Match[str]) -> str:
    path = match.group(0)
    first = path.strip("/").split("/", 1)[0]
    if not os.path.isdir("/" + first):
        return path  # not a place on this machine: a route, a ratio, a date
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return f"…/{name}"
