"""Issue 12, item 4: a prompt with evidence is never failed with "nothing to draft".

With an API teacher configured and no --drafter (``auto``), the offline drafter answers from matching
passages, and when none matches the configured rewriter writes the first answer from the evidence;
offline, the drafter offers the evidence's leading passages for the judge to decide on.  The offline
drafter also reads real documents: pydoc text, a Markdown table, an HTML page with headings.
"""

from __future__ import annotations

import json
import pydoc
import zlib
from pathlib import Path

from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, records, write_prompts

UNMATCHED = {  # no word of the question (stemmed) is in the evidence: the extractive drafter finds nothing
    "instruction": "Which creatures construct barriers across rivers?",
    "evidence": "Beavers build dams from branches and mud. Their dams make ponds.",
}
MATCHED = {"instruction": "What do beavers build dams from?", "evidence": "Beavers build dams from branches and mud."}


def test_with_an_api_teacher_the_rewriter_drafts_what_the_extractive_drafter_cannot(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "p.jsonl", [UNMATCHED, MATCHED])
    out = tmp_path / "out"
    summary = json.loads(acx("-w", root, "distill", "--prompts", prompts, "--out", out, "--json").output)
    assert (summary["accepted"], summary["failed"], summary["exit_status"]) == (2, 0, 0)
    drafted = [request for request in server.requests if request.role == "drafter"]
    assert len(drafted) == 1  # only the prompt the extractive drafter could not answer was sent to the model
    assert UNMATCHED["instruction"] in drafted[0].body["messages"][1]["content"]
    unmatched, matched = records(out / "train.jsonl")
    assert unmatched["feedback"].endswith("(drafted by gpu (fake-model))")
    assert matched["feedback"].endswith("(drafted by extractive-drafter/v2 (offline, no LLM))")
    shown = json.loads(acx("-w", root, "runs", "show", summary["run_id"], "--json").output)
    assert shown["settings"]["drafter"] == "extractive" and shown["settings"]["fallback_drafter"] == "gpu"
    assert "the run's rewriter" in acx("-w", root, "distill", "--help").output


def test_offline_the_leading_passages_are_judged_instead_of_failing(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    acx("-w", workspace.root, "keys", "new", "dataset")
    prompts = write_prompts(tmp_path / "p.jsonl", [UNMATCHED])
    out = tmp_path / "out"
    summary = json.loads(acx("-w", workspace.root, "distill", "--prompts", prompts, "--out", out, "--json").output)
    assert summary["failed"] == 0 and summary["accepted"] + summary["rejected"] == 1
    [pair] = records(out / "train.jsonl") + records(out / "rejected.jsonl")
    assert pair["revisions"][0]["text"] == UNMATCHED["evidence"]
    assert "no passage matched: the leading ones" in pair["feedback"]


def test_a_realistic_corpus_distils_offline_with_no_failure(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-256"\n')
    acx("-w", workspace.root, "keys", "new", "dataset")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "zlib.txt").write_text(pydoc.plain(pydoc.render_doc(zlib, renderer=pydoc.plaintext)))
    (corpus / "settings.md").write_text(
        "# Run settings\n\nA run reads its settings when it starts.\n\n"
        "| Setting | Default | Meaning |\n|---|---|---|\n"
        "| threshold | 0.8 | the quality a pair needs to be accepted |\n"
        "| max_rounds | 3 | critique and rewrite rounds per prompt |\n"
    )
    (corpus / "policy.html").write_text(
        "<html><head><title>Security policy</title></head><body>"
        "<h2>Password policy</h2><p>Passwords must be at least twelve characters long.</p>"
        "<p>Passwords expire after ninety days.</p>"
        "<h2>Sessions</h2><p>A session ends after thirty minutes without activity.</p></body></html>"
    )
    acx("-w", workspace.root, "vault", "import", corpus)
    prompts = write_prompts(  # no evidence given: each is answered from what the vault retrieves
        tmp_path / "questions.jsonl",
        [
            {"instruction": "How long must a password be?"},
            {"instruction": "What is the default threshold of a run?"},
            {"instruction": "What does zlib.compress do?"},
        ],
    )
    out = tmp_path / "out"
    summary = json.loads(acx("-w", workspace.root, "distill", "--prompts", prompts, "--out", out, "--json").output)
    assert summary["failed"] == 0 and summary["exit_status"] in (0, 5)
    pairs = {pair["instruction"]: pair for pair in records(out / "train.jsonl") + records(out / "rejected.jsonl")}
    drafts = {question: pair["revisions"][0]["text"] for question, pair in pairs.items()}
    assert drafts["How long must a password be?"].startswith("Passwords must be at least twelve characters long.")
    assert "Password policy" not in drafts["How long must a password be?"]  # the heading is not glued on
    assert "Setting: threshold; Default: 0.8" in drafts["What is the default threshold of a run?"]  # a table row
    assert "compress" in drafts["What does zlib.compress do?"].lower()
    assert pairs["How long must a password be?"]["accepted"]  # the local judge finds the draft in the evidence
    curriculum = json.loads(
        acx("-w", workspace.root, "distill", "--from-vault", "--out", tmp_path / "curriculum", "--json").output
    )
    assert curriculum["failed"] == 0 and curriculum["accepted"] > 0 and curriculum["exit_status"] == 0
