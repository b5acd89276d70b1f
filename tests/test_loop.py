"""`arcticcodex loop` (issue 14, item 4): the student drafts, the teachers correct it, it learns, it is measured.

The end-to-end test serves a tiny model built in the test for real (`transformers serve`) as each
iteration's drafter, with the fake OpenAI server as the teachers and the judge: the critic calls a
draft weak until the rewriter has grounded it, so every pair carries a preference (the student's
draft rejected, the rewrite chosen).  The rest pin the pieces: when the loop stops early, the
summary and its chart, and what is refused before anything is created or paid for.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.distill.journal import RunJournal
from arcticcodex.distill.settings import RunSettings
from arcticcodex.loop import LoopJournal, LoopSettings
from arcticcodex.loop.report import loop_json, loop_svg
from arcticcodex.loop.stopping import best_iteration, stop_reason
from arcticcodex.training import TrainSettings
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer, default_reply
from test_distill_run import make_root, records, write_prompts

ANIMALS = {
    "otters": "Otters eat fish, crabs and sea urchins. They sleep in dens by the water.",
    "beavers": "Beavers build dams from branches and mud. Their dams make quiet ponds.",
    "herons": "Herons stand still in shallow water. They catch fish with a quick strike.",
    "voles": "Water voles dig burrows in river banks. They eat grasses and reeds.",
    "newts": "Newts breed in ponds in spring. They hide under logs on land.",
    "salmon": "Salmon swim upriver to spawn. They return to the stream where they hatched.",
}
PROMPTS = [
    {"instruction": f"What does the field guide say about {name}, part {part}?", "evidence": text}
    for name, text in ANIMALS.items()
    for part in (1, 2)
]
CHECKED = "(checked)"
ARCTICCODEX = str(Path(sys.executable).with_name("arcticcodex"))


def teachers_that_correct_every_draft(server: FakeOpenAIServer) -> None:
    """The critic calls any answer the rewriter has not grounded weak; the rewriter grounds it."""

    def critique(prompt: str) -> dict[str, Any]:
        answer = prompt.rpartition("ANSWER:")[2]
        score = 0.95 if CHECKED in answer else 0.3
        return {"score": score, "criteria": {"grounding": score}, "weaknesses": [] if score > 0.5 else ["ungrounded"]}

    def rewrite(prompt: str) -> dict[str, Any]:
        grounded = default_reply("drafter", prompt)["text"]  # the evidence's first sentences, cited
        return {"text": f"{grounded} {CHECKED}", "changes": ["grounded in the evidence"]}

    server.set_default("critic", critique)
    server.set_default("rewriter", rewrite)


def chat_base(folder: Path) -> Path:
    """The tiny test model, with a ChatML template so it can draft iteration 1 as an instruct model would."""
    from transformers import AutoTokenizer

    from arcticcodex.training.chat_templates import CHATML
    from tiny_student import make_base

    make_base(folder, "chatml")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    return folder


FAST = ("--lora", "8,16", "--batch-size", "2", "--max-length", "64", "--max-steps", "3", "--eval-max-tokens", "8")


@pytest.mark.slow
def test_two_iterations_draft_with_the_student_train_on_its_corrections_and_stop_when_the_win_rate_stalls(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("fastapi")  # `transformers serve` (the transformers[serving] extra)
    root = make_root(acx, tmp_path, server)
    teachers_that_correct_every_draft(server)
    base = chat_base(tmp_path / "base")
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS)
    out = tmp_path / "loop"
    args = ["loop", "--prompts", prompts, "--base", base, "--out", out, "--iterations", "3", "--patience", "2"]
    result = acx("-w", root, *args, "--validation", "0.25", "--concurrency", "1", *FAST, "--chart", tmp_path / "l.png")
    assert "iteration 1 distill:" in result.stderr and "base model eval:" in result.stderr

    shown = json.loads(acx("-w", root, "loop", "show", "latest", "--json").stdout)
    # every judge call is a tie, so no student beats the base model: two stale iterations stop a 3-iteration loop
    assert shown["status"] == "stopped_early" and "win rate stopped improving" in shown["note"]
    assert [row["iteration"] for row in shown["iterations"]] == [0, 1, 2]
    base_row, first, second = shown["iterations"]
    assert base_row["metrics"]["win_rate"]["mean"] == 0.5 and base_row["model"] == str(base.resolve())

    # iteration 1 was drafted by the base model, iteration 2 by student 1: never by a teacher
    assert [request.role for request in server.requests].count("drafter") == 0
    assert (first["drafter"], second["drafter"]) == ("student 0", "student 1")
    for iteration, row in ((1, first), (2, second)):
        dataset = out / f"iteration-{iteration}" / "dataset"
        assert verify_dataset(dataset).ok
        manifest = json.loads((dataset / "manifest.json").read_text())
        assert manifest["recipe"]["drafter"] == "student"
        pairs = records(dataset / "train.jsonl")
        assert all(pair["revisions"][0]["score"] == 0.3 and CHECKED in pair["completion"] for pair in pairs)
        # the student's drafts against the accepted rewrites: a preference pair for every pair
        assert row["method"] == "sft+dpo" and row["dpo_pairs"] == row["sft_rows"] == len(pairs)
        assert row["usd_per_accepted_pair"] == 0.0 and row["heldout_loss_after"] is not None

    # the held-out questions are iteration 1's validation split, never distilled again
    held_out = {pair["instruction"] for pair in records(out / "iteration-1" / "dataset" / "validation.jsonl")}
    assert held_out
    second_run = RunJournal(Workspace.open(root)).run(second_steps(root)["distill"])
    assert second_run.task_count == len(PROMPTS) - len(held_out)
    later = records(out / "iteration-2" / "dataset" / "train.jsonl")
    later += records(out / "iteration-2" / "dataset" / "validation.jsonl")
    assert not held_out & {pair["instruction"] for pair in later}

    # student 2 learnt from student 1: its receipt names student 1 as its base, and verifies
    receipt = json.loads((out / "iteration-2" / "model" / "receipt.json").read_text())
    assert receipt["receipt"]["base_model"]["name"] == str(out / "iteration-1" / "model" / "model")
    assert "OK" in acx("-w", root, "receipt", "verify", out / "iteration-2" / "model").stdout
    # every student measured on the same held-out questions, each evaluation linked to its receipt
    evals = [
        json.loads(acx("-w", root, "eval", "show", row["eval_id"], "--json").stdout) for row in shown["iterations"]
    ]
    assert len({e["dataset"]["merkle_root"] for e in evals}) == 1 and {e["questions"] for e in evals} == {len(held_out)}
    assert [e["receipt_sha256"] for e in evals] == [None, first["receipt_sha256"], second["receipt_sha256"]]
    assert (tmp_path / "l.png").read_bytes().startswith(b"\x89PNG")
    assert "0 (base)" in result.stdout and re.search(r"drafted by .*student 0 .*student 1", result.stdout)

    # a finished loop resumed does nothing more: it shows its table again
    requests = len(server.requests)
    again = acx("-w", root, "loop", "--resume", "latest")
    assert len(server.requests) == requests and "stopped early" in again.stdout


@pytest.mark.slow
def test_a_loop_killed_while_it_trains_resumes_at_that_step_and_pays_for_no_teacher_call_twice(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("fastapi")
    root = make_root(acx, tmp_path, server)
    teachers_that_correct_every_draft(server)
    base = chat_base(tmp_path / "base")
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS)
    args = [
        "loop",
        "--prompts",
        str(prompts),
        "--base",
        str(base),
        "--out",
        str(tmp_path / "loop"),
        "--iterations",
        "1",
    ]
    args += ["--validation", "0.25", "--concurrency", "1", *FAST[:-4], "--max-steps", "40", "--eval-max-tokens", "8"]
    log = tmp_path / "loop.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([ARCTICCODEX, "-w", str(root), *args], stdout=sink, stderr=subprocess.STDOUT)
    journal = LoopJournal(Workspace.open(root))
    try:
        training = False
        for _ in range(9000):  # a guard against a loop that never gets there (15 min), not a timing assertion
            if process.poll() is not None:
                break
            newest = journal.newest(limit=1)
            if newest and newest[0].step(1, "train") is not None:
                training = True
                break
            time.sleep(0.1)
        assert process.poll() is None and training, log.read_text()[-2000:]
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    (killed,) = journal.newest()
    assert killed.status == "running" and not killed.step(1, "train").complete  # a hard kill wrote nothing more
    assert killed.step(1, "distill").complete and killed.step(0, "eval").complete
    asked_before = len(server.requests)

    resumed = json.loads(acx("-w", root, "loop", "--resume", "latest", "--json").stdout)
    assert resumed["status"] == "complete" and [row["iteration"] for row in resumed["iterations"]] == [0, 1]
    assert resumed["iterations"][1]["steps"] == {"distill": "complete", "train": "complete", "eval": "complete"}
    # the distill step was not run again, and no teacher call was paid twice (the resumed eval's own calls only)
    assert len(RunJournal(Workspace.open(root)).runs()) == 1
    sent = [json.dumps(r.body, sort_keys=True) for r in server.requests if r.path.endswith("/chat/completions")]
    assert len(sent) == len(set(sent)) and len(server.requests) > asked_before
    assert "OK" in acx("-w", root, "receipt", "verify", tmp_path / "loop" / "iteration-1" / "model").stdout


def second_steps(root: Path) -> dict[str, str]:
    (record,) = LoopJournal(Workspace.open(root)).newest(limit=1)
    return {step.stage: str(step.ref) for step in record.steps if step.iteration == 2}


# -- when to stop, and the summary: a journal with the results filled in ------------------------------------


def journaled_loop(workspace: Workspace, tmp_path: Path, win_rates: list[float], **settings: Any) -> str:
    loop_settings = LoopSettings(
        base="base-model", run=RunSettings(), train=TrainSettings(base="base-model"), iterations=5, **settings
    )
    journal = LoopJournal(workspace)
    loop_id = journal.create(loop_settings, tmp_path / "loop").id
    for iteration, rate in enumerate(win_rates):
        if iteration:
            journal.started(loop_id, iteration, "distill", ref=f"run-{iteration}")
            made = {"drafter": f"student {iteration - 1}", "accepted": 10, "written": 10, "spent_usd": 0.5}
            journal.completed(loop_id, iteration, "distill", f"run-{iteration}", made)
            journal.started(loop_id, iteration, "train", ref=f"models/{iteration}")
            trained = {"method": "sft+dpo", "rows": {"sft_train": 9, "dpo_train": 4}, "spent_usd": 0.0,
                       "losses": {"sft": {"eval_loss_before": 3.0, "eval_loss": 2.0}}}  # fmt: skip
            journal.completed(loop_id, iteration, "train", f"models/{iteration}", trained)
        journal.started(loop_id, iteration, "eval")
        metrics = {"win_rate": {"mean": rate, "low": max(0, rate - 0.1), "high": min(1, rate + 0.1), "n": 20}}
        journal.completed(loop_id, iteration, "eval", f"eval-{iteration}", {"metrics": metrics, "spent_usd": 0.1})
    return loop_id


@pytest.mark.parametrize(
    ("rates", "patience", "min_improvement", "stops"),
    [
        ([0.2, 0.4, 0.5], 1, 0.0, False),  # still improving
        ([0.2, 0.4, 0.4], 1, 0.0, True),  # equal is not better
        ([0.2, 0.4, 0.3], 2, 0.0, False),  # one stale iteration, patience two
        ([0.2, 0.4, 0.3, 0.35], 2, 0.0, True),  # two in a row below the best (0.4)
        ([0.2, 0.4, 0.3, 0.45], 2, 0.0, False),  # a new best resets the count
        ([0.2, 0.4, 0.42], 1, 0.05, True),  # up, but by less than min_improvement
        ([0.5, 0.5], 1, 0.0, True),  # no better than the base model
    ],
)
def test_the_loop_stops_once_the_win_rate_has_not_improved_for_patience_iterations(
    workspace: Workspace, tmp_path: Path, rates: list[float], patience: int, min_improvement: float, stops: bool
) -> None:
    loop_id = journaled_loop(workspace, tmp_path, rates, patience=patience, min_improvement=min_improvement)
    reason = stop_reason(LoopJournal(workspace).get(loop_id), len(rates) - 1)
    assert (reason is not None) == stops
    if reason is not None:
        assert f"{rates[-1]:.3f} after iteration {len(rates) - 1}" in reason and f"patience {patience}" in reason


def test_the_summary_names_the_best_student_and_the_cost_per_accepted_pair(
    workspace: Workspace, tmp_path: Path
) -> None:
    loop_id = journaled_loop(workspace, tmp_path, [0.2, 0.45, 0.4])
    record = LoopJournal(workspace).get(loop_id)
    assert best_iteration(record) == 1
    summary = loop_json(record)
    rows = summary["iterations"]
    assert [row["iteration"] for row in rows] == [0, 1, 2] and rows[0]["model"] == "base-model"
    assert rows[1]["usd_per_accepted_pair"] == 0.05 and rows[1]["teacher_usd"] == 0.6
    assert (rows[1]["heldout_loss_before"], rows[1]["heldout_loss_after"], rows[1]["dpo_pairs"]) == (3.0, 2.0, 4)
    assert summary["spent_usd"] == pytest.approx(0.5 * 2 + 0.1 * 3)
    svg = loop_svg(record)
    assert svg.startswith("<svg") and svg.count("<circle") == 3 and "$0.0500" in svg
    assert "iteration 1 win rate vs teacher: 0.450 [0.350, 0.550]" in svg


def test_loop_show_prints_the_table_and_list_finds_the_loop(workspace: Workspace, tmp_path: Path, acx: Acx) -> None:
    loop_id = journaled_loop(workspace, tmp_path, [0.2, 0.45, 0.4])
    shown = acx("-w", workspace.root, "loop", "show", loop_id).stdout
    assert "0 (base)" in shown and "1 ★" in shown and "0.450 [0.350, 0.550]" in shown and "0.0500" in shown
    assert "best student: iteration 1" in shown
    listed = json.loads(acx("-w", workspace.root, "loop", "list", "--json").stdout)
    assert [(entry["id"], entry["best_iteration"]) for entry in listed] == [(loop_id, 1)]


# -- refused before anything is created or paid for -------------------------------------------------------


def test_a_base_model_that_cannot_chat_is_refused_as_the_first_drafter(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    pytest.importorskip("trl")
    from tiny_student import make_base

    root = make_root(acx, tmp_path, server)
    base = make_base(tmp_path / "base", "chatml")  # no chat template of its own
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS)
    refused = acx("-w", root, "loop", "--prompts", prompts, "--base", base, "--out", tmp_path / "loop", code=1)
    assert f"the model {base} (--base) has no chat template" in refused.stderr
    assert "--first-drafter 'auto'" in refused.stderr
    assert LoopJournal(Workspace.open(root)).newest() == [] and server.requests == []
    assert not (tmp_path / "loop").exists()


def test_a_resumed_loop_keeps_its_settings_and_an_unknown_loop_is_named(
    workspace: Workspace, tmp_path: Path, acx: Acx
) -> None:
    nothing = acx("-w", workspace.root, "loop", "--resume", "latest", code=1)
    assert "this workspace has no loops yet" in nothing.stderr
    loop_id = journaled_loop(workspace, tmp_path, [0.2])
    changed = acx("-w", workspace.root, "loop", "--resume", loop_id, "--iterations", "9", "--patience", "3", code=2)
    assert "only --budget-usd may change (got --iterations, --patience)" in changed.stderr
    unknown = acx("-w", workspace.root, "loop", "show", "loop-nope", code=1)
    assert f"no loop 'loop-nope' in this workspace (recent loops: {loop_id})" in unknown.stderr


def test_a_loop_into_a_folder_that_is_not_empty_is_refused(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "notes.txt").write_text("mine")
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS)
    args = ("--prompts", prompts, "--base", "some/model", "--out", tmp_path / "loop", "--first-drafter", "auto")
    refused = acx("-w", root, "loop", *args, code=1)
    assert f"--out {(tmp_path / 'loop').resolve()} is not empty" in refused.stderr
    assert (tmp_path / "loop" / "notes.txt").read_text() == "mine" and server.requests == []


def test_the_studio_lists_the_loop_and_shows_its_students_side_by_side(workspace: Workspace, tmp_path: Path) -> None:
    from arcticcodex.studio import create_app
    from arcticcodex.vault.embeddings import HashingBackend
    from test_studio import get

    loop_id = journaled_loop(workspace, tmp_path, [0.2, 0.45, 0.4])
    LoopJournal(workspace).set_status(loop_id, "stopped", "<script>alert(1)</script> the budget ran out")
    app = create_app(workspace, embedder=HashingBackend(64))
    listing = get(app, "/models")
    assert listing.status_code == 200 and f'href="/models/loops/{loop_id}"' in listing.text
    row = listing.text.split(f'id="loop-{loop_id}"')[1].split("</tr>")[0]
    assert "2 of 5" in row and "0.45 [0.35, 0.55]" in row and "1.3000" in row
    assert "<script>alert" not in listing.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in row

    shown = get(app, f"/models/loops/{loop_id}")
    assert shown.status_code == 200 and "<script>alert" not in shown.text
    assert f"arcticcodex loop --resume {loop_id}" in shown.text
    students = shown.text.split('id="students"')[1].split("</table>")[0]
    assert students.count("<th>") == 4 and "0 (base)" in students and "★" in students
    assert "<td>$ per accepted pair</td><td>—</td><td>0.0500</td><td>0.0500</td>" in students
    assert "<svg" in shown.text and "iteration 1 win rate vs teacher: 0.450" in shown.text
    assert get(app, "/models/loops/loop-nope").status_code == 404
