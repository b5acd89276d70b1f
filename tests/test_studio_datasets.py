"""The Studio's dataset workbench: search and filters over every split, paging, the record index kept in
step with the files, comparing two datasets, and exporting from the page (the CLI's bytes, its refusals).

Datasets are hand-made (``dataset_fixtures.py``) so every expected record, count and overlap is known."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from arcticcodex._sync import run_sync
from arcticcodex.dataset.record_index import content_keys
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from dataset_fixtures import SCRIPT, Datasets, make_pair, otter_datasets, write_dataset
from test_studio import form_token, get


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Datasets]:
    base = tmp_path_factory.mktemp("studio-datasets")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCTICCODEX_CONFIG_DIR", str(base / "user-config"))
        yield otter_datasets(base)


@pytest.fixture(autouse=True)
def user_trust(datasets: Datasets, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCTICCODEX_CONFIG_DIR", str(datasets.root.parent / "user-config"))


def listed(page: str, run_id: str) -> list[int]:
    """The record indexes the page's table links to, in order."""
    table = page.split('<table id="records">', 1)[1].split("</table>", 1)[0]
    return [int(n) for n in re.findall(rf'href="/datasets/{run_id}/records/(\d+)', table)]


def instructions(page: str) -> list[str]:
    table = page.split('<table id="records">', 1)[1].split("</table>", 1)[0]
    return [html.unescape(cell) for cell in re.findall(r"</a></td><td>(.*?)</td>", table)]


def test_a_search_lists_exactly_the_records_whose_instruction_or_answer_hold_every_word(datasets: Datasets) -> None:
    app, run = datasets.app(), datasets.a
    assert listed(get(app, f"/datasets/{run}").text, run) == [0, 1, 2, 3, 4, 5, 6]  # train: 7, one held out
    assert instructions(get(app, f"/datasets/{run}?q=otters").text) == [
        "How do otters swim?",
        "How do otters eat?",
        "How do otters sleep?",
    ]
    assert instructions(get(app, f"/datasets/{run}?q=RIVERS+eat").text) == ["How do otters eat?"]  # in the answer
    assert instructions(get(app, f"/datasets/{run}?q=nest+case").text) == [
        "Where do herons nest 0?",
        "Where do herons nest 1?",
        "Where do herons nest 2?",
    ]
    assert instructions(get(app, f"/datasets/{run}?q=herons+rivers").text) == []  # every word must be there
    assert instructions(get(app, f"/datasets/{run}?q=hero").text)[0] == "Where do herons nest 0?"  # a word's start
    assert instructions(get(app, f"/datasets/{run}?split=validation&q=otters").text) == ["How do otters play?"]
    empty = get(app, f"/datasets/{run}?q=penguins").text
    assert "No train records match." in empty and listed(empty, run) == []


def test_filters_by_quality_source_and_the_step_that_rejected_a_pair(datasets: Datasets) -> None:
    app, run = datasets.app(), datasets.a
    assert listed(get(app, f"/datasets/{run}?min=0.8").text, run) == [0, 1, 2, 6]
    assert listed(get(app, f"/datasets/{run}?min=0.6&max=0.8").text, run) == [3, 4, 5]
    assert listed(get(app, f"/datasets/{run}?q=otters&min=0.96").text, run) == []
    assert instructions(get(app, f"/datasets/{run}?source=curriculum").text) == [f"Is this hostile? {SCRIPT}"]
    rejected = get(app, f"/datasets/{run}?split=rejected").text
    assert listed(rejected, run) == [0, 1, 2]
    assert "<td>human review</td><td>rejected in human review: otters do not bark</td>" in rejected
    for stage, expected in (("teachers", ["Do otters fly?"]), ("human review", ["Do otters bark?"])):
        page = get(app, f"/datasets/{run}?split=rejected&stage={stage.replace(' ', '+')}").text
        assert instructions(page) == expected
    sensitive = get(app, f"/datasets/{run}?split=rejected&stage=sensitive+data&source=conversation").text
    assert instructions(sensitive) == ["What is my email?"]
    assert get(app, f"/datasets/{run}?split=rejected&stage=gremlins").status_code == 400
    wrong = get(app, f"/datasets/{run}?min=2")
    assert wrong.status_code == 400 and "the min quality must be a number from 0 to 1, not &#39;2&#39;" in wrong.text


