"""Reviewing a run's pairs through the CLI (issue 12, item 11): decided pairs are listed, a pair is edited (the
edit recorded, the published record signed anew), pairs are decided in bulk by run and quality, run summaries
count the human rejections, and the agent's propose_fact is reachable from `ask --tools`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.distill.journal import RunJournal
from arcticcodex.distill.pair_review import PairReviews
from arcticcodex.errors import UserError
from arcticcodex.human_review import HumanReview, PairFilter, Selection
from arcticcodex.vault import Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, records, write_prompts

QUESTIONS = ["What do otters eat?", "Where do otters sleep?", "How long do otters live?", "Can otters swim?"]
FACTS = ["Otters eat fish.", "Otters sleep in dens.", "Otters live ten years.", "Otters swim well."]
SCORES = [0.95, 0.92, 0.86, 0.82]


def reviewed_run(acx: Acx, tmp_path: Path, server: FakeOpenAIServer) -> tuple[Path, str, list[str]]:
    """A run made with --review whose four accepted pairs score 0.95, 0.92, 0.86 and 0.82."""
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(
        tmp_path / "otters.jsonl", [{"instruction": q, "evidence": f} for q, f in zip(QUESTIONS, FACTS, strict=True)]
    )
    server.script("critic", [{"score": s, "criteria": {"grounding": s}, "weaknesses": []} for s in SCORES])
    args = ["distill", "--prompts", str(prompts), "--out", tmp_path / "otters", "--teachers", "gpu"]
    summary = json.loads(acx("-w", root, *args, "--review", "--concurrency", "1", "--json", code=4).stdout)
    assert summary["awaiting_review"] == 4
    pairs = json.loads(acx("-w", root, "review", "list", "--kind", "pair", "--json").stdout)
    assert [pair["quality"] for pair in pairs] == SCORES
    return root, summary["run_id"], [pair["id"] for pair in pairs]


def test_bulk_decisions_by_run_and_quality_and_the_lists_of_decided_pairs(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root, run_id, ids = reviewed_run(acx, tmp_path, server)
    both = acx("-w", root, "review", "approve", ids[0], "--run", run_id, code=2)
    assert "name items by id or choose them with --run/--min-quality/--max-quality/--all, not both" in both.output
    neither = acx("-w", root, "review", "approve", code=2)
    assert "name the items to approve (ids from `arcticcodex review list`), or choose them with --run" in neither.output

    approved = acx("-w", root, "review", "approve", "--run", run_id, "--min-quality", "0.9")
    assert (
        f"approved pair {ids[0]}: Q: What do otters eat?" in approved.output and "approved 2 items" in approved.output
    )
    nothing = acx("-w", root, "review", "approve", "--run", run_id, "--min-quality", "0.99")
    assert f"nothing to approve: nothing pending of run {run_id} with quality ≥ 0.99" in nothing.output
    rejected = acx("-w", root, "review", "reject", "--run", run_id, "--max-quality", "0.85", "--reason", "too thin")
    assert f"rejected pair {ids[3]}" in rejected.output and ids[2] not in rejected.output

    listed = json.loads(acx("-w", root, "review", "list", "--status", "approved", "--kind", "pair", "--json").stdout)
    assert [(p["id"], p["status"], p["decided_by"] is not None) for p in listed] == [
        (ids[0], "approved", True),
        (ids[1], "approved", True),
    ]
    text = acx("-w", root, "review", "list", "--status", "rejected").output
    assert f"{ids[3]}  pair     q=0.82  Q: Can otters swim?" in text
    (shown,) = json.loads(acx("-w", root, "review", "list", "--status", "rejected", "--json").stdout)
    assert (shown["id"], shown["reason"]) == (ids[3], "too thin")
    again = acx("-w", root, "review", "reject", ids[3], "--reason", "again", code=1)
    assert f"{ids[3]} was already rejected by" in again.output and "decisions are final" in again.output

    acx("-w", root, "review", "approve", "--all")  # what is left: the 0.86 pair
    summary = json.loads(acx("-w", root, "distill", "--resume", run_id, "--json").stdout)
    assert (summary["written"], summary["rejected_in_review"], summary["awaiting_review"]) == (3, 1, 0)
    assert "1 rejected in review" in acx("-w", root, "distill", "--resume", run_id).output
    (thrown,) = records(tmp_path / "otters" / "rejected.jsonl")
    assert thrown["instruction"] == "Can otters swim?" and thrown["feedback"] == "rejected in human review: too thin"


def test_an_edited_pair_is_recorded_and_published_with_a_new_signature(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root, run_id, ids = reviewed_run(acx, tmp_path, server)
    wrong = acx("-w", root, "review", "edit", ids[0], "--text", "x", code=1)
    assert f"{ids[0]} is a training pair: edit its --instruction or --completion, not --text" in wrong.output
    empty = acx("-w", root, "review", "edit", ids[0], code=1)
    assert "a pair has an --instruction and a --completion to edit; give at least one" in empty.output
    new_answer = "Otters eat mostly fish, and crabs [1]."
    edited = json.loads(acx("-w", root, "review", "edit", ids[0], "--completion", new_answer, "--json").stdout)
    assert edited["completion"] == new_answer and edited["status"] == "pending"
    assert edited["edit"]["before"]["completion"] != new_answer and edited["edit"]["after"]["completion"] == new_answer
    assert edited["edit"]["by"] and edited["edit"]["at"]
    with RunJournal(Workspace.open(root)) as journal:
        (_, teachers_pair), *_ = list(journal.finished_pairs(run_id))
        assert teachers_pair["completion"] == edited["edit"]["before"]["completion"]  # the journal is not edited

    acx("-w", root, "review", "approve", "--run", run_id)
    late = acx("-w", root, "review", "edit", ids[0], "--completion", "late", code=1)  # decided pairs are final
    assert f"{ids[0]} was already approved by " in late.stderr and "neither decided again nor edited" in late.stderr
    acx("-w", root, "distill", "--resume", run_id)
    published = records(tmp_path / "otters" / "train.jsonl")[0]
    assert published["completion"] == new_answer and published["messages"][-1]["content"] == new_answer
    assert (
        published["id"] != teachers_pair["id"]
        and f"edited in human review by {edited['edit']['by']}" in (published["feedback"])
    )
    assert published["revisions"][-1]["text"] == edited["edit"]["before"]["completion"]  # the teachers' text kept
    assert verify_dataset(tmp_path / "otters").ok
    assert "OK: intact, signer trusted" in acx("-w", root, "dataset", "verify", tmp_path / "otters").output


def test_review_counts_per_run(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root, run_id, ids = reviewed_run(acx, tmp_path, server)
    acx("-w", root, "review", "reject", ids[1], ids[2], "--reason", "no")
    acx("-w", root, "review", "edit", ids[0], "--instruction", "What do river otters eat?")
    with RunJournal(Workspace.open(root)) as journal:
        assert PairReviews(journal).counts(run_id) == {"approved": 0, "rejected": 2, "edited": 1, "pending": 2}


def tool_reply(server: FakeOpenAIServer) -> None:
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


def test_ask_with_tools_lets_the_model_propose_a_fact_for_review(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish.\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")
    refused = acx("-w", root, "ask", "What do otters eat?", "--tools", code=2)
    assert "--tools needs --model TEACHER: the offline answerer quotes evidence and calls no tools" in refused.output
    tool_reply(server)
    answer = acx("-w", root, "ask", "What do otters eat? Remember it.", "--model", "gpu", "--tools")
    said = " ".join(answer.output.split())  # the terminal wraps long lines
    assert "Otters eat fish [1]." in said
    assert 'tool propose_fact({"subject": "otters", "predicate": "eat", "object": "fish"}) → proposed fact-' in said
    with Vault(Workspace.open(root)) as vault:
        (item,) = ReviewQueue(vault).list()
        assert (item.kind, item.text, vault.list_facts()) == ("fact", "otters — eat — fish", [])  # only proposed
    chats = [r for r in server.requests if r.path == "/v1/chat/completions" and r.body.get("tools")]
    assert {tool["function"]["name"] for tool in chats[0].body["tools"]} == {
        "propose_fact",
        "vault_search",
        "calculate",
    }

    tool_reply(server)
    chatted = acx("-w", root, "chat", "--model", "gpu", "--tools", input="Remember what otters eat.\n\n")
    assert "Otters eat fish [1]." in chatted.output and "tool propose_fact(" in chatted.output
    with Vault(Workspace.open(root)) as vault:
        assert len(ReviewQueue(vault).list()) == 2


def test_one_review_queue_holds_proposals_and_pairs_for_the_cli_and_the_studio_alike(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    """HumanReview is the one workflow behind `arcticcodex review` and the Studio's /review."""
    root, run_id, ids = reviewed_run(acx, tmp_path, server)
    workspace = Workspace.open(root)
    with Vault(workspace) as vault:
        fact = ReviewQueue(vault).propose_fact("otters", "eat", "fish").id
    with HumanReview(workspace, by="ana") as review:
        assert [item.id for item in review.items()] == [fact, *ids] and review.pending_count() == 5
        decided = review.decide([fact, ids[0]], "approved")
        assert [(item.id, item.status) for item in decided] == [(fact, "approved"), (ids[0], "approved")]
        chosen = review.decide_selected(Selection(PairFilter(run_id, max_quality=0.86)), "rejected", reason="thin")
        assert [item.id for item in chosen] == ids[2:]
        assert review.run_counts(run_id) == {"approved": 1, "rejected": 2, "edited": 0, "pending": 1}
        with pytest.raises(UserError, match="a rejection needs a reason"):
            review.decide([ids[1]], "rejected")
    listed = json.loads(acx("-w", root, "review", "list", "--status", "approved", "--json").stdout)
    assert [(row["id"], row["status"]) for row in listed] == [(fact, "approved"), (ids[0], "approved")]
    assert listed[1]["decided_by"] == "ana"
