"""The Studio in a real browser: headless Chromium (Debian's, through Playwright, never a downloaded one)
against the Studio served by uvicorn on 127.0.0.1.  Screenshots are kept in test-artifacts/studio/."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from arcticcodex.provenance import KeyStore
from arcticcodex.studio import create_app
from arcticcodex.vault import Vault
from arcticcodex.vault.review import ReviewQueue
from arcticcodex.workspace import Workspace
from fakes.openai_server import FakeOpenAIServer
from test_studio import SCRIPT, acx

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "studio"


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    base = tmp_path_factory.mktemp("browser")
    workspace, _ = Workspace.init(base / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    KeyStore(workspace.keys_dir).create("dataset")
    (base / "beavers.md").write_text("# Beavers\n\nBeavers build dams from branches and mud.\n")
    acx(workspace.root, "vault", "import", str(base / "beavers.md"))
    with FakeOpenAIServer(model="m") as server:
        acx(workspace.root, "teachers", "add", "t", "--preset", "vllm", "--base-url", server.base_url, "--model", "m")
        prompts = base / "prompts.jsonl"
        prompts.write_text('{"instruction": "What do beavers build?", "evidence": "Beavers build dams."}\n')
        acx(workspace.root, "distill", "--prompts", str(prompts), "--out", str(base / "data"), "--teachers", "t")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    holder: dict[str, uvicorn.Server] = {}

    def serve() -> None:  # the app (and its SQLite connection) is made in the thread that serves it
        server = uvicorn.Server(uvicorn.Config(create_app(workspace), host="127.0.0.1", port=port, log_level="error"))
        holder["server"] = server
        asyncio.run(server.serve())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (holder.get("server") and holder["server"].started) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", base
    holder["server"].should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(studio_url: tuple[str, Path]) -> Iterator[object]:
    if CHROMIUM is None:
        pytest.fail("Chromium is missing: scripts/setup installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


def test_import_search_ask_and_open_a_citation(page: object, studio_url: tuple[str, Path]) -> None:
    url, base = studio_url
    p = page  # playwright Page
    (base / "otters.md").write_text(f"# Otters\n\nOtters eat mostly fish. {SCRIPT} They also eat crabs.\n")
    p.goto(f"{url}/vault")  # type: ignore[attr-defined]
    p.set_input_files("#file", str(base / "otters.md"))  # type: ignore[attr-defined]
    p.click("#import")  # type: ignore[attr-defined]
    assert "Imported otters.md" in p.inner_text("#imported")  # type: ignore[attr-defined]
    p.fill("#q", "otters fish")  # type: ignore[attr-defined]
    p.press("#q", "Enter")  # type: ignore[attr-defined]
    assert "otters.md" in p.inner_text(".result")  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)  # type: ignore[attr-defined]
    p.goto(f"{url}/chat")  # type: ignore[attr-defined]
    p.fill("#question", "What do otters eat?")  # type: ignore[attr-defined]
    p.click("button[type=submit]")  # type: ignore[attr-defined]
    answer = p.inner_text(".message.assistant")  # type: ignore[attr-defined]
    assert "Otters eat mostly fish." in answer and SCRIPT in answer  # the script is shown as text
    p.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)  # type: ignore[attr-defined]
    p.click("a.citation")  # type: ignore[attr-defined]
    assert "Otters eat mostly fish." in p.inner_text("#chunk-text")  # type: ignore[attr-defined]
    alerts: list[str] = []
    p.on("dialog", lambda dialog: alerts.append(dialog.message))  # type: ignore[attr-defined]
    p.reload()  # type: ignore[attr-defined]
    assert alerts == [], "a <script> in a document ran"


def test_approve_a_fact_and_open_a_histogram(page: object, studio_url: tuple[str, Path]) -> None:
    url, base = studio_url
    with Vault(Workspace.open(base / "ws")) as vault:
        item = ReviewQueue(vault).propose_fact("beavers", "build", "dams")
    p = page
    p.goto(f"{url}/review")  # type: ignore[attr-defined]
    p.click(f"#{item.id} button:has-text('Approve')")  # type: ignore[attr-defined]
    p.goto(f"{url}/vault")  # type: ignore[attr-defined]
    assert "beavers — build — dams" in p.inner_text("#facts")  # type: ignore[attr-defined]
    p.goto(f"{url}/datasets")  # type: ignore[attr-defined]
    p.click("#datasets a")  # type: ignore[attr-defined]
    assert p.inner_text("#verify-status") == "OK"  # type: ignore[attr-defined]
    assert p.locator("#quality-histogram rect").count() == 6  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "dataset.png"), full_page=True)  # type: ignore[attr-defined]