def test_records_are_paged_with_and_without_a_search(tmp_path: Path, datasets: Datasets) -> None:
    workspace = Workspace.open(datasets.root)
    signer = Ed25519Signer.generate()
    TrustedKeys.for_user().trust_key(signer.verifier(), name="pager", origin="the test")
    pairs = [make_pair(f"Question {n} about {'lakes' if n % 2 else 'rivers'}?", f"Answer {n}.") for n in range(130)]
    run = write_dataset(workspace, tmp_path / "many", signer, pairs)
    app = create_app(workspace)
    first = get(app, f"/datasets/{run}").text
    assert listed(first, run) == list(range(50)) and "Records 1–50 of 130." in first
    assert f'id="next-records" href="/datasets/{run}?start=50"' in first and "previous-records" not in first
    last = get(app, f"/datasets/{run}?start=100").text
    assert listed(last, run) == list(range(100, 130)) and "next-records" not in last
    assert f'id="previous-records" href="/datasets/{run}?start=50"' in last
    lakes = get(app, f"/datasets/{run}?q=lakes").text  # 65 odd questions: 50, then 15
    assert listed(lakes, run) == list(range(1, 100, 2)) and "Records 1–50 of 65 matching." in lakes
    assert f'href="/datasets/{run}?q=lakes&amp;start=50"' in lakes
    rest = get(app, f"/datasets/{run}?q=lakes&start=50").text
    assert listed(rest, run) == list(range(101, 130, 2)) and "next-records" not in rest
    assert f'href="/datasets/{run}/records/101?q=lakes&amp;start=50"' in rest  # kept for "Back"


def test_a_record_page_reads_its_record_and_shows_hostile_text_as_text(datasets: Datasets) -> None:
    app, run = datasets.app(), datasets.a
    listing = get(app, f"/datasets/{run}").text
    record = get(app, f"/datasets/{run}/records/6").text
    for page in (listing, record):
        assert SCRIPT not in page and "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in page
    assert '<pre id="completion">Yes: &lt;script&gt;' in record
    rejected = get(app, f"/datasets/{run}/records/1?split=rejected").text
    assert "Otters bark loudly." in rejected and "rejected in human review: otters do not bark" in rejected
    missing = get(app, f"/datasets/{run}/records/7")
    assert missing.status_code == 404 and f"the train split of the dataset of run {run} has no record 7" in missing.text


def test_the_index_follows_the_files_a_tampered_dataset_shows_nothing(tmp_path: Path, datasets: Datasets) -> None:
    workspace = Workspace.open(datasets.root)
    signer = Ed25519Signer.generate()
    TrustedKeys.for_user().trust_key(signer.verifier(), name="changer", origin="the test")
    folder = tmp_path / "changing"
    run = write_dataset(workspace, folder, signer, [make_pair("What do moles dig?", "Tunnels.")])
    app = create_app(workspace)
    assert instructions(get(app, f"/datasets/{run}?q=moles").text) == ["What do moles dig?"]
    train = folder / "train.jsonl"
    original = train.read_bytes()
    train.write_bytes(original.replace(b"Tunnels.", b"Toupees.", 1))
    page = get(app, f"/datasets/{run}?q=toupees").text
    assert '<strong id="verify-status" class="bad">NOT intact</strong>' in page
    assert 'id="records"' not in page and "Toupees" not in page and "What do moles dig" not in page
    assert "Toupees" not in get(app, f"/datasets/{run}/records/0").text
    # written again, validly, in the same folder: the page searches the new records, not the old index
    shutil.rmtree(folder)
    write_dataset(workspace, folder, signer, [make_pair("What do voles eat?", "Roots.")])
    assert instructions(get(app, f"/datasets/{run}?q=voles").text) == ["What do voles eat?"]
    assert instructions(get(app, f"/datasets/{run}?q=moles").text) == []
    assert "Roots." in get(app, f"/datasets/{run}/records/0").text


