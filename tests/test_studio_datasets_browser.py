"""The dataset workbench in Debian's Chromium: search and filter a dataset, open a record, compare two
datasets, export one and check the downloaded file; axe-core on every page, desktop and phone width."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from dataset_fixtures import Datasets, otter_datasets
from studio_browser import PHONE, assert_accessible, chromium, screenshot, watch
from test_studio import serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Datasets]]:
    base = tmp_path_factory.mktemp("datasets-browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCTICCODEX_CONFIG_DIR", str(base / "user-config"))
        datasets = otter_datasets(base)
        with serve(create_app(Workspace.open(datasets.root))) as url:
            yield url, datasets


@pytest.fixture(autouse=True)
def user_trust(served: tuple[str, Datasets], monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line run by a test trusts what the served workspace's user trusts."""
    monkeypatch.setenv("ARCTICCODEX_CONFIG_DIR", str(served[1].root.parent / "user-config"))


def rows(page: Any) -> list[str]:
    """The instructions the records table lists."""
    return [text.strip() for text in page.locator("#records tr td:nth-child(2)").all_inner_texts()]


def test_search_filter_open_compare_and_export(served: tuple[str, Datasets], acx: Acx, tmp_path: Path) -> None:
    url, datasets = served
    with chromium() as page:
        problems = watch(page)
        page.goto(f"{url}/datasets")
        assert_accessible(page, "the datasets list")
        screenshot(page, "datasets-list")
        page.click(f"#dataset-{datasets.a} a")
        assert page.inner_text("#verify-status") == "intact, signer trusted"
        page.fill("#filter-q", "otters")
        page.click("#filter-submit")
        assert rows(page) == ["How do otters swim?", "How do otters eat?", "How do otters sleep?"]
        assert page.inner_text("#record-count") == "Records 1–3 of 3 matching."
        page.fill("#filter-min", "0.8")
        page.fill("#filter-q", "")
        page.click("#filter-submit")
        assert rows(page)[-1] == "Is this hostile? <script>alert('owned')</script>"  # shown as text
        assert_accessible(page, "a dataset, filtered")
        screenshot(page, "datasets-search")

        page.click("#split-rejected")
        page.select_option("#filter-stage", "human review")
        page.click("#filter-submit")
        assert rows(page) == ["Do otters bark?"]
        page.click("#records a")
        assert page.inner_text("#completion") == "Otters bark loudly."
        assert "rejected in human review: otters do not bark" in page.inner_text("#feedback")
        assert_accessible(page, "a rejected record")
        screenshot(page, "datasets-record")
        page.click("text=Back to the dataset")
        assert rows(page) == ["Do otters bark?"]  # the search is kept

        page.goto(f"{url}/datasets")
        page.select_option("#compare-a", datasets.a)
        page.select_option("#compare-b", datasets.b)
        page.click("#compare-submit")
        assert page.inner_text("#pairs-in-both") == "2" and page.inner_text("#questions-in-both") == "3"
        assert page.locator("svg.quality-histogram").count() == 2
        assert "How do otters sleep?" in page.inner_text("#other-answers")
        assert_accessible(page, "the comparison")
        screenshot(page, "datasets-compare")

        page.goto(f"{url}/datasets/{datasets.a}")
        page.select_option("#export-format", "alpaca")
        page.select_option("#export-split", "all")
        with page.expect_download() as info:
            page.click("#export-submit")
        download = info.value
        assert download.suggested_filename == "a-alpaca-all.jsonl"
        cli = tmp_path / "cli.jsonl"
        acx("-w", datasets.root, "dataset", "export", datasets.folders["a"], "--format", "alpaca", "--split", "all",
            "-o", cli, "--no-trainer-configs")  # fmt: skip
        assert Path(download.path()).read_bytes() == cli.read_bytes()

        page.goto(f"{url}/datasets/{datasets.stranger}")
        assert page.inner_text("#verify-status") == "intact, signer NOT trusted"
        page.click("#export-submit")  # without ticking "export anyway"
        assert "tick “export anyway”" in page.inner_text("#export .form-error")
        assert_accessible(page, "an untrusted dataset with its refused export")
        screenshot(page, "datasets-export-refused")
        page.check("#export-allow-untrusted")
        with page.expect_download() as info:
            page.click("#export-submit")
        assert b"Who signed this?" in Path(info.value.path()).read_bytes()
        assert problems == []


def test_the_dataset_pages_at_phone_width(served: tuple[str, Datasets]) -> None:
    url, datasets = served
    with chromium(PHONE) as page:
        problems = watch(page)
        for path, name in (
            (f"/datasets/{datasets.a}?q=otters", "datasets-search-phone"),
            (f"/datasets/{datasets.a}/records/0", "datasets-record-phone"),
            (f"/datasets/compare?a={datasets.a}&b={datasets.b}", "datasets-compare-phone"),
            ("/datasets", "datasets-list-phone"),
        ):
            page.goto(url + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
            assert_accessible(page, f"{path} at phone width")
            screenshot(page, name)
        assert problems == []
