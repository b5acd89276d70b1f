"""Blocking work in the Studio runs off the event loop: a slow import in flight does not hold up the
other pages (a real server, real concurrent clients), and every worker thread has its own vault."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from jinja2 import StrictUndefined

from arcticcodex.studio import create_app, pages
from arcticcodex.studio.datasets import written_datasets
from arcticcodex.studio.workers import VaultWorkers
from arcticcodex.training.runs import TrainingRuns
from arcticcodex.training.settings import TrainSettings
from arcticcodex.vault import Vault
from arcticcodex.vault.embeddings import HashingBackend
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from embedders import RecordingBackend
from test_loop import journaled_loop
from test_studio import form_token, get, make_root, serve
from test_studio_guard import make_workspace, vault_state


class GatedEmbedder(RecordingBackend):
    """hashing-64, except that a batch holding "SLOWLY" waits inside the model until the test opens
    the gate: an import that is provably in flight for as long as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if any("SLOWLY" in text for text in texts):
            self.entered.set()
            if not self.gate.wait(60):
                raise RuntimeError("the test never let the slow import finish")
        return super().embed(texts)


def test_a_slow_import_in_flight_does_not_hold_up_other_requests(tmp_path: Path, acx: Acx) -> None:
    root = make_workspace(acx, tmp_path)
    with Vault(Workspace.open(root)) as vault:
        proposal = ReviewQueue(vault).propose_fact("otters", "eat", "fish").id
    before = vault_state(root)
    embedder = GatedEmbedder()
    with (
        serve(create_app(Workspace.open(root), embedder=embedder)) as url,
        httpx.Client(base_url=url, timeout=60) as importer,
        httpx.Client(base_url=url, timeout=10) as other,  # 10 s: trips only if the Studio froze
        ThreadPoolExecutor(1) as background,
    ):
        token = form_token(importer.get("/vault").text)
        files = {"file": ("slow.md", b"# Slow\n\nThis file imports SLOWLY.\n", "text/markdown")}
        importing = background.submit(importer.post, "/vault/import", data={"csrf_token": token}, files=files)
        assert embedder.entered.wait(30), "the import never reached the embedding model"
        # the import now waits inside the model, on a worker thread; everything else must still answer
        home = other.get("/")
        assert home.status_code == 200 and "documents" in home.text
        found = other.get("/api/search?q=otters fish")
        assert found.status_code == 200 and found.json()["results"][0]["source"].endswith("otters.md")
        review_token = form_token(other.get("/review").text)
        assert other.post(f"/review/{proposal}/approve", data={"csrf_token": review_token}).status_code == 303
        asked = other.post("/chat", data={"csrf_token": review_token, "question": "What do otters eat?"})
        assert asked.status_code == 303
        assert not importing.done() and not embedder.gate.is_set(), "the slow import was not in flight"
        embedder.gate.set()
        imported = importing.result(timeout=60)
        assert imported.status_code == 303 and imported.headers["location"] == "/vault?imported=slow.md"
    after = vault_state(root)
    assert after["documents"] == sorted([*before["documents"], "uploads/slow.md"])
    assert after["conversations"] == before["conversations"] + 1 and proposal not in after["pending"]


def test_concurrent_readers_and_writers_share_the_database_safely(tmp_path: Path, acx: Acx) -> None:
    """Many clients at once, reading and writing: no "database is locked", no thread mix-ups."""
    root = make_workspace(acx, tmp_path)
    with serve(create_app(Workspace.open(root), workers=4)) as url:

        def visitor(n: int) -> list[int]:
            with httpx.Client(base_url=url, timeout=60) as client:
                token = form_token(client.get("/chat").text)
                statuses = [client.get(path).status_code for path in ("/", "/vault", "/api/search?q=otters")]
                asked = client.post("/chat", data={"csrf_token": token, "question": f"Otters {n}?"})
                files = {"file": (f"note-{n}.md", f"# Note {n}\n\nOtters note {n}.\n".encode(), "text/markdown")}
                imported = client.post("/vault/import", data={"csrf_token": token}, files=files)
                return [*statuses, asked.status_code, imported.status_code]

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(visitor, range(12)))
    assert results == [[200, 200, 200, 303, 303]] * 12
    state = vault_state(root)
    assert state["conversations"] == 12 and len(state["uploads"]) == 12


