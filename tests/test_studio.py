"""The Studio in process (ASGI over httpx): every page renders real workspace data, text is escaped,
and beyond loopback nothing is served without the token.  Also the helpers the other Studio tests
share: :func:`get` (posts carry the form token read from the page that holds the form) and
:func:`serve` (the Studio under uvicorn on 127.0.0.1, for real HTTP clients and browsers)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn

from arcticcodex._sync import run_sync
from arcticcodex.errors import ConfigError
from arcticcodex.provenance import KeyStore
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.studio import create_app
from arcticcodex.vault import Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

SCRIPT = "<script>alert('owned')</script>"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, acx: Acx) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("studio")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCTICCODEX_CONFIG_DIR", str(base / "user-config"))  # the module's own trust decisions
        yield make_root(acx, base)


@pytest.fixture(autouse=True)
def module_trust(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the trust the module's workspace recorded (its signing key, its teacher)."""
    monkeypatch.setenv("ARCTICCODEX_CONFIG_DIR", str(root.parent / "user-config"))


def make_root(acx: Acx, base: Path) -> Path:
    workspace, _ = Workspace.init(base / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    acx("-w", workspace.root, "keys", "new", "dataset")  # recorded as trusted
    (base / "otters.md").write_text(f"# Otters\n\nOtters eat mostly fish. {SCRIPT} They also eat crabs.\n")
    acx("-w", workspace.root, "vault", "import", base / "otters.md")
    with FakeOpenAIServer(model="fake-model") as server:
        acx.add_teacher(workspace.root, server, name="t", model="m")
        server.set_default("rewriter", {"text": f"Otters eat fish {SCRIPT}.", "changes": []})
        prompts = base / "prompts.jsonl"
        prompts.write_text(json.dumps({"instruction": f"What do otters eat? {SCRIPT}", "evidence": "Otters eat fish."}))
        acx("-w", workspace.root, "distill", "--prompts", prompts, "--out", base / "data", "--teachers", "t")
    return workspace.root


FORM_TOKEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')
META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def form_token(html: str) -> str:
    """The form token of the first form on a page (else the page's, for a form it showed before)."""
    found = FORM_TOKEN.search(html) or META_TOKEN.search(html)
    assert found, "the page has no form token"
    return found.group(1)


def get(app: object, path: str, **kwargs: Any) -> httpx.Response:
    """One request to ``app`` in process, as the browser would send it from the Studio's page.

    A POST first loads the page that holds its form (``form_page``, by default the first part of
    the path: /review for /review/ID/approve) and sends that form's token, with the session cookie.
    """
    method = str(kwargs.pop("method", "GET"))
    form_page = kwargs.pop("form_page", "/" + path.lstrip("/").split("/", 1)[0].split("?", 1)[0])

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            if method == "POST" and form_page is not None:
                token = form_token((await client.get(form_page)).text)
                kwargs["data"] = {"csrf_token": token, **(kwargs.get("data") or {})}
            return await client.request(method, path, **kwargs)

    return run_sync(call())


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; yields its address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    pause = threading.Event()  # never set: its wait is a pause
    for _ in range(400):  # up to 20 s for the server to listen
        if server.started or not thread.is_alive():
            break
        pause.wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_every_page_renders(root: Path) -> None:
    app = create_app(Workspace.open(root))
    for path in ("/", "/vault", "/vault/search?q=otters", "/chat", "/review", "/datasets", "/runs", "/gpus"):
        response = get(app, path)
        assert response.status_code == 200, (path, response.text[:300])
        assert "ArcticCodex Studio" in response.text


def test_search_api_and_chunk_pages(root: Path) -> None:
    app = create_app(Workspace.open(root))
    found = get(app, "/api/search?q=otters&k=3").json()
    chunk_id = found["results"][0]["chunk_id"]
    assert found["results"][0]["heading_path"] == "Otters"  # the section the chunk sits in
    assert "otters.md</a> › Otters <span" in get(app, "/vault/search?q=otters").text
    page = get(app, f"/vault/chunks/{chunk_id}")
    assert page.status_code == 200 and "Otters eat mostly fish." in page.text
    assert get(app, "/api/search").status_code == 400
    missing = get(app, "/vault/chunks/doc-nope:0")
    assert missing.status_code == 404 and "no chunk" in missing.text.lower()


def test_script_in_documents_answers_and_records_is_shown_as_text(root: Path) -> None:
    app = create_app(Workspace.open(root))
    pages = [get(app, f"/vault/chunks/{get(app, '/api/search?q=otters').json()['results'][0]['chunk_id']}")]
    asked = get(app, "/chat", method="POST", data={"question": "What do otters eat?", "conversation": ""})
    assert asked.status_code == 303
    pages.append(get(app, asked.headers["location"]))
    run_id = _first_run(app)
    pages.append(get(app, f"/datasets/{run_id}"))
    pages.append(get(app, f"/datasets/{run_id}/records/0"))
    for page in pages:
        assert page.status_code == 200, page.text[:300]
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert" in page.text


def _first_run(app: object) -> str:
    listing = get(app, "/datasets").text
    start = listing.index('href="/datasets/') + len('href="/datasets/')
    return listing[start : listing.index('"', start)]


def test_dataset_page_shows_both_verdicts_and_the_histogram(root: Path) -> None:
    app = create_app(Workspace.open(root))
    page = get(app, f"/datasets/{_first_run(app)}").text
    assert '<strong id="verify-status" class="ok">intact, signer trusted</strong>' in page
    assert "signer trusted (trusted key &#39;dataset&#39;)" in page
    assert '<svg id="quality-histogram"' in page and page.count("<rect") == 6


def test_a_dataset_signed_by_a_key_nobody_trusts_is_shown_only_when_asked(root: Path) -> None:
    app = create_app(Workspace.open(root))
    run_id = _first_run(app)
    TrustedKeys.for_user().remove("dataset")
    try:
        page = get(app, f"/datasets/{run_id}").text
        assert '<strong id="verify-status" class="warn">intact, signer NOT trusted</strong>' in page
        signer = KeyStore(Workspace.open(root).keys_dir).info("dataset").key_id
        assert f"signing key {signer}" in page and "arcticcodex keys trust FILE" in page
        assert 'id="records"' not in page and "quality-histogram" not in page
        record = get(app, f"/datasets/{run_id}/records/0").text
        assert 'id="completion"' not in record and "intact, signer NOT trusted" in record
        shown = get(app, f"/datasets/{run_id}?allow_untrusted=1").text
        assert 'id="records"' in shown and f'href="/datasets/{run_id}/records/0?allow_untrusted=1"' in shown
        assert 'id="completion"' in get(app, f"/datasets/{run_id}/records/0?allow_untrusted=1").text
    finally:
        keys = KeyStore(Workspace.open(root).keys_dir)
        TrustedKeys.for_user().trust_key(keys.verifier("dataset"), name="dataset", origin="the test")


def test_a_tampered_dataset_shows_its_problems_and_nothing_else(root: Path) -> None:
    app = create_app(Workspace.open(root))
    run_id = _first_run(app)
    train = root.parent / "data" / "train.jsonl"
    original = train.read_bytes()
    try:
        train.write_bytes(original.replace(b"Otters eat fish", b"Otters eat rock", 1))
        page = get(app, f"/datasets/{run_id}").text
        assert '<strong id="verify-status" class="bad">NOT intact</strong>' in page
        assert "NOT intact: " in page and "<li>train.jsonl:1 (record tp-" in page and "edited after signing" in page
        assert "Otters eat rock" not in page and 'id="records"' not in page and "quality-histogram" not in page
        assert "Otters eat rock" not in get(app, f"/datasets/{run_id}/records/0?allow_untrusted=1").text
    finally:
        train.write_bytes(original)
    assert "intact, signer trusted" in get(app, f"/datasets/{run_id}").text  # verified again: the file changed


def test_a_datasets_verdict_is_computed_once_for_many_views(root: Path) -> None:
    app = create_app(Workspace.open(root))
    run_id = _first_run(app)
    for _ in range(3):
        assert get(app, f"/datasets/{run_id}").status_code == 200
        assert get(app, f"/datasets/{run_id}/records/0").status_code == 200
    assert app.state.verdicts.verifications == 1  # type: ignore[attr-defined]


def test_review_queue_approve_and_reject(root: Path) -> None:
    workspace = Workspace.open(root)
    with Vault(workspace) as vault:
        queue = ReviewQueue(vault)
        good = queue.propose_fact("otters", "eat", "fish")
        bad = queue.propose_fact("otters", "eat", SCRIPT)
    app = create_app(workspace)
    page = get(app, "/review").text
    assert good.id in page and "&lt;script&gt;" in page and "<script>alert" not in page
    assert get(app, f"/review/{good.id}/approve", method="POST").status_code == 303
    assert get(app, f"/review/{bad.id}/reject", method="POST", data={"reason": "nonsense"}).status_code == 303
    vault_page = get(app, "/vault").text
    assert "otters — eat — fish" in vault_page and good.id in vault_page
    with Vault(workspace) as vault:
        assert ReviewQueue(vault).get(bad.id).status == "rejected"
    refused = get(app, f"/review/{bad.id}/reject", method="POST", data={"reason": "again"})
    assert refused.status_code == 400 and "already rejected" in refused.text


def test_a_proposal_is_edited_in_the_studio(root: Path) -> None:
    workspace = Workspace.open(root)
    with Vault(workspace) as vault:
        item = ReviewQueue(vault).propose_fact("otters", "eat", "rocks")
    app = create_app(workspace)
    edited = get(app, f"/review/{item.id}/edit", method="POST", data={"object": "fish", "subject": "", "predicate": ""})
    assert edited.status_code == 303
    with Vault(workspace) as vault:
        again = ReviewQueue(vault).get(item.id)
    assert (again.record.subject, again.record.object, again.status) == ("otters", "fish", "pending")


def test_beyond_loopback_a_token_is_required(root: Path) -> None:
    workspace = Workspace.open(root)
    with pytest.raises(ConfigError, match="token"):
        create_app(workspace, host="0.0.0.0")
    app = create_app(workspace, host="0.0.0.0", token="t" * 24)
    assert get(app, "/").status_code == 401
    assert get(app, "/api/search?q=otters").status_code == 401
    assert get(app, "/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert get(app, "/", headers={"Authorization": "Bearer " + "t" * 24}).status_code == 200
    # ?token= is exchanged for the cookie by a redirect to the same address without it (issue 11)
    first = get(app, "/vault/search?q=otters&token=" + "t" * 24)
    assert first.status_code == 303 and first.headers["location"] == "/vault/search?q=otters"
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "t" * 24 in cookie
    assert get(app, "/vault/search?q=otters", headers={"Cookie": "acx_studio_token=" + "t" * 24}).status_code == 200
    assert get(app, "/?token=wrong").status_code == 401
