"""The Studio at phone width (issue 12, item 12): in headless Chromium (Debian's, through Playwright) at 375 px,
every page — filled with a first hour's data: long ids, sha256s, tables, forms, the histogram — fits the width
of the screen: ``document.documentElement.scrollWidth <= innerWidth`` (wide tables scroll inside their own box).
Screenshots are kept in test-artifacts/studio/phone-*.png."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from arcticcodex.studio import create_app
from arcticcodex.vault import Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from studio_browser import ARTIFACTS, chromium
from test_distill_run import write_prompts
from test_studio import serve
from test_studio_pages import first_hour

pytestmark = pytest.mark.slow
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, acx: Acx) -> Iterator[tuple[str, dict[str, str]]]:
    base = tmp_path_factory.mktemp("phone")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCTICCODEX_CONFIG_DIR", str(base / "user-config"))
        with FakeOpenAIServer(model="fake-model") as server:
            root, run = first_hour(acx, base, server)
            waiting = write_prompts(base / "waiting.jsonl", [{"instruction": "Is Lake Hotel deep?", "evidence": "No."}])
            args = ["--prompts", str(waiting), "--out", str(base / "waiting"), "--teachers", "gpu", "--review"]
            acx("-w", root, "distill", *args, code=4)  # a pair waits for review: its forms are on the page
        with Vault(Workspace.open(root)) as vault:
            fact = ReviewQueue(vault).propose_fact(
                "otters", "eat", "fish and crabs and sea urchins and the occasional frog"
            )
            document = next(d for d in vault.list_documents() if d.source.endswith("otters.md"))
            chunk = vault.chunks_of(document.id)[0]
        asked = json.loads(acx("-w", root, "ask", "What do otters eat?", "--json").stdout)
        pages = {
            "home": "/",
            "chat": f"/chat?conversation={asked['conversation_id']}",
            "vault": "/vault",
            "search": "/vault/search?q=otters+fish",
            "document": f"/vault/documents/{document.id}",
            "chunk": f"/vault/chunks/{chunk.id}",
            "review": "/review",
            "review-approved": "/review?status=approved",
            "datasets": "/datasets",
            "dataset": f"/datasets/{run}",
            "dataset-validation": f"/datasets/{run}?split=validation",
            "dataset-rejected": f"/datasets/{run}?split=rejected",
            "record": f"/datasets/{run}/records/0",
            "runs": "/runs",
            "run": f"/runs/{run}",
            "run-new": "/runs/new",
            "review-item": f"/review/{fact.id}",
            "compare": f"/datasets/compare?a={run}",
            "gpus": "/gpus",
            "not-found": "/no/such/page",
        }
        with serve(create_app(Workspace.open(root))) as url:
            yield url, pages


@pytest.fixture(scope="module")
def phone() -> Iterator[object]:
    with chromium(PHONE, device_scale_factor=2) as opened:  # innerWidth stays 375: overflow shows
        yield opened


NAMES = [
    "home", "chat", "vault", "search", "document", "chunk", "review", "review-approved", "datasets", "dataset",
    "dataset-validation", "dataset-rejected", "record", "runs", "run", "run-new", "review-item", "compare", "gpus",
    "not-found",
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_the_page_fits_a_phone_screen(name: str, studio: tuple[str, dict[str, str]], phone: object) -> None:
    url, pages = studio
    p = phone  # playwright Page
    response = p.goto(url + pages[name])  # type: ignore[attr-defined]
    assert response.status == (404 if name == "not-found" else 200)
    p.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # type: ignore[attr-defined]
    widths = p.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)  # type: ignore[attr-defined]
    assert widths[1] == PHONE["width"]
    wide = p.evaluate(  # type: ignore[attr-defined]
        """() => [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !e.closest('.scroll'))
              .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''))"""
    )
    assert widths[0] <= widths[1], f"{pages[name]} is {widths[0]} px wide on a {widths[1]} px screen: {wide}"
