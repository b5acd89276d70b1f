"""/review with the evidence (issue 16, item 2): each pending pair shows the evidence texts it rests on with the
passages its answer cites marked, every revision with the critics' scores and the verifier's claims; hostile
text is shown as text; bulk decisions by run, quality, source and teacher take exactly the pairs their preview
counts; each teacher's agreement with the person (Cohen's κ) is shown with its n; a POST without the form
token decides nothing.  Also the builder the browser test uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2 as httpx
import pytest

from arcticcodex._sync import run_sync
from arcticcodex.human_review import HumanReview
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, write_prompts
from test_studio import SCRIPT, form_token, get

LAKES = ["Alpha", "Bravo", "Charlie", "Delta"]
SCORES = [0.95, 0.91, 0.88, 0.84]


def reviewed_workspace(acx: Acx, base: Path, server: FakeOpenAIServer) -> tuple[Path, str, str]:
    """Two reviewed runs waiting for a person: four prompts (free-text evidence, one with a <script> in it)
    judged by the teacher ``gpu`` — the second pair's claim unsupported — and a vault curriculum judged by
    ``second``.  Returns the workspace root and the two runs' ids."""
    root = make_root(acx, base, server)
    acx.add_teacher(root, server, name="second", model="fake-model")
    (base / "otters.md").write_text(
        "# Otters\n\nOtters eat mostly fish. They also eat crabs and frogs.\n\n"
        "# Beavers\n\nBeavers build dams from wood and mud. They eat bark.\n"
    )
    acx("-w", root, "vault", "import", base / "otters.md")
    prompts = [
        {"instruction": f"How deep is Lake {name}?", "evidence": f"Lake {name} is {10 * n} m deep. It is cold."}
        for n, name in enumerate(LAKES, 1)
    ]
    prompts[0]["evidence"] = f"Lake Alpha is 10 m deep. {SCRIPT} It is cold."
    server.script("critic", [{"score": s, "criteria": {"grounding": s}, "weaknesses": []} for s in SCORES])
    claim = {"claim": "Lake Bravo is 20 m deep.", "verdict": "unsupported", "evidence": [1], "note": ""}
    supported = {"claims": [{"claim": "it says so", "verdict": "supported", "evidence": [1], "note": ""}]}
    server.script("verifier", [supported, {"claims": [claim]}, supported, supported])
    path = write_prompts(base / "lakes.jsonl", prompts)
    args: list[str | Path] = [
        "--teachers",
        "gpu",
        "--concurrency",
        "1",
        "--review",
        "--json",
        "--out",
        base / "lakes-data",
    ]
    lakes = json.loads(acx("-w", root, "distill", "--prompts", path, *args, code=4).stdout)["run_id"]
    args = ["--teachers", "second", "--concurrency", "1", "--review", "--json", "--out", base / "otters-data"]
    otters = json.loads(acx("-w", root, "distill", "--from-vault", "--limit", "1", *args, code=4).stdout)["run_id"]
    return root, lakes, otters


