"""Async core, sync edges: the workflows are coroutines; their ``*_sync`` twins run them from synchronous
code, also inside a running event loop (a notebook cell); no library module starts a loop but the edge
helper (``arcticcodex/_sync.py``), checked on the source's syntax trees."""

from __future__ import annotations

import ast
import asyncio
import contextvars
import threading
from pathlib import Path

import pytest

import arcticcodex
from arcticcodex import Distiller, RunSettings, Source, TeacherPool, TeacherRouter
from arcticcodex._sync import run_sync
from arcticcodex.agent import Agent
from arcticcodex.errors import UserError
from arcticcodex.provenance import KeyStore
from arcticcodex.teachers.local_judge import LocalJudge
from arcticcodex.teachers.results import EvidenceItem
from arcticcodex.vault import HashingBackend, Vault, import_paths
from arcticcodex.workspace import Workspace

PACKAGE = Path(arcticcodex.__file__).parent
OTTERS = "Otters eat mostly fish. They also eat crabs and frogs when fish are scarce."

#: (module, function) calls that start an event loop, and the one place each may be made
LOOP_STARTERS = {
    ("asyncio", "run"): {"_sync.py"},
    ("asyncio", "Runner"): set(),
    ("asyncio", "new_event_loop"): set(),
    ("asyncio", "get_event_loop"): set(),  # makes a loop when there is none (deprecated for that reason)
    ("uvloop", "run"): {"_sync.py"},
    ("uvloop", "new_event_loop"): set(),
    ("uvloop", "install"): set(),
    ("anyio", "run"): set(),
    ("trio", "run"): set(),
    ("uvicorn", "run"): {"cli/studio.py"},  # the `arcticcodex studio` command serves: an edge
}
LOOP_METHODS = {"run_until_complete", "run_forever"}  # on a loop object, whatever its name