def test_an_untrusted_dataset_is_listed_only_when_asked(datasets: Datasets) -> None:
    app, run = datasets.app(), datasets.stranger
    page = get(app, f"/datasets/{run}?q=stranger").text
    assert '<strong id="verify-status" class="warn">intact, signer NOT trusted</strong>' in page
    assert 'id="records"' not in page and "Who signed this?" not in page
    assert instructions(get(app, f"/datasets/{run}?q=stranger&allow_untrusted=1").text) == ["Who signed this?"]


def test_compare_shows_counts_histograms_and_the_overlap(datasets: Datasets) -> None:
    app = datasets.app()
    listing = get(app, "/datasets").text
    assert 'id="compare-form"' in listing and 'action="/datasets/compare"' in listing
    page = get(app, f"/datasets/compare?a={datasets.a}&b={datasets.b}").text
    sides = page.split('id="side-')[1:]
    counts = [dict(re.findall(r'class="number count-(\w+)">(\d+)<', side)) for side in sides]
    assert counts == [
        {"train": "7", "validation": "1", "rejected": "3", "accepted": "8"},
        {"train": "4", "validation": "0", "rejected": "1", "accepted": "4"},
    ]
    assert page.count('<svg class="quality-histogram"') == 2
    charts = [dict(re.findall(r"<title>([^<:]+): (\d+)</title>", side)) for side in sides]
    assert charts[0]["0.9-1.0"] == "4" and charts[0]["0.7-0.8"] == "3" and charts[1]["0.5-0.6"] == "1"
    assert '<td class="number" id="pairs-in-both">2</td>' in page  # swim (normalized) and eat
    assert '<td class="number" id="questions-in-both">3</td>' in page  # and sleep, answered otherwise
    same = page.split('id="same-pairs"', 1)[1].split("</ul>", 1)[0]
    assert "How do otters swim?" in same and "How do otters eat?" in same and "sleep" not in same
    other = page.split('id="other-answers"', 1)[1].split("</ul>", 1)[0]
    assert "How do otters sleep?" in other and "swim" not in other
    assert f'href="/datasets/{datasets.b}/records/2?split=train"' in other
    assert content_keys("HOW do otters   swim?", "otters swim in RIVERS.") == content_keys(
        "How do otters swim?", "Otters swim in rivers."
    )


def test_compare_keeps_each_sides_verdict(datasets: Datasets) -> None:
    app = datasets.app()
    hidden = get(app, f"/datasets/compare?a={datasets.a}&b={datasets.stranger}").text
    assert "intact, signer NOT trusted" in hidden and 'id="overlap"' not in hidden and "Who signed" not in hidden
    shown = get(app, f"/datasets/compare?a={datasets.a}&b={datasets.stranger}&allow_untrusted=1").text
    assert '<td class="number" id="pairs-in-both">0</td>' in shown
    same = get(app, f"/datasets/compare?a={datasets.a}&b={datasets.a}")
    assert same.status_code == 400 and "pick two different datasets" in same.text
    assert get(app, f"/datasets/compare?a={datasets.a}&b=run-nope").status_code == 404


@pytest.mark.parametrize("export_format", ["messages", "openai", "alpaca", "sharegpt", "dpo", "fn", "parquet"])
def test_export_downloads_the_bytes_the_command_line_writes(
    export_format: str, datasets: Datasets, acx: Acx, tmp_path: Path
) -> None:
    split = "all" if export_format == "messages" else "train"
    response = get(
        datasets.app(),
        f"/datasets/{datasets.a}/export",
        method="POST",
        data={"format": export_format, "split": split},
        form_page=f"/datasets/{datasets.a}",
    )
    assert response.status_code == 200, response.text
    cli = tmp_path / "cli-export"
    acx("-w", datasets.root, "dataset", "export", datasets.folders["a"], "--format", export_format, "--split", split,
        "-o", cli, "--no-trainer-configs")  # fmt: skip
    assert response.content == cli.read_bytes()
    assert response.content or export_format == "dpo"  # no pair here has a first draft to prefer against
    suffix = {"fn": ".fn", "parquet": ".parquet"}.get(export_format, ".jsonl")
    named = "-all" if split == "all" else ""
    expected = f'attachment; filename="a-{export_format}{named}{suffix}"'
    assert response.headers["content-disposition"] == expected
    leftovers = list((datasets.root / ".arcticcodex" / "cache" / "exports").glob("**/*"))
    assert leftovers == []  # the temporary file is gone once it is streamed