@pytest.fixture
def reviewed(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> tuple[Path, str, str]:
    return reviewed_workspace(acx, tmp_path, server)


def card(page: str, item_id: str) -> str:
    found = re.search(rf'<div class="card pair" id="{re.escape(item_id)}".*?\n</div>', page, flags=re.S)
    assert found, f"no card for {item_id}"
    return found.group(0)


def decisions(root: Path) -> dict[str, tuple[str, str | None, str]]:
    """item id → (status, decided by, reason) of every decided pair, as stored."""
    with HumanReview(Workspace.open(root), by="test") as review:
        decided = review.items("approved", kind="pair") + review.items("rejected", kind="pair")
    return {pair.id: (pair.status, pair.decided_by, pair.reason) for pair in decided}  # type: ignore[union-attr]


def test_a_pending_pair_shows_its_evidence_revisions_scores_and_claims(reviewed: tuple[Path, str, str]) -> None:
    root, lakes, _ = reviewed
    page = get(create_app(Workspace.open(root)), "/review").text
    alpha = card(page, f"pair:{lakes}:0")
    assert "How deep is Lake Alpha?" in alpha
    assert "<mark>Lake Alpha is 10 m deep.</mark>" in alpha  # the sentence the answer repeats, marked
    hostile = "<mark>&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; It is cold.</mark>"
    assert hostile in alpha and "<script>alert" not in page  # hostile evidence (and answer) shown as text
    assert "cited by the answer" in alpha and "lakes.jsonl (evidence 1)" in alpha
    assert 'critics\' score <strong class="score">0.95</strong> · grounding 0.95' in alpha and " · by gpu</p>" in alpha
    assert '<span class="claim-verdict ok">supported</span>: it says so' in alpha
    bravo = card(page, f"pair:{lakes}:1")
    assert '<span class="claim-verdict warn">unsupported</span>: Lake Bravo is 20 m deep.' in bravo
    assert "<mark>Lake Bravo is 20 m deep.</mark> It is cold." in bravo  # the sentence not repeated, unmarked


def test_bulk_decisions_take_exactly_the_pairs_their_filter_previews(reviewed: tuple[Path, str, str]) -> None:
    root, lakes, otters = reviewed
    app = create_app(Workspace.open(root))
    preview = get(app, "/review?teacher=gpu&max_quality=0.9").text
    assert (
        '<span id="matched">2</span> pairs match</strong> of any reviewed run with quality ≤ 0.9 judged by gpu'
        in preview
    )
    assert preview.count('class="card pair"') == 2 and "Reject 2 pairs" in preview
    assert '<input type="hidden" name="teacher" value="gpu">' in preview  # the decision takes what was previewed
    assert '<span id="matched">1</span> pair matches' in get(app, "/review?source=curriculum").text
    assert decisions(root) == {}  # previewing decides nothing

    assert '<input type="hidden" name="expected" value="2">' in preview
    stale = {"teacher": "gpu", "max_quality": "0.9", "reason": "too thin", "expected": "3"}  # counted before a change
    refused = get(app, "/review/bulk/reject", method="POST", data=stale)
    assert (
        refused.status_code == 400 and "2 pending pairs match" in refused.text and "not the 3 previewed" in refused.text
    )
    assert decisions(root) == {}
    data = {"teacher": "gpu", "max_quality": "0.9", "reason": "too thin", "expected": "2"}
    assert get(app, "/review/bulk/reject", method="POST", data=data).status_code == 303  # not otters' 0.9: second's
    assert get(app, "/review/bulk/approve", method="POST", data={"source": "curriculum"}).status_code == 303
    data = {"run": lakes, "teacher": "gpu", "min_quality": "0.95", "source": "prompts"}
    assert get(app, "/review/bulk/approve", method="POST", data=data).status_code == 303
    assert decisions(root) == {
        f"pair:{lakes}:0": ("approved", "studio", ""),
        f"pair:{lakes}:2": ("rejected", "studio", "too thin"),
        f"pair:{lakes}:3": ("rejected", "studio", "too thin"),
        f"pair:{otters}:0": ("approved", "studio", ""),
    }
    refused = get(app, "/review/bulk/approve", method="POST", data={"teacher": "nobody"})
    assert refused.status_code == 400 and "nothing pending of any reviewed run judged by nobody" in refused.text
    assert len(decisions(root)) == 4


def test_each_teachers_agreement_with_the_person_is_shown_with_its_n(reviewed: tuple[Path, str, str]) -> None:
    root, lakes, otters = reviewed
    app = create_app(Workspace.open(root))
    assert "No pair has been decided yet" in get(app, "/review").text
    for position, action in ((0, "approve"), (1, "reject"), (2, "reject"), (3, "reject")):
        get(app, f"/review/pair:{lakes}:{position}/{action}", method="POST", data={"reason": "no"})
    get(app, f"/review/pair:{otters}:0/approve", method="POST")
    page = get(app, "/review?status=approved").text
    # gpu accepted 0, 2, 3 (1's claim is unsupported); the person approved 0: p_o = .5, p_e = .75·.25 + .25·.75
    # = .375, κ = (.5 − .375) / .625 = .2
    gpu = re.search(r'<tr id="agreement-gpu">.*?</tr>', page, flags=re.S)
    assert (
        gpu and '<td class="number n">4</td>' in gpu.group(0) and '<td class="number kappa">0.20</td>' in gpu.group(0)
    )
    second = re.search(r'<tr id="agreement-second">.*?</tr>', page, flags=re.S)
    assert second and '<td class="number n">1</td>' in second.group(0)
    assert 'not defined: <span class="muted">both accepted every one of the 1 pairs (p_e = 1)' in second.group(0)


def test_a_post_without_the_form_token_decides_nothing(reviewed: tuple[Path, str, str]) -> None:
    root, lakes, _ = reviewed
    app = create_app(Workspace.open(root))
    bulk = get(app, "/review/bulk/approve", method="POST", data={"teacher": "gpu"}, form_page=None)
    one = get(app, f"/review/pair:{lakes}:0/approve", method="POST", form_page=None)
    edit = get(
        app, f"/review/pair:{lakes}:1/edit", method="POST", data={"completion": "a forged answer"}, form_page=None
    )
    assert {bulk.status_code, one.status_code, edit.status_code} == {403}
    assert decisions(root) == {}
    assert "a forged answer" not in get(app, "/review").text


def test_a_failed_bulk_form_shows_its_error_beside_it(reviewed: tuple[Path, str, str]) -> None:
    root, _, _ = reviewed
    app = create_app(Workspace.open(root))

    async def scenario() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            token = form_token((await client.get("/review?teacher=gpu&min_quality=0.99")).text)
            data = {"csrf_token": token, "teacher": "gpu", "min_quality": "0.99", "reason": "weak"}
            headers = {"referer": "http://127.0.0.1/review?teacher=gpu&min_quality=0.99"}
            sent = await client.post("/review/bulk/reject", data=data, headers=headers)
            assert sent.status_code == 303
            return (await client.get(sent.headers["location"])).text

    page = run_sync(scenario())
    bulk = re.search(r'<section class="card" id="bulk".*?</section>', page, flags=re.S)
    assert (
        bulk
        and '<p class="form-error" role="alert">nothing pending of any reviewed run with quality ≥ 0.99'
        in bulk.group(0)
    )
    assert '<span id="matched">0</span> pairs match' in bulk.group(0) and decisions(root) == {}


def test_a_pair_has_a_page_of_its_own(reviewed: tuple[Path, str, str]) -> None:
    root, lakes, _ = reviewed
    app = create_app(Workspace.open(root))
    queue = get(app, "/review").text
    assert f'<a class="muted" href="/review/pair:{lakes}:1">pair:{lakes}:1</a>' in queue  # each card links to it
    one = get(app, f"/review/pair:{lakes}:1")
    assert one.status_code == 200 and one.text.count('class="card pair"') == 1
    bravo = card(one.text, f"pair:{lakes}:1")
    assert f'<h2 class="card-title" id="pair:{lakes}:1-title">Training pair' in bravo  # headings in order
    assert "<mark>Lake Bravo is 20 m deep.</mark>" in bravo and "unsupported</span>: Lake Bravo" in bravo
    assert f'action="/review/pair:{lakes}:1/approve"' in bravo
    get(app, f"/review/pair:{lakes}:1/reject", method="POST", data={"reason": "unsupported"})
    decided = card(get(app, f"/review/pair:{lakes}:1").text, f"pair:{lakes}:1")
    assert "rejected by studio" in decided and "why: unsupported" in decided and "/approve" not in decided
    missing = get(app, f"/review/pair:{lakes}:99")
    assert missing.status_code == 404 and f"run {lakes} has no accepted pair at position 99" in missing.text


def test_evidence_retrieved_from_the_vault_is_shown_while_the_vault_still_holds_it(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish. They also eat crabs and frogs.\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")
    path = write_prompts(tmp_path / "asked.jsonl", [{"instruction": "What do otters eat?"}])  # no evidence given
    args: list[str | Path] = ["--teachers", "gpu", "--review", "--json", "--out", tmp_path / "data"]
    run = json.loads(acx("-w", root, "distill", "--prompts", path, *args, code=4).stdout)["run_id"]
    app = create_app(Workspace.open(root))
    shown = card(get(app, f"/review/pair:{run}:0").text, f"pair:{run}:0")
    assert "<mark>Otters eat mostly fish.</mark>" in shown and "otters.md" in shown
    (document,) = json.loads(acx("-w", root, "vault", "docs", "--json").stdout)
    acx("-w", root, "vault", "forget", document["id"], "--reason", "wrong source")
    gone = card(get(app, f"/review/pair:{run}:0").text, f"pair:{run}:0")
    assert "is no longer in this workspace (or no longer the text the pair was judged against)" in gone
    evidence = gone[gone.index('class="part">Evidence') : gone.index('class="part">Revisions')]
    assert "Otters eat mostly fish." not in evidence  # the answer is still shown; the forgotten text is not