def loop_starts(source: str) -> list[tuple[int, str]]:
    """(line, what) for every call in ``source`` that starts an event loop, however the name was imported."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # local name -> loop library (import asyncio as aio)
    functions: dict[str, tuple[str, str]] = {}  # local name -> (library, function) (from asyncio import run)
    libraries = {library for library, _ in LOOP_STARTERS}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in libraries:
                    modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in libraries:
            for alias in node.names:
                if (node.module, alias.name) in LOOP_STARTERS:
                    functions[alias.asname or alias.name] = (node.module, alias.name)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        if isinstance(target, ast.Attribute):
            if isinstance(target.value, ast.Name) and target.value.id in modules:
                key = (modules[target.value.id], target.attr)
                if key in LOOP_STARTERS:
                    found.append((node.lineno, ".".join(key)))
            if target.attr in LOOP_METHODS:
                found.append((node.lineno, target.attr))
        elif isinstance(target, ast.Name) and target.id in functions:
            found.append((node.lineno, ".".join(functions[target.id])))
    return found


def test_the_scan_finds_every_way_of_starting_a_loop() -> None:
    source = (
        "import asyncio\nimport asyncio as aio\nimport uvloop\nfrom asyncio import run as go, new_event_loop\n"
        "asyncio.run(main())\naio.run(main())\nuvloop.run(main())\ngo(main())\n"
        "loop = new_event_loop()\nloop.run_until_complete(main())\nasyncio.get_event_loop().run_forever()\n"
        "asyncio.gather(a(), b())\nawait asyncio.sleep(0)\n"  # these start nothing
    )
    assert sorted(loop_starts(source)) == [
        (5, "asyncio.run"),
        (6, "asyncio.run"),
        (7, "uvloop.run"),
        (8, "asyncio.run"),
        (9, "asyncio.new_event_loop"),
        (10, "run_until_complete"),
        (11, "asyncio.get_event_loop"),
        (11, "run_forever"),
    ]


def test_no_library_module_starts_an_event_loop() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 100, "the scan must see the whole package"
    starts = []
    for path in modules:
        where = path.relative_to(PACKAGE).as_posix()
        for line, what in loop_starts(path.read_text(encoding="utf-8")):
            allowed = LOOP_STARTERS.get(tuple(what.split(".")), set())  # type: ignore[arg-type]
            if where not in allowed:
                starts.append(f"src/arcticcodex/{where}:{line} calls {what}")
    assert not starts, (
        "library code must not start an event loop: make the function async and give its entry point a "
        "*_sync twin that calls arcticcodex._sync.run_sync:\n" + "\n".join(starts)
    )


# -- the sync edge, with and without a running loop ------------------------------------------------


def test_run_sync_without_a_loop_runs_in_the_calling_thread() -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert run_sync(where()) == threading.current_thread().name


def test_run_sync_inside_a_running_loop_runs_on_a_loop_of_its_own_and_keeps_context() -> None:
    """A notebook cell is a coroutine on a running loop: a *_sync call there must not deadlock or raise
    "asyncio.run() cannot be called from a running event loop"."""
    request = contextvars.ContextVar[str]("request")

    async def inner() -> tuple[str, str, int]:
        return request.get(), threading.current_thread().name, id(asyncio.get_running_loop())

    async def cell() -> tuple[tuple[str, str, int], int]:
        request.set("cell-7")
        return run_sync(inner()), id(asyncio.get_running_loop())

    (value, thread, inner_loop), outer_loop = asyncio.run(cell())
    assert value == "cell-7", "context variables go with the coroutine"
    assert thread.startswith("arcticcodex-sync") and inner_loop != outer_loop


def test_run_sync_raises_the_coroutines_own_error_inside_a_running_loop() -> None:
    async def fails() -> None:
        raise UserError("the draft is empty")

    async def cell() -> None:
        run_sync(fails())

    with pytest.raises(UserError, match="the draft is empty"):
        asyncio.run(cell())


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    workspace, _ = Workspace.init(tmp_path / "ws")
    (tmp_path / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    opened = Vault(workspace, embedder=HashingBackend(64))
    import_paths(opened, [tmp_path / "otters.md"])
    return opened


def test_the_workflows_sync_twins_work_in_a_notebook_cell(vault: Vault, tmp_path: Path) -> None:
    """The agent, the teacher loop and a whole distillation, each called through its *_sync twin from
    inside a running loop, with the vault and journal opened outside it (their connections hand over)."""
    workspace = vault.workspace
    config = workspace.config.path
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    workspace = Workspace.open(workspace.root)
    KeyStore(workspace.keys_dir).create("dataset")
    router = TeacherRouter(TeacherPool([LocalJudge(HashingBackend(64))]))
    agent = Agent(vault, k=2)
    distiller = Distiller(workspace, local_embedder=HashingBackend(64))
    out = tmp_path / "datasets" / "v1"

    async def cell() -> None:
        answer = agent.respond_sync("What do otters eat?")
        assert "Otters eat mostly fish." in answer.text and answer.citations
        result = router.refine_sync(OTTERS, [EvidenceItem(number=1, text=OTTERS)], instruction="What do otters eat?")
        assert result.status == "accepted" and result.score is not None
        summary = distiller.distill_sync(Source("from_vault", limit=3), RunSettings(concurrency=2), out)
        assert summary.status == "complete" and summary.accepted >= 1 and summary.written == summary.accepted

    try:
        asyncio.run(cell())
    finally:
        distiller.close()
    assert (out / "manifest.json").is_file()


def test_the_workflows_are_coroutines_for_async_callers(vault: Vault) -> None:
    async def app() -> None:
        agent = Agent(vault, k=2)
        first, second = (
            await agent.respond("What do otters eat?"),
            await agent.respond("And when fish are scarce?"),
        )
        assert first.conversation_id != second.conversation_id

    asyncio.run(app())
    assert asyncio.iscoroutinefunction(Agent.respond) and asyncio.iscoroutinefunction(TeacherRouter.refine)
    assert asyncio.iscoroutinefunction(Distiller.execute) and asyncio.iscoroutinefunction(Distiller.distill)
