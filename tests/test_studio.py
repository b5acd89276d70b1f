"""The Studio in process (ASGI over httpx): every page renders real workspace data, text is escaped,
and beyond loopback nothing is served without the token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from click.testing import CliRunner

from arcticcodex.cli import cli
from arcticcodex.errors import ConfigError
from arcticcodex.provenance import KeyStore
from arcticcodex.studio import create_app
from arcticcodex.teachers import runtime
from arcticcodex.vault import Vault
from arcticcodex.vault.review import ReviewQueue
from arcticcodex.workspace import Workspace
from fakes.openai_server import FakeOpenAIServer

SCRIPT = "<script>alert('owned')</script>"


def acx(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["-w", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("studio")
    workspace, _ = Workspace.init(base / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    KeyStore(workspace.keys_dir).create("dataset")
    (base / "otters.md").write_text(f"# Otters\n\nOtters eat mostly fish. {SCRIPT} They also eat crabs.\n")
    acx(workspace.root, "vault", "import", str(base / "otters.md"))
    with FakeOpenAIServer(model="fake-model") as server:
        acx(workspace.root, "teachers", "add", "t", "--preset", "vllm", "--base-url", server.base_url, "--model", "m")
        server.set_default("rewriter", {"text": f"Otters eat fish {SCRIPT}.", "changes": []})
        prompts = base / "prompts.jsonl"
        prompts.write_text(json.dumps({"instruction": f"What do otters eat? {SCRIPT}", "evidence": "Otters eat fish."}))
        acx(workspace.root, "distill", "--prompts", str(prompts), "--out", str(base / "data"), "--teachers", "t")
    yield workspace.root


def get(app: object, path: str, **kwargs: object) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
            return await client.request(str(kwargs.pop("method", "GET")), path, **kwargs)  # type: ignore[arg-type]

    return runtime.run(call())


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


def test_dataset_page_shows_verification_and_the_histogram(root: Path) -> None:
    app = create_app(Workspace.open(root))
    page = get(app, f"/datasets/{_first_run(app)}").text
    assert 'id="verify-status">OK<' in page
    assert '<svg id="quality-histogram"' in page and page.count("<rect") == 6


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
    first = get(app, "/?token=" + "t" * 24)
    assert first.status_code == 200 and "httponly" in first.headers["set-cookie"].lower()
