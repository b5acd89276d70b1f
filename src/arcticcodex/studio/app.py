"""The Studio: a server-rendered web UI over one workspace (Starlette + Jinja2, no JavaScript needed).

Pages: home, chat (answers with citations that open their chunk), vault explorer (documents, chunks,
facts, search), review queue, datasets (statistics, a quality histogram, verification, each record
with its evidence and revisions), models (training runs, receipts checked), runs, GPUs; and
``/api/search`` for programs.

Safety, decided here once:

* every text from documents, models and datasets goes through Jinja2's autoescaping — nothing is
  marked safe, so a ``<script>`` in a document is shown, never run (and the Content-Security-Policy
  forbids scripts anyway);
* bound to 127.0.0.1 by default; :func:`create_app` refuses any other host unless a token is set;
  the guards of :mod:`.security` wrap every route: the Host allow-list (DNS rebinding), the token,
  the refusal of requests from other sites, the form token of every state-changing request, and
  the body limits;
* blocking work runs on :mod:`.workers` threads, each with its own vault connection, so one slow
  import or answer never freezes the other pages;
* errors are translated in one handler: ArcticCodex errors become a page with their message (404 for
  a missing record) with the server's paths taken out, an address with no page a styled 404, anything
  else a 500 page that shows no traceback;
* a count means one thing everywhere: :func:`vault_counts`, :func:`.review.pending_count` and
  :func:`.datasets.written_datasets` give the home page the same numbers the vault, review and
  datasets pages show.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import ArcticCodexError, ConfigError, UserError
from ..gpu.state import InstanceStore
from ..vault.embeddings import EmbeddingBackend
from ..vault.search import Searcher, SearchResult
from ..vault.store import Vault
from ..workspace import Workspace
from .assets import StudioAssets
from .chat import ChatPage
from .csrf import FormTokens
from .datasets import DatasetPages, written_datasets
from .form_errors import FormErrorContext, FormErrors
from .loops import LoopPages
from .models import ModelPages
from .pages import message_page, page, without_paths
from .review import ReviewPages, pending_count
from .runs import RunPages
from .security import (
    SECURITY_HEADERS,
    FormGuard,
    HostAllowList,
    SecurityHeaders,
    TokenGate,
    size_text,
    studio_host_names,
)
from .uploads import UploadFolder, upload_name
from .workers import VaultWorkers

MAX_UPLOAD_BYTES = 20_000_000
MULTIPART_OVERHEAD = 64_000  # the form around an uploaded file: boundaries, headers, the form token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


PageHandler = Callable[["Studio", Request], Response]


async def no_icon(request: Request) -> Response:
    return Response(status_code=204)


def vault_counts(vault: Vault) -> dict[str, int]:
    """Documents, chunks and approved facts: the vault's numbers, the same on every page."""

    def count(sql: str) -> int:
        return int(vault.conn.execute(sql).fetchone()[0])

    return {
        "documents": count("SELECT count(*) FROM documents"),
        "chunks": count("SELECT count(*) FROM chunks"),
        "facts": count("SELECT count(*) FROM facts WHERE status = 'approved'"),
    }


def snippet_segments(result: SearchResult) -> list[tuple[str, bool]]:
    """A result's snippet as (text, matched) pieces, so the page marks the matches without markup in data."""
    segments: list[tuple[str, bool]] = []
    position = 0
    for start, end in sorted(result.highlights):
        if start < position or end <= start:
            continue  # overlapping or empty spans: the first one wins
        segments += [(result.snippet[position:start], False), (result.snippet[start:end], True)]
        position = end
    segments.append((result.snippet[position:], False))
    return [(text, marked) for text, marked in segments if text]


def in_worker(handler: PageHandler) -> Callable[[Studio, Request], Awaitable[Response]]:
    """Serve a page from a worker thread (see :mod:`.workers`): its body may block, use
    ``self.vault`` and ``self.searcher``, and read the request's address, but not its body."""

    @functools.wraps(handler)
    async def endpoint(self: Studio, request: Request) -> Response:
        return await self.workers.run(handler, self, request)

    return endpoint