def test_each_worker_has_its_own_vault_and_idle_workers_stop(workspace: Workspace) -> None:
    workers = VaultWorkers(workspace, embedder=HashingBackend(64), size=3, idle_seconds=0.05)
    with pytest.raises(RuntimeError, match="only used inside"):
        _ = workers.vault
    together = threading.Barrier(3, timeout=30)  # three jobs at once: three workers
    request: ContextVar[str] = ContextVar("request", default="none")

    def job() -> tuple[int, int, str, int]:
        together.wait()
        vault = workers.vault
        documents = vault.conn.execute("SELECT count(*) FROM documents").fetchone()[0]  # in its own thread
        return threading.get_ident(), id(vault), request.get(), documents

    async def three() -> list[tuple[int, int, str, int]]:
        request.set("the caller's context")
        return list(await asyncio.gather(*(workers.run(job) for _ in range(3))))

    results = asyncio.run(three())
    assert len({r[0] for r in results}) == 3 and len({r[1] for r in results}) == 3
    assert {r[2] for r in results} == {"the caller's context"} and {r[3] for r in results} == {0}
    stopped = threading.Event()
    for _ in range(200):  # idle workers close their vaults and stop (up to 10 s)
        if workers.running == 0:
            break
        stopped.wait(0.05)
    assert workers.running == 0
    assert asyncio.run(three())[0][3] == 0  # new workers open new vaults
    workers.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        asyncio.run(three())


class LoopWatch:
    """Records the blocking operations — opening a database, a file, listing a folder — made on a thread
    whose running event loop is one the Studio serves on.  Python's audit hooks see every one of them,
    from any library, and cannot be removed once added, so one hook per process consults this object."""

    EVENTS = frozenset({"sqlite3.connect", "open", "os.listdir", "os.scandir"})

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.seen: list[tuple[str, str]] = []

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if event not in self.EVENTS or not self.loops:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop in this thread: a worker, where blocking is the point
        if any(loop is watched for watched in self.loops):
            self.seen.append((event, str(args[0] if args else "")[-120:]))

    def app(self, app: Any) -> Any:
        async def watched(scope: Any, receive: Any, send: Any) -> None:
            self.loops.append(asyncio.get_running_loop())
            await app(scope, receive, send)

        return watched


_WATCHES: list[LoopWatch] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    for watch in _WATCHES:
        watch(event, args)


sys.addaudithook(_audit)


