"""The Studio's own scripts and styles, served from the package at ``/static/NAME``.

Every page works without them (forms post, links navigate, a running run's page refreshes itself);
they add what only a script can: following a run live, keyboard shortcuts, a streamed answer.  The
Content-Security-Policy allows scripts from the Studio's own address only (``script-src 'self'``), so
no inline script and nothing a document or a model wrote can run; this module serves the files the
package ships and nothing else — a name is looked up among them, never joined onto a path.
"""

from __future__ import annotations

from importlib import resources

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["StudioAssets"]

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class StudioAssets:
    """The package's scripts and styles, read once when the Studio is made (never on the event loop)."""

    def __init__(self) -> None:
        folder = resources.files("arcticcodex.studio") / "static"
        self._files = {
            entry.name: entry.read_bytes()
            for entry in folder.iterdir()
            if entry.is_file() and any(entry.name.endswith(suffix) for suffix in _TYPES)
        }

    async def serve(self, request: Request) -> Response:
        name = request.path_params["name"]
        content = self._files.get(name)
        if content is None:
            raise HTTPException(404)
        media_type = _TYPES[name[name.rindex(".") :]]
        # revalidated on every load (a new version of the package serves new files), never stored
        return Response(content, media_type=media_type, headers={"cache-control": "no-cache"})
