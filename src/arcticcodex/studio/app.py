"""The Studio: a server-rendered web UI over one workspace (Starlette + Jinja2, no JavaScript needed).

Pages: home, chat (answers with citations that open their chunk), vault explorer (documents, chunks,
facts, search), review queue, datasets (statistics, a quality histogram, verification, each record
with its evidence and revisions), runs, GPUs; and ``/api/search`` for programs.

Safety, decided here once:

* every text from documents, models and datasets goes through Jinja2's autoescaping — nothing is
  marked safe, so a ``<script>`` in a document is shown, never run;
* bound to 127.0.0.1 by default; :func:`create_app` refuses any other host unless a token is set,
  and with a token every request must carry it (``Authorization: Bearer``, or once as ``?token=``,
  which sets an HttpOnly cookie), compared in constant time;
* errors are translated in one handler: ArcticCodex errors become a page with their message (404 for
  a missing record), anything else a 500 page that shows no traceback.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..agent import Agent
from ..dataset import dataset_statistics, verify_dataset
from ..dataset.record import iter_records
from ..dataset.stats import QUALITY_BUCKETS
from ..distill.journal import RunJournal
from ..errors import ArcticCodexError, ConfigError, RecordNotFoundError, UserError
from ..fileio import write_atomically
from ..gpu.state import InstanceStore
from ..vault.ingest import import_paths
from ..vault.loaders import SUPPORTED_SUFFIXES
from ..vault.review import ReviewQueue
from ..vault.search import Searcher
from ..vault.store import Vault
from ..workspace import Workspace

MAX_UPLOAD_BYTES = 20_000_000
TOKEN_COOKIE = "acx_studio_token"  # noqa: S105 - a cookie name
_templates = Environment(loader=PackageLoader("arcticcodex.studio", "templates"), autoescape=select_autoescape())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Studio:
    """The pages of one workspace; a vault and a searcher are opened once and reused."""

    def __init__(self, workspace: Workspace, vault: Vault | None = None) -> None:
        self.workspace = workspace
        self.vault = vault or Vault(workspace)
        self.searcher = Searcher(self.vault)

    def page(self, name: str, title: str, section: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(_templates.get_template(name).render(title=title, section=section, **context))

    # -- pages ----------------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        stats = self.vault.stats()
        stats["facts"] = len(self.vault.list_facts())
        runs = self._datasets()
        gpus = InstanceStore(self.workspace).live()
        pending = len(ReviewQueue(self.vault).list())
        return self.page("home.html", "Home", "Home", stats=stats, pending=pending, datasets=len(runs), gpus=len(gpus))

    async def vault_page(self, request: Request) -> Response:
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
        """Import an uploaded file: kept under the workspace's uploads/, then imported like `vault import`."""
        async with request.form(max_files=1) as form:  # closing the form deletes the spooled upload
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise UserError("choose a file to import (.md, .txt, .html, .pdf or .jsonl)")
            name = PurePath(upload.filename.replace("\\", "/")).name  # never a path from the browser
            if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES or name.startswith("."):
                raise UserError(f"{name!r} is not a file the vault imports; use {' '.join(sorted(SUPPORTED_SUFFIXES))}")
            data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise UserError(
                f"{name} is over {MAX_UPLOAD_BYTES // 1_000_000} MB; import it with `arcticcodex vault import`"
            )
        folder = self.workspace.data_dir / "uploads"
        folder.mkdir(exist_ok=True)
        write_atomically(folder / name, data)
        report = import_paths(self.vault, [folder / name])
        if report.failed:
            raise UserError(f"{name} could not be imported: {report.failed[0][1]}")
        return RedirectResponse(f"/vault?imported={name}", status_code=303)

    async def search_api(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        if not query:
            raise UserError("give a query: /api/search?q=…")
        try:
            k = int(request.query_params.get("k", "10"))
        except ValueError:
            raise UserError("k must be a whole number") from None
        results = self.searcher.search(query, k=max(1, min(k, 50)))
        return JSONResponse({"query": query, "results": [r.to_json() for r in results]})

    async def document(self, request: Request) -> Response:
        document = self.vault.get_document(request.path_params["document_id"])
        chunks = self.vault.chunks_of(document.id)
        return self.page("document.html", document.title or document.source, "Vault", document=document, chunks=chunks)

    async def chunk(self, request: Request) -> Response:
        chunk = self.vault.get_chunk(request.path_params["chunk_id"])
        source = self.vault.get_document(chunk.document_id).source
        return self.page("chunk.html", f"Chunk {chunk.id}", "Vault", chunk=chunk, source=source)

    async def chat(self, request: Request) -> Response:
        conversation = request.query_params.get("conversation") or None
        if request.method == "POST":
            async with request.form() as form:
                question = str(form.get("question", ""))
                conversation = str(form.get("conversation", "")) or None
            answer = Agent(self.vault, searcher=self.searcher).respond(question, conversation)
            return RedirectResponse(f"/chat?conversation={answer.conversation_id}", status_code=303)
        messages = self.vault.get_conversation(conversation).messages if conversation else ()
        return self.page("chat.html", "Chat", "Chat", messages=messages, conversation=conversation)

    async def review(self, request: Request) -> Response:
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
        item_id, action = request.path_params["item_id"], request.path_params["action"]
        async with request.form() as form:
            fields = {name: str(value) for name, value in form.items()}
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

    def _datasets(self) -> list[dict[str, Any]]:
        journal = RunJournal(self.workspace)
        try:
            runs = journal.runs(limit=200)
        finally:
            journal.close()
        found = []
        for run in runs:
            if (Path(run.out) / "manifest.json").is_file():
                records = (run.written or {}).get("record_count", "?")
                found.append({"run_id": run.id, "out": run.out, "records": records, "created_at": run.created_at})
        return found

    async def datasets(self, request: Request) -> Response:
        return self.page("datasets.html", "Datasets", "Datasets", datasets=self._datasets())

    def _dataset_dir(self, run_id: str) -> Path:
        for dataset in self._datasets():
            if dataset["run_id"] == run_id:
                return Path(dataset["out"])
        raise RecordNotFoundError(f"no dataset written by run {run_id!r}")

    async def dataset(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        directory = self._dataset_dir(run_id)
        stats = dataset_statistics(directory)
        report = verify_dataset(directory)
        verify = {"ok": report.ok, "summary": f"{report.records} records, {len(report.problems)} problem(s)"}
        summary = {
            "accepted": stats["accepted"],
            "rejected": stats["rejected"],
            "quality_mean": f"{stats['quality']['mean']:.3f}" if stats["quality"]["mean"] is not None else "—",
        }
        records = []
        for _, pair, _ in iter_records(directory / "train.jsonl"):
            records.append({"index": pair.index, "instruction": pair.instruction[:160], "quality": pair.quality})
            if len(records) >= 200:
                break
        chart = histogram(stats["quality"]["accepted_histogram"])
        return self.page(
            "dataset.html",
            f"Dataset of {run_id}",
            "Datasets",
            out=str(directory),
            run_id=run_id,
            stats=summary,
            verify=verify,
            chart=chart,
            records=records,
        )

    async def record(self, request: Request) -> Response:
        run_id, index = request.path_params["run_id"], request.path_params["index"]
        for _, pair, raw in iter_records(self._dataset_dir(run_id) / "train.jsonl"):
            if pair.index == index:
                return self.page("record.html", f"Record {index}", "Datasets", record=raw)
        raise RecordNotFoundError(f"dataset of run {run_id} has no record {index}")

    async def runs(self, request: Request) -> Response:
        journal = RunJournal(self.workspace)
        try:
            runs = journal.runs(limit=100)
            rows = [{"run": run, "counts": journal.counts(run.id)} for run in runs]
        finally:
            journal.close()
        live = any(run.status == "running" for run in runs)  # a running run: the page follows it
        return self.page("runs.html", "Runs", "Runs", runs=rows, refresh=3 if live else None)

    async def gpus(self, request: Request) -> Response:
        now = time.time()
        store = InstanceStore(self.workspace)
        records = store.all()
        instances = [r.as_json(now) for r in records if r.live]
        total = sum(r.cost(now) for r in records)
        return self.page("gpus.html", "GPUs", "GPUs", instances=instances, total=total)


def histogram(buckets: dict[str, int], *, width: int = 480, height: int = 180) -> dict[str, Any]:
    """Bars for an SVG chart of the quality buckets (server-side: no script, nothing to escape)."""
    peak = max(buckets.values(), default=0) or 1
    slot = width / len(QUALITY_BUCKETS)
    bars = []
    for n, label in enumerate(QUALITY_BUCKETS):
        count = int(buckets.get(label, 0))
        bar_height = (height - 36) * count / peak
        bars.append(
            {
                "x": round(n * slot + 6, 1),
                "w": round(slot - 12, 1),
                "h": round(bar_height, 1),
                "y": round(height - 18 - bar_height, 1),
                "label": label,
                "count": count,
            }
        )
    return {"width": width, "height": height, "bars": bars}


class TokenMiddleware(BaseHTTPMiddleware):
    """Every request carries the token (header, cookie, or ``?token=`` once), or gets 401."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token.encode()

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        header = request.headers.get("authorization", "")
        offered = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        offered = offered or request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token")
        if offered is None or not hmac.compare_digest(offered.encode(), self.token):
            return HTMLResponse(
                "<h1>401</h1><p>This Studio needs its token: open it with ?token=… once.</p>", status_code=401
            )
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, offered, httponly=True, samesite="strict")
        return response


def create_app(
    workspace: Workspace, *, host: str = "127.0.0.1", token: str | None = None, vault: Vault | None = None
) -> Starlette:
    """The Studio for ``workspace``; refuses a non-loopback ``host`` without a ``token``."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"the Studio would be reachable by others on {host}: set a token (ARCTICCODEX_STUDIO_TOKEN) "
            "or bind to 127.0.0.1"
        )
    studio = Studio(workspace, vault)
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
        Route("/datasets", studio.datasets),
        Route("/datasets/{run_id}", studio.dataset),
        Route("/datasets/{run_id}/records/{index:int}", studio.record),
        Route("/runs", studio.runs),
        Route("/gpus", studio.gpus),
    ]
    middleware = [Middleware(TokenMiddleware, token=token)] if token else []

    async def library_error(request: Request, error: Exception) -> Response:
        status = 404 if isinstance(error, RecordNotFoundError) else 400
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(error)}, status_code=status)
        page = _templates.get_template("error.html").render(title="Something is wrong", section="", message=str(error))
        return HTMLResponse(page, status_code=status)

    async def crash(request: Request, error: Exception) -> Response:
        page = _templates.get_template("error.html").render(
            title="Internal error",
            section="",
            message="The Studio hit an unexpected error; the server log has details.",
        )
        return HTMLResponse(page, status_code=500)

    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ArcticCodexError: library_error, Exception: crash},
    )