def test_an_untrusted_export_needs_the_box_ticked_and_a_broken_one_is_refused(
    tmp_path: Path, datasets: Datasets
) -> None:
    app, run = datasets.app(), datasets.stranger
    page = get(app, f"/datasets/{run}").text
    assert 'id="export-allow-untrusted"' in page
    refused = post_export(app, run, {"format": "messages", "split": "train"})
    assert refused.status_code == 200 and "its signer is NOT trusted" in refused.text  # beside the form
    assert refused.text.index('id="export-form"') < refused.text.index('class="form-error"')
    allowed = post_export(app, run, {"format": "alpaca", "split": "train", "allow_untrusted": "1"})
    assert allowed.status_code == 200 and b'"instruction": "Who signed this?"' in allowed.content

    workspace = Workspace.open(datasets.root)
    signer = Ed25519Signer.generate()
    TrustedKeys.for_user().trust_key(signer.verifier(), name="breaker", origin="the test")
    folder = tmp_path / "broken"
    broken = write_dataset(workspace, folder, signer, [make_pair("What do moles dig?", "Tunnels.")])
    train = folder / "train.jsonl"
    train.write_bytes(train.read_bytes().replace(b"Tunnels.", b"Toupees.", 1))
    assert 'id="export-refused"' in get(app, f"/datasets/{broken}").text
    compared = get(app, f"/datasets/compare?a={datasets.a}&b={broken}").text
    assert "Nothing from this dataset is compared: it is NOT intact" in compared and 'id="overlap"' not in compared
    refused = post_export(app, broken, {"format": "messages", "split": "train", "allow_untrusted": "1"})
    error = refused.text.split('<p class="form-error" role="alert">', 1)[1].split("</p>", 1)[0]
    assert "is NOT intact" in error and "nothing was used from it" in error and "Toupees" not in refused.text
    assert str(folder) not in error  # no path of this machine in the message
    assert post_export(app, broken, {"format": "nonsense", "split": "train"}).text.count("choose an export format") == 1


def post_export(app: object, run: str, data: dict[str, str]) -> httpx.Response:
    """The export form posted from the dataset's page (with its Referer), the redirect back followed."""
    import httpx2 as httpx

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", follow_redirects=True) as client:
            token = form_token((await client.get(f"/datasets/{run}")).text)
            return await client.post(
                f"/datasets/{run}/export",
                data={"csrf_token": token, **data},
                headers={"referer": f"http://127.0.0.1/datasets/{run}"},
            )

    return run_sync(call())


def test_an_export_without_the_form_token_is_refused(datasets: Datasets) -> None:
    response = get(
        datasets.app(), f"/datasets/{datasets.a}/export", method="POST", data={"format": "messages"}, form_page=None
    )
    assert response.status_code == 403 and b'"messages"' not in response.content


def test_the_dataset_pages_do_their_file_and_database_work_off_the_event_loop(datasets: Datasets) -> None:
    """As ``test_studio_workers`` checks every route: here every dataset page, with a search, a filter,
    a comparison and an export, on an index that must be built first (a fresh cache)."""
    from test_studio_workers import _WATCHES, LoopWatch

    shutil.rmtree(datasets.root / ".arcticcodex" / "cache", ignore_errors=True)
    app, run = datasets.app(), datasets.a
    watch = LoopWatch()
    _WATCHES.append(watch)
    try:
        statuses = [
            get(watch.app(app), path).status_code
            for path in (
                "/datasets",
                f"/datasets/{run}?q=otters&min=0.5",
                f"/datasets/{run}?split=rejected&stage=teachers",
                f"/datasets/{run}/records/0",
                f"/datasets/compare?a={run}&b={datasets.b}",
            )
        ]
        export = get(
            watch.app(app),
            f"/datasets/{run}/export",
            method="POST",
            data={"format": "parquet", "split": "all"},
            form_page=f"/datasets/{run}",
        )
    finally:
        _WATCHES.remove(watch)
    assert statuses == [200] * 5 and export.status_code == 200 and export.content.startswith(b"PAR1")
    assert watch.loops and not watch.seen, f"blocking work on the Studio's event loop: {watch.seen}"
