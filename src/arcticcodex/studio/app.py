"""The Studio: a server-rendered web UI over one workspace (Starlette + Jinja2, no JavaScript needed).

Pages: home, chat (answers with citations that open their chunk), vault explorer (documents, chunks,
facts, search), review queue, datasets (statistics, a quality histogram, verification, each record
with its evidence and revisions), runs, GPUs; and ``/api/search`` for programs.

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
  a missing record) with the server's paths taken out, anything else a 500 page that shows no
  traceback.
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
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..agent import Agent
from ..distill.journal import RunJournal
from ..errors import ArcticCodexError, ConfigError, RecordNotFoundError, UserError
from ..gpu.state import InstanceStore
from ..vault.embeddings import EmbeddingBackend
from ..vault.review import ReviewQueue
from ..vault.search import Searcher
from ..vault.store import Vault
from ..workspace import Workspace
from .csrf import FORM_FIELD, FormTokens
from .datasets import DatasetPages, written_datasets
from .pages import message_page, page, without_paths
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
        stats = self.vault.stats()
        stats["facts"] = len(self.vault.list_facts())
        runs = written_datasets(self.workspace)
        gpus = InstanceStore(self.workspace).live()
        pending = len(ReviewQueue(self.vault).list())
        return self.page("home.html", "Home", "Home", stats=stats, pending=pending, datasets=len(runs), gpus=len(gpus))

    @in_worker
    def vault_page(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        results = self.searcher.search(query, k=10) if query else None
        return self.page(
            "vault.html",
            "Vault",
            "Vault",
            query=query,
            results=results,
            imported=request.query_params.get("imported"),
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

    async def chat(self, request: Request) -> Response:
        if request.method == "POST":
            async with request.form() as form:
                question = str(form.get("question", ""))
                conversation = str(form.get("conversation", "")) or None
            answered = await self.workers.run(self._answer, question, conversation)
            return RedirectResponse("/chat?" + urlencode({"conversation": answered}), status_code=303)
        return await self.workers.run(self._chat_page, request.query_params.get("conversation") or None)

    def _answer(self, question: str, conversation: str | None) -> str:
        return Agent(self.vault, searcher=self.searcher).respond(question, conversation).conversation_id

    def _chat_page(self, conversation: str | None) -> Response:
        messages = self.vault.get_conversation(conversation).messages if conversation else ()
        return self.page("chat.html", "Chat", "Chat", messages=messages, conversation=conversation)

    @in_worker
    def review(self, request: Request) -> Response:
        journal = RunJournal(self.workspace)
        try:
            pairs = [
                {"id": f"pair:{run_id}:{position}", "run_id": run_id, "pair": pair}
                for run_id, position, pair in journal.awaiting_review()
            ]
        finally:
            journal.close()
        return self.page("review.html", "Review queue", "Review", items=ReviewQueue(self.vault).list(), pairs=pairs)

    async def decide(self, request: Request) -> Response:
        """approve / reject (with a reason) / edit a proposal, or approve / reject a run's training pair."""
        async with request.form() as form:
            fields = {name: str(value) for name, value in form.items() if name != FORM_FIELD}
        return await self.workers.run(
            self._decide, request.path_params["item_id"], request.path_params["action"], fields
        )

    def _decide(self, item_id: str, action: str, fields: dict[str, str]) -> Response:
        if action not in ("approve", "reject", "edit"):
            raise RecordNotFoundError(f"no review action {action!r}")
        if item_id.startswith("pair:"):
            run_id, _, position = item_id.removeprefix("pair:").rpartition(":")
            if action == "edit" or not position.isdigit():
                raise UserError(f"{item_id}: a training pair is approved or rejected, not edited")
            journal = RunJournal(self.workspace)
            try:
                status = "approved" if action == "approve" else "rejected"
                journal.decide_pair(run_id, int(position), status, reason=fields.get("reason", ""), by="studio")
            finally:
                journal.close()
            return RedirectResponse("/review", status_code=303)
        queue = ReviewQueue(self.vault)
        if action == "approve":
            queue.approve(item_id, by="studio")
        elif action == "reject":
            queue.reject(item_id, reason=fields.get("reason", ""), by="studio")
        else:
            queue.edit(item_id, **{k: v for k, v in fields.items() if v.strip()})
        return RedirectResponse("/review", status_code=303)

    @in_worker
    def runs(self, request: Request) -> Response:
        journal = RunJournal(self.workspace)
        try:
            runs = journal.runs(limit=100)
            rows = [{"run": run, "counts": journal.counts(run.id)} for run in runs]
        finally:
            journal.close()
        live = any(run.status == "running" for run in runs)  # a running run: the page follows it
        return self.page("runs.html", "Runs", "Runs", runs=rows, refresh=3 if live else None)

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
    routes = [
        Route("/", studio.home),
        Route("/chat", studio.chat, methods=["GET", "POST"]),
        Route("/vault", studio.vault_page),
        Route("/vault/search", studio.vault_page),
        Route("/vault/import", studio.upload, methods=["POST"]),
        Route("/vault/documents/{document_id}", studio.document),
        Route("/vault/chunks/{chunk_id}", studio.chunk),
        Route("/api/search", studio.search_api),
        Route("/review", studio.review),
        Route("/review/{item_id}/{action}", studio.decide, methods=["POST"]),
        Route("/datasets", datasets.listing),
        Route("/datasets/{run_id}", datasets.dataset),
        Route("/datasets/{run_id}/records/{index:int}", datasets.record),
        Route("/runs", studio.runs),
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
            body_limits={"/vault/import": max_upload_bytes + MULTIPART_OVERHEAD},
        ),
    ]

    async def library_error(request: Request, error: Exception) -> Response:
        status = 404 if isinstance(error, RecordNotFoundError) else 400
        message = without_paths(str(error), workspace.root)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return message_page("Something is wrong", message, status)

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
            pool.close()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ArcticCodexError: library_error, Exception: crash},
        lifespan=lifespan,
    )
    app.state.verdicts = datasets.verdicts  # how many full verifications ran (the rest came from the cache)
    return app
