"""The Studio's pages after a first hour of real use (issue 12, item 12): every template renders with every
value it names (Jinja's StrictUndefined, so a blank "imported" column or sha256 fails here), search results
mark their matches, a number is the same on every page, validation and rejected records can be browsed, a
missing page is a styled 404, a dataset written by several runs is listed once, pairs are edited and decided
in bulk, and a trusted model can propose facts from the chat.  Also the builder the phone-width test uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import pytest

from arcticcodex.studio import create_app
from arcticcodex.studio.pages import render
from arcticcodex.vault import Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, records, write_prompts
from test_studio import SCRIPT, get

LAKES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]
SCORES = [0.95, 0.93, 0.91, 0.9, 0.88, 0.86]


def first_hour(acx: Acx, base: Path, server: FakeOpenAIServer) -> tuple[Path, str]:
    """A workspace as a new user leaves it: documents, a reviewed run (one pair edited, one rejected)
    published with a validation split, and a second run appended to the same dataset."""
    root = make_root(acx, base, server)
    (base / "otters.md").write_text(f"# Otters\n\nOtters eat mostly fish. {SCRIPT} They also eat crabs.\n")
    (base / "lakes.html").write_text(
        "<nav>Home · Lakes · About</nav><h1>Lakes</h1>"
        + "".join(f"<p>Lake {name} is {10 * n} metres deep.</p>" for n, name in enumerate(LAKES, 1))
        + "<footer>© Lake Society</footer>"
    )
    acx("-w", root, "vault", "import", base / "otters.md", base / "lakes.html")
    prompts = [
        {"instruction": f"How deep is Lake {n}?", "evidence": f"Lake {n} is {10 * i} m."}
        for i, n in enumerate(LAKES, 1)
    ]
    server.script("critic", [{"score": s, "criteria": {"grounding": s}, "weaknesses": []} for s in SCORES])
    args = ["--teachers", "gpu", "--concurrency", "1", "--json"]
    out = base / "lakes-data"
    first = write_prompts(base / "lakes.jsonl", prompts)
    run = json.loads(
        acx(
            "-w", root, "distill", "--prompts", first, "--out", out, "--review", "--validation", "0.34", *args, code=4
        ).stdout
    )["run_id"]
    acx("-w", root, "review", "edit", f"pair:{run}:0", "--completion", f"Lake Alpha is 10 metres deep [1]. {SCRIPT}")
    acx("-w", root, "review", "reject", f"pair:{run}:5", "--reason", "the evidence says m, not metres")
    acx("-w", root, "review", "approve", "--run", run)
    acx("-w", root, "distill", "--resume", run)
    more = write_prompts(
        base / "more.jsonl", [{"instruction": "How deep is Lake Golf?", "evidence": "Lake Golf is 70 m."}]
    )
    acx("-w", root, "distill", "--prompts", more, "--out", out, "--append", "--validation", "0.34", *args[:2])
    return root, run


@pytest.fixture
def used(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> tuple[Path, str]:
    return first_hour(acx, tmp_path, server)


def number(html: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}">(\d+)<', html)
    assert found, f"no #{element_id} on the page"
    return int(found.group(1))


def test_every_page_renders_every_value_it_names(used: tuple[Path, str]) -> None:
    root, run = used
    app = create_app(Workspace.open(root))
    with Vault(Workspace.open(root)) as vault:
        otters = next(d for d in vault.list_documents() if d.source.endswith("otters.md"))
        chunk = vault.chunks_of(otters.id)[0]
    asked = get(app, "/chat", method="POST", data={"question": "What do otters eat?", "conversation": ""})
    paths = [
        "/", "/vault", "/vault/search?q=otters", f"/vault/documents/{otters.id}", f"/vault/chunks/{chunk.id}",
        asked.headers["location"], "/review", "/review?status=approved", "/review?status=rejected", "/datasets",
        f"/datasets/{run}", f"/datasets/{run}?split=validation", f"/datasets/{run}?split=rejected",
        f"/datasets/{run}/records/0", f"/datasets/{run}/records/0?split=validation",
        f"/datasets/{run}/records/0?split=rejected", "/runs", "/runs/new", f"/runs/{run}", "/gpus",
    ]  # fmt: skip
    for path in paths:
        response = get(app, path)
        assert response.status_code == 200, (path, response.text[-500:])
        assert "ArcticCodex Studio" in response.text and "<script>alert" not in response.text, path
    vault_page = get(app, "/vault").text
    assert f'<td class="muted">{otters.created_at}</td>' in vault_page  # the "imported" column
    document = get(app, f"/vault/documents/{otters.id}").text
    assert f'sha256 <span id="document-sha256">{otters.source_sha256}</span>' in document
    assert re.fullmatch(r"[0-9a-f]{64}", otters.source_sha256)
    assert f'<span id="chunk-sha256">{chunk.sha256}</span>' in get(app, f"/vault/chunks/{chunk.id}").text
    with pytest.raises(jinja2.UndefinedError, match="'counts' is undefined"):
        render("home.html", title="Home", section="Home", refresh=None)  # a name the page forgot: an error


def test_search_results_mark_what_matched(used: tuple[Path, str]) -> None:
    app = create_app(Workspace.open(used[0]))
    page = get(app, "/vault/search?q=otters+fish").text
    snippet = page[page.index('<p class="snippet">') :]
    snippet = snippet[: snippet.index("</p>")]
    assert "<mark>Otters</mark>" in snippet and "<mark>fish</mark>" in snippet
    assert "&lt;script&gt;" in snippet and "<script>" not in snippet  # text between the marks is still escaped
    assert "<mark>" not in get(app, "/vault").text  # nothing marked without a query


def test_a_number_is_the_same_on_every_page(used: tuple[Path, str], acx: Acx) -> None:
    root, run = used
    app = create_app(Workspace.open(root))
    with Vault(Workspace.open(root)) as vault:
        ReviewQueue(vault).propose_fact("otters", "eat", "crabs")
    waiting = write_prompts(root.parent / "waiting.jsonl", [{"instruction": "Is Lake Hotel deep?", "evidence": "No."}])
    args = ["--prompts", str(waiting), "--out", str(root.parent / "waiting"), "--teachers", "gpu", "--review"]
    acx("-w", root, "distill", *args, code=4)  # one pair waits for review too
    home, vault_page, review = get(app, "/").text, get(app, "/vault").text, get(app, "/review").text
    for name in ("count-documents", "count-chunks", "count-facts"):
        assert number(home, name) == number(vault_page, name), name
    assert number(home, "count-documents") == 2
    assert number(home, "count-pending") == number(review, "count-pending") == 2  # a proposal and a pair
    datasets = get(app, "/datasets").text
    assert number(home, "count-datasets") == number(datasets, "count-datasets") == 1
    row = re.search(r'class="number count-accepted">(\d+)<.*?class="number count-rejected">(\d+)<', datasets, re.S)
    assert row is not None
    dataset = get(app, f"/datasets/{run}").text
    accepted = int(re.search(r'class="count-accepted">(\d+)<', dataset).group(1))  # type: ignore[union-attr]
    rejected = int(re.search(r'class="count-rejected">(\d+)<', dataset).group(1))  # type: ignore[union-attr]
    assert (int(row.group(1)), int(row.group(2))) == (accepted, rejected) == (6, 1)
    runs = get(app, "/runs").text
    assert re.search(rf'<tr id="run-{run}">.*?class="number rejected-in-review">1<', runs)


def test_validation_and_rejected_records_can_be_browsed(used: tuple[Path, str], tmp_path: Path) -> None:
    root, run = used
    app = create_app(Workspace.open(root))
    validation = records(tmp_path / "lakes-data" / "validation.jsonl")
    rejected = records(tmp_path / "lakes-data" / "rejected.jsonl")
    assert validation and rejected
    page = get(app, f"/datasets/{run}").text
    assert f'href="/datasets/{run}?split=validation"' in page and f'href="/datasets/{run}?split=rejected"' in page
    held = get(app, f"/datasets/{run}?split=validation").text
    assert all(r["instruction"] in held for r in validation)
    assert f'href="/datasets/{run}/records/0?split=validation"' in held
    thrown = get(app, f"/datasets/{run}?split=rejected").text
    assert (
        "How deep is Lake Foxtrot?" in thrown and "rejected in human review: the evidence says m, not metres" in thrown
    )
    record = get(app, f"/datasets/{run}/records/0?split=rejected").text
    assert "rejected · quality" in record and 'id="feedback"' in record
    missing = get(app, f"/datasets/{run}/records/99?split=validation")
    assert missing.status_code == 404 and "the validation split of the dataset of run" in missing.text
    assert get(app, f"/datasets/{run}?split=secret").status_code == 400


def test_an_edited_pair_is_published_as_edited(used: tuple[Path, str]) -> None:
    root, run = used
    app = create_app(Workspace.open(root))
    listing = get(app, f"/datasets/{run}").text + get(app, f"/datasets/{run}?split=validation").text
    assert "How deep is Lake Alpha?" in listing
    pages = [get(app, f"/datasets/{run}/records/{n}{q}").text for n in range(5) for q in ("", "?split=validation")]
    alpha = next(p for p in pages if "How deep is Lake Alpha?" in p)
    assert "Lake Alpha is 10 metres deep [1]. &lt;script&gt;" in alpha and "edited in human review by" in alpha


def test_a_missing_page_is_a_styled_404(used: tuple[Path, str]) -> None:
    app = create_app(Workspace.open(used[0]))
    for path, words in (
        ("/no/such/page", "There is no page at /no/such/page."),
        ("/datasets/run-nope", "no dataset written by run &#39;run-nope&#39;"),
        ("/vault/documents/doc-nope", "doc-nope"),
    ):
        response = get(app, path)
        assert response.status_code == 404, path
        assert (
            words in response.text
            and 'id="error-message"' in response.text
            and '<nav aria-label="Studio sections">' in response.text
        )
        assert "Back to the home page" in response.text
        assert "script-src 'self';" in response.headers["content-security-policy"]


def test_a_dataset_written_by_several_runs_is_listed_once(used: tuple[Path, str]) -> None:
    root, first = used
    app = create_app(Workspace.open(root))
    datasets = get(app, "/datasets").text
    assert datasets.count('<tr id="dataset-') == 1 and "and 1 earlier run(s)" in datasets
    appended = re.search(r'<tr id="dataset-([^"]+)">', datasets).group(1)  # type: ignore[union-attr]
    assert appended != first  # listed under the run that wrote it last
    for run in (first, appended):  # either run's address opens the one dataset
        page = get(app, f"/datasets/{run}").text
        assert f"written by {appended}" in page and '<span class="count-accepted">6</span>' in page
    runs = get(app, "/runs").text
    assert runs.count(">lakes-data</a>") == 2  # each run links to the dataset it wrote into


def test_pairs_are_edited_and_decided_in_bulk_in_the_studio(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = [
        {"instruction": f"How deep is Lake {n}?", "evidence": f"Lake {n} is {10 * i} m."}
        for i, n in enumerate(LAKES, 1)
    ]
    server.script("critic", [{"score": s, "criteria": {"grounding": s}, "weaknesses": []} for s in SCORES])
    path = write_prompts(tmp_path / "lakes.jsonl", prompts)
    args = ["distill", "--prompts", str(path), "--out", str(tmp_path / "out"), "--teachers", "gpu", "--review"]
    run = json.loads(acx("-w", root, *args, "--concurrency", "1", "--json", code=4).stdout)["run_id"]
    app = create_app(Workspace.open(root))
    page = get(app, "/review").text
    assert f'action="/review/pair:{run}:0/edit"' in page and 'id="bulk"' in page and number(page, "count-pending") == 6
    edited = get(
        app,
        f"/review/pair:{run}:1/edit",
        method="POST",
        data={"completion": "Lake Bravo is 20 m [1].", "instruction": ""},
    )
    assert edited.status_code == 303
    assert "Lake Bravo is 20 m [1]." in get(app, "/review").text and "edited by studio" in get(app, "/review").text
    bulk = get(app, "/review/bulk/approve", method="POST", data={"run": run, "min_quality": "0.9"})
    assert bulk.status_code == 303
    refused = get(app, "/review/bulk/reject", method="POST", data={"run": run, "max_quality": "0.5", "reason": "weak"})
    assert refused.status_code == 400 and f"nothing pending of run {run} with quality ≤ 0.5" in refused.text
    get(app, "/review/bulk/reject", method="POST", data={"run": run, "max_quality": "0.89", "reason": "weak"})
    approved = get(app, "/review?status=approved").text
    assert approved.count('class="card pair"') == 4 and "approved by studio" in approved
    assert get(app, "/review?status=rejected").text.count("why: weak") == 2
    summary = json.loads(acx("-w", root, "distill", "--resume", run, "--json").stdout)
    assert (summary["written"], summary["rejected_in_review"]) == (4, 2)
    assert "Lake Bravo is 20 m [1]." in {r["completion"] for r in records(tmp_path / "out" / "train.jsonl")}


def test_the_chat_lets_a_trusted_model_propose_facts_for_review(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish.\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")
    app = create_app(Workspace.open(root))
    chat = get(app, "/chat").text
    assert '<option value="gpu">gpu</option>' in chat and 'name="tools"' in chat
    refused = get(app, "/chat", method="POST", data={"question": "Hi?", "model": "elsewhere", "tools": "on"})
    assert (
        refused.status_code == 400 and "&#39;elsewhere&#39; is not a trusted teacher of this workspace" in refused.text
    )
    server.script(
        "generic",
        [
            {
                "tool_calls": [
                    {"name": "propose_fact", "arguments": {"subject": "otters", "predicate": "eat", "object": "fish"}}
                ]
            },
            "Otters eat fish [1].",
        ],
    )
    asked = get(app, "/chat", method="POST", data={"question": "What do otters eat?", "model": "gpu", "tools": "on"})
    assert asked.status_code == 303 and "proposed=1" in asked.headers["location"]
    answered = get(app, asked.headers["location"]).text
    assert "Otters eat fish [1]." in answered and "The agent proposed 1 fact(s)" in answered
    assert '<option value="gpu" selected>' in answered and 'name="tools" checked' in answered
    with Vault(Workspace.open(root)) as vault:
        (item,) = ReviewQueue(vault).list()
        assert item.text == "otters — eat — fish" and vault.list_facts() == []
    assert number(get(app, "/").text, "count-pending") == 1