def test_no_page_opens_a_database_or_file_on_the_event_loop(
    tmp_path: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every route of the Studio, GET and POST, served while watching the event loop's thread: the pages
    do their database, file and folder work on the worker threads, so one slow page never stops the others.

    The same visits render every template of the Studio (each one is loaded, the layout and the shared
    macros included) under Jinja's ``StrictUndefined``: a name a template uses that its page did not
    pass is an error here, not a blank on someone's screen."""
    loaded: set[str] = set()
    load = pages._templates.get_template

    def recorded(name: Any, *args: Any, **kwargs: Any) -> Any:
        template = load(name, *args, **kwargs)
        loaded.add(str(template.name))
        return template

    monkeypatch.setattr(pages._templates, "get_template", recorded)
    assert pages._templates.undefined is StrictUndefined
    root = make_root(acx, tmp_path)
    workspace = Workspace.open(root)
    with Vault(workspace) as vault:
        document = vault.list_documents()[0].id
        chunk = vault.chunks_of(document)[0].id
        proposal = ReviewQueue(vault).propose_fact("otters", "eat", "fish").id
    (run_id,) = {run for dataset in written_datasets(workspace) for run in dataset["runs"]}
    prompts = tmp_path / "more.jsonl"  # a second dataset (by the offline judge): the comparison's choices
    prompts.write_text('{"instruction": "What do otters eat?", "evidence": "Otters eat fish."}\n')
    acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "more", "--teachers", "local")
    training = TrainingRuns(workspace).started(  # a run still going: the page shows it without a receipt
        tmp_path / "student", {"path": str(tmp_path / "ds")}, TrainSettings(base="base"), resume=False
    )
    loop = journaled_loop(workspace, tmp_path, [0.2, 0.4])
    visits = {
        "/": ("GET", "/", {}),
        "/chat": ("POST", "/chat", {"data": {"question": "What do otters eat?"}}),
        "/chat/stream": ("POST", "/chat/stream", {"data": {"question": "What do otters eat?"}}),
        "/chat/messages/{message_id}/propose": (  # no such answer: a form error, sent back to the page (303)
            "POST",
            "/chat/messages/msg-none/propose",
            {"data": {"conversation": "conv-none", "subject": "a"}, "headers": {"referer": "http://127.0.0.1/chat"}},
        ),
        "/vault": ("GET", "/vault", {}),
        "/vault/search": ("GET", "/vault/search?q=otters", {}),
        "/vault/import": (
            "POST",
            "/vault/import",
            {"files": {"file": ("note.md", b"# Note\n\nOtters note.\n", "text/markdown")}, "form_page": "/vault"},
        ),
        "/vault/documents/{document_id}": ("GET", f"/vault/documents/{document}", {}),
        "/vault/chunks/{chunk_id}": ("GET", f"/vault/chunks/{chunk}", {}),
        "/api/search": ("GET", "/api/search?q=otters", {}),
        "/review": ("GET", "/review", {}),
        "/review/{item_id}": ("GET", f"/review/{proposal}", {}),
        "/review/{item_id}/{action}": ("POST", f"/review/{proposal}/approve", {"form_page": "/review"}),
        "/datasets": ("GET", "/datasets", {}),
        "/datasets/{run_id}": ("GET", f"/datasets/{run_id}", {}),
        "/datasets/{run_id}/records/{index:int}": ("GET", f"/datasets/{run_id}/records/0", {}),
        "/datasets/compare": ("GET", f"/datasets/compare?a={run_id}", {}),  # one dataset here: the form
        "/datasets/{run_id}/export": (
            "POST",
            f"/datasets/{run_id}/export",
            {"data": {"format": "messages", "split": "train"}, "form_page": f"/datasets/{run_id}"},
        ),
        "/runs": ("GET", "/runs", {}),
        "/runs/new": ("GET", "/runs/new", {}),
        "/runs/{run_id}": ("GET", f"/runs/{run_id}", {}),
        "/runs/{run_id}/events": ("GET", f"/runs/{run_id}/events", {}),  # a finished run: its final event
        **{  # a finished run: nothing to stop, resume or publish, said beside the form (303 back)
            f"/runs/{{run_id}}/{action}": (
                "POST",
                f"/runs/{run_id}/{action}",
                {"form_page": f"/runs/{run_id}", "headers": {"referer": f"http://127.0.0.1/runs/{run_id}"}},
            )
            for action in ("stop", "resume", "publish")
        },
        "/gpus": ("GET", "/gpus", {}),
        "/static/{name}": ("GET", "/static/studio.js", {}),
        "/favicon.ico": ("GET", "/favicon.ico", {}),
        "/models": ("GET", "/models", {}),
        "/models/{run_id}": ("GET", f"/models/{training}", {}),
        "/models/loops/{loop_id}": ("GET", f"/models/loops/{loop}", {}),
    }
    app = create_app(workspace, embedder=HashingBackend(64))
    assert {route.path for route in app.routes} == set(visits), "a new page needs a visit here"  # type: ignore[attr-defined]
    watch = LoopWatch()
    _WATCHES.append(watch)
    try:
        statuses = {
            path: get(watch.app(app), target, method=method, **options).status_code
            for path, (method, target, options) in visits.items()
        }
        opened_a_file = watch.seen[:]
        watch.seen.clear()
        with open(os.devnull, "rb"):  # the watch itself works: this open, on no loop, is not recorded ...
            pass

        async def on_the_loop() -> None:
            watch.loops.append(asyncio.get_running_loop())
            with open(os.devnull, "rb"):  # ... and this one, on a watched loop, is
                pass

        asyncio.run(on_the_loop())
    finally:
        _WATCHES.remove(watch)
    assert all(status in (200, 204, 303) for status in statuses.values()), statuses
    assert watch.seen == [("open", os.devnull)]
    assert not opened_a_file, f"blocking work on the Studio's event loop: {opened_a_file}"
    assert get(app, "/no/such/page").status_code == 404  # the error page
    on_disk = {path.name for path in (Path(pages.__file__).parent / "templates").glob("*.html")}
    assert loaded == on_disk, f"templates no visit rendered: {sorted(on_disk - loaded)}"