class Studio:
    """The pages of one workspace.  Each worker thread has its own vault and searcher (``self.vault``
    and ``self.searcher`` are the calling worker's), opened once and reused."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers, *, max_upload_bytes: int) -> None:
        self.workspace = workspace
        self.workers = workers
        self.uploads = UploadFolder(workspace)
        self.max_upload_bytes = max_upload_bytes

    @property
    def vault(self) -> Vault:
        return self.workers.vault

    @property
    def searcher(self) -> Searcher:
        return self.workers.searcher

    def page(self, name: str, title: str, section: str, **context: Any) -> HTMLResponse:
        return page(name, title, section, **context)

    # -- pages ----------------------------------------------------------------------------------------

    @in_worker
    def home(self, request: Request) -> Response:
        counts = vault_counts(self.vault) | {
            "pending": pending_count(self.workspace, self.vault),
            "datasets": len(written_datasets(self.workspace)),
            "gpus": len(InstanceStore(self.workspace).live()),
        }
        return self.page("home.html", "Home", "Home", counts=counts)

    @in_worker
    def vault_page(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        results = None
        if query:
            results = [{**r.to_json(), "segments": snippet_segments(r)} for r in self.searcher.search(query, k=10)]
        return self.page(
            "vault.html",
            "Vault",
            "Vault",
            query=query,
            results=results,
            imported=request.query_params.get("imported"),
            counts=vault_counts(self.vault),
            documents=self.vault.list_documents(limit=500),
            facts=self.vault.list_facts(limit=500),
        )

    async def upload(self, request: Request) -> Response:
        """Import an uploaded file: kept under the workspace's uploads/ only if the import succeeds.

        The body reached this handler only if it was within the limit (:class:`.security.FormGuard`
        stopped reading it otherwise); the file itself is checked against the limit here.
        """
        limit = self.max_upload_bytes
        async with request.form(max_files=1, max_fields=10) as form:  # closing deletes the spooled upload
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise UserError("choose a file to import (.md, .txt, .html, .pdf or .jsonl)")
            name = upload_name(upload.filename)
            data = await upload.read(limit + 1)
        if len(data) > limit:
            raise UserError(f"{name} is over {size_text(limit)}; import it with `arcticcodex vault import`")
        await self.workers.run(self._import_upload, name, data)
        return RedirectResponse("/vault?" + urlencode({"imported": name}), status_code=303)

    def _import_upload(self, name: str, data: bytes) -> None:
        self.uploads.import_file(self.vault, name, data)

    @in_worker
    def search_api(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        if not query:
            raise UserError("give a query: /api/search?q=…")
        try:
            k = int(request.query_params.get("k", "10"))
        except ValueError:
            # from None: the ValueError adds nothing the message does not already say
            raise UserError("k must be a whole number") from None
        results = self.searcher.search(query, k=max(1, min(k, 50)))
        return JSONResponse({"query": query, "results": [r.to_json() for r in results]})

    @in_worker
    def document(self, request: Request) -> Response:
        document = self.vault.get_document(request.path_params["document_id"])
        chunks = self.vault.chunks_of(document.id)
        return self.page("document.html", document.title or document.source, "Vault", document=document, chunks=chunks)

    @in_worker
    def chunk(self, request: Request) -> Response:
        chunk = self.vault.get_chunk(request.path_params["chunk_id"])
        source = self.vault.get_document(chunk.document_id).source
        return self.page("chunk.html", f"Chunk {chunk.id}", "Vault", chunk=chunk, source=source)

    @in_worker
    def gpus(self, request: Request) -> Response:
        now = time.time()
        store = InstanceStore(self.workspace)
        records = store.all()
        instances = [r.as_json(now) for r in records if r.live]
        total = sum(r.cost(now) for r in records)
        return self.page("gpus.html", "GPUs", "GPUs", instances=instances, total=total)


def create_app(
    workspace: Workspace,
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    allowed_hosts: Iterable[str] = (),
    embedder: EmbeddingBackend | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    workers: int = 4,
) -> Starlette:
    """The Studio for ``workspace``, served on ``host``; refuses a non-loopback ``host`` without a ``token``.

    ``allowed_hosts`` are further names the Studio answers to (``--allow-host``); ``embedder``
    replaces the configured embedding model (tests, benchmarks); ``workers`` is the number of threads
    for blocking work.
    """
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"the Studio would be reachable by others on {host}: set a token (ARCTICCODEX_STUDIO_TOKEN) "
            "or bind to 127.0.0.1"
        )
    pool = VaultWorkers(workspace, embedder=embedder, size=workers)
    studio = Studio(workspace, pool, max_upload_bytes=max_upload_bytes)
    datasets = DatasetPages(workspace, pool)
    models = ModelPages(workspace, pool)
    loops = LoopPages(workspace, pool)
    review = ReviewPages(workspace, pool)
    chat = ChatPage(workspace, pool)
    runs = RunPages(workspace, pool)
    form_errors = FormErrors()
    routes = [
        Route("/", studio.home),
        Route("/static/{name}", StudioAssets().serve),
        Route("/favicon.ico", no_icon),  # asked for by every browser; an answer, not a 404 in its console
        *chat.routes(),
        Route("/vault", studio.vault_page),
        Route("/vault/search", studio.vault_page),
        Route("/vault/import", studio.upload, methods=["POST"]),
        Route("/vault/documents/{document_id}", studio.document),
        Route("/vault/chunks/{chunk_id}", studio.chunk),
        Route("/api/search", studio.search_api),
        *review.routes(),
        *datasets.routes(),
        Route("/models", models.listing),
        Route("/models/loops/{loop_id}", loops.loop),
        Route("/models/{run_id}", models.model),
        *runs.routes(),
        Route("/gpus", studio.gpus),
    ]
    # Outermost first: every response gets the headers; a wrong Host is turned away before anything
    # else looks at the request; then the token; then other sites, form tokens and body limits.
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(HostAllowList, names=studio_host_names(host, allowed_hosts)),
        *([Middleware(TokenGate, token=token)] if token else []),
        Middleware(
            FormGuard,
            tokens=FormTokens(),
            body_limits={"/vault/import": max_upload_bytes + MULTIPART_OVERHEAD, **runs.body_limits()},
        ),
        Middleware(FormErrorContext, errors=form_errors),
    ]

    async def library_error(request: Request, error: Exception) -> Response:
        # The one place an error becomes a status: the visitor's mistakes are 4xx, ours (a database that
        # cannot be written, a teacher that is down) 5xx; each class in errors.py says which.
        status = error.http_status if isinstance(error, ArcticCodexError) else 500
        message = without_paths(str(error), workspace.root)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        if request.method == "POST" and status < 500:  # a form's mistake: shown beside the form it came from
            back = form_errors.redirect_back(request, message)
            if back is not None:
                return back
        return message_page("Something is wrong", message, status)

    async def no_page(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        if status == 404:
            message = f"There is no page at {request.url.path}."
            return message_page("Not found", message, 404)
        detail = error.detail if isinstance(error, HTTPException) else ""
        return message_page("Refused", f"{request.method} {request.url.path}: {detail}", status)

    async def crash(request: Request, error: Exception) -> Response:
        message = "The Studio hit an unexpected error; the server log has details."
        response = message_page("Internal error", message, 500)
        response.headers.update(SECURITY_HEADERS)  # this handler answers outside the middleware
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runs.aclose()  # the runs this Studio started are stopped, resumable, before the workers go
            pool.close()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ArcticCodexError: library_error, HTTPException: no_page, Exception: crash},
        lifespan=lifespan,
    )
    app.state.verdicts = datasets.verdicts  # how many full verifications ran (the rest came from the cache)
    app.state.receipt_verdicts = models.verdicts  # the same for models' receipts
    return app
