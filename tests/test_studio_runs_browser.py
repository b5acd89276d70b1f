"""A run from the browser, end to end, in a real browser (Debian's Chromium): start it from the form (human
review on, a fake teacher with latency), follow it (the counts change through server-sent events, with no
reload), stop it, resume it, review its pairs with an edit on /review, publish it — and the dataset
verifies, signed, with the edited answer in train.jsonl.  Each page is checked by axe-core and kept as a
screenshot (``test-artifacts/studio/runs-*.png``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.distill.journal import RunJournal
from arcticcodex.provenance import KeyStore
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from studio_browser import PHONE, assert_accessible, chromium, screenshot
from test_distill_crash import make_workspace, prompts_file
from test_studio import serve

pytestmark = pytest.mark.slow
EDITED = "The harbour of village 0 was built in 1700, by masons from the coast (edited in review)."


@pytest.fixture
def studio(acx: Acx, tmp_path: Path) -> Iterator[tuple[str, Path, FakeOpenAIServer]]:
    with FakeOpenAIServer(model="fake-model", latency=0.1) as server:
        root = make_workspace(acx, tmp_path / "ws", server.base_url)
        config = root / "arcticcodex.toml"
        config.write_text(config.read_text() + "\n[distill]\nconcurrency = 1\n")
        with serve(create_app(Workspace.open(root))) as url:
            yield url, root, server


def test_start_follow_stop_resume_review_with_an_edit_and_publish(
    studio: tuple[str, Path, FakeOpenAIServer], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, root, _ = studio
    prompts = prompts_file(tmp_path / "prompts.jsonl", 12)
    with chromium() as page:
        missing: list[str] = []  # scripts and streams the pages asked for and did not get
        page.on(
            "response",
            lambda response: (
                missing.append(response.url)
                if response.status >= 400 and response.request.resource_type != "document"
                else None
            ),
        )
        page.goto(f"{url}/runs")
        page.click("#start-link")
        assert_accessible(page, "/runs/new")
        screenshot(page, "runs-new")
        page.set_input_files("#prompts", str(prompts))
        page.fill("#out", "../elsewhere")  # refused beside the form, what was typed kept
        page.fill("#threshold", "0.8")
        page.click("#start-run button[type=submit]")
        expect(page.locator("#start-error")).to_contain_text("is not a name under the workspace")
        expect(page.locator("#out")).to_have_value("../elsewhere")
        assert_accessible(page, "/runs/new with an error")
        screenshot(page, "runs-new-error")
        page.set_input_files("#prompts", str(prompts))  # a browser never keeps a file field's choice
        page.check("input[name=teachers][value=gpu]")
        page.check("input[name=review]")
        page.fill("#out", "datasets/browser")
        page.click("#start-run button[type=submit]")

        page.wait_for_url(f"{url}/runs/run-*")
        run_id = page.url.rsplit("/", 1)[1]
        expect(page.locator("#status")).to_have_text("running")
        page.evaluate("window.notReloaded = true")
        done = page.locator("[data-field=done]")
        expect(done).not_to_have_text(done.text_content() or "", timeout=20_000)
        assert page.evaluate("window.notReloaded === true")  # the counts changed in place, by the event stream
        assert_accessible(page, f"/runs/{run_id} while running")
        screenshot(page, "runs-live")

        page.click("#stop button[type=submit]")
        expect(page.locator("#status")).to_have_text("stopped", timeout=20_000)
        expect(page.locator("#note")).to_contain_text(f"arcticcodex distill --resume {run_id}")
        expect(page.locator("#resume")).to_be_visible()  # the page reloaded for the stopped run's actions
        assert not (root / "datasets" / "browser").exists()
        screenshot(page, "runs-stopped")

        page.fill("#resume-budget", "5")
        page.click("#resume button[type=submit]")
        expect(page.locator("#status")).to_have_text("stopped", timeout=60_000)  # done: the pairs await review
        expect(page.get_by_role("link", name="Review the")).to_be_visible()
        expect(page.locator("#stop")).to_have_count(0)
        assert_accessible(page, f"/runs/{run_id} awaiting review")
        screenshot(page, "runs-awaiting-review")

        page.goto(f"{url}/review")
        card = page.locator(".card.pair").first
        pair_id = card.get_attribute("id")
        card.locator("details.edit summary").click()
        card.locator("textarea[name=completion]").fill(EDITED)
        card.locator("details.edit button[type=submit]").click()
        page.wait_for_load_state()
        while page.locator(".card.pair button.approve").count():
            page.locator(".card.pair button.approve").first.click()
            page.wait_for_load_state()
        assert pair_id

        page.goto(f"{url}/runs/{run_id}")
        page.click("#publish button[type=submit]")
        expect(page.locator("#status")).to_have_text("complete", timeout=60_000)
        expect(page.locator("#dataset-link")).to_be_visible()  # reloaded: the complete run's page
        assert_accessible(page, f"/runs/{run_id} complete")
        screenshot(page, "runs-published")

        page.set_viewport_size(PHONE)
        page.goto(f"{url}/runs")
        assert_accessible(page, "/runs at phone width")
        screenshot(page, "runs-list-phone")
        page.goto(f"{url}/runs/{run_id}")
        assert_accessible(page, f"/runs/{run_id} at phone width")
        screenshot(page, "runs-run-phone")
        assert missing == []
        # a refused form's 400 page and the browser's favicon request log "Failed to load resource" too
        problems = [text for text in page.problems if not text.startswith("Failed to load resource")]
        assert problems == []  # no script error, nothing refused by the Content-Security-Policy

    out = root / "datasets" / "browser"
    report = verify_dataset(out, trusted=KeyStore(Workspace.open(root).keys_dir).verifier("dataset"))
    assert report.ok and report.trusted, report
    assert EDITED in (out / "train.jsonl").read_text()
    with RunJournal(Workspace.open(root)) as journal:
        assert journal.run(run_id).status == "complete"
