"""Issue 12, item 5: exit statuses a script can trust, each with a message that says what happened and what next.

0 complete, 3 tasks failed, 4 stopped with work left (budget, review), 5 an empty dataset (with the
reason); `vault import` exits 1 when a file failed.  Each status is documented in the command's help.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import PROMPTS, make_root, write_prompts


def test_complete_is_0_and_failed_tasks_are_3(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:2])
    done = acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "a")
    assert "complete: 2 accepted, 0 rejected, 0 failed" in done.output
    server.inject("400", role="critic")  # the endpoint refuses one critique: that task fails
    others = write_prompts(tmp_path / "q.jsonl", [PROMPTS[1], PROMPTS[3]])  # not asked before: not in the cache
    failed = acx("-w", root, "distill", "--prompts", others, "--out", tmp_path / "b", "--concurrency", "1", code=3)
    assert "1 accepted, 0 rejected, 1 failed" in failed.output
    assert (
        "task 0 failed: no critic could answer: teacher gpu (fake-model) refused the request: HTTP 400" in failed.output
    )
    assert "finish with: arcticcodex distill --resume run-" in failed.output  # the retry, named


def test_a_budget_that_stops_the_run_with_work_pending_is_4(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server, preset="deepseek")
    env = {"DEEPSEEK_API_KEY": "sk-test"}
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:2])
    args = ["distill", "--prompts", str(prompts), "--out", str(tmp_path / "out"), "--concurrency", "1"]
    stopped = acx("-w", root, *args, "--budget-usd", "0.00001", env=env, code=4)
    assert "stopped" in stopped.output and "pending" in stopped.output and "budget" in stopped.output
    assert (
        "is spent; to finish the run, resume it with a larger one: `arcticcodex distill --resume run-" in stopped.output
    )
    assert " --budget-usd N`" in stopped.output
    finished = acx("-w", root, "distill", "--resume", "latest", "--budget-usd", "1", env=env)
    assert "complete: 2 accepted" in finished.output


def test_an_empty_dataset_is_5_with_the_reason(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    server.set_default("critic", {"score": 0.35, "criteria": {"grounding": 0.35}, "weaknesses": ["vague"]})
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:2])
    out = tmp_path / "out"
    result = acx("-w", root, "distill", "--prompts", prompts, "--out", out, "--max-rounds", "1", code=5)
    assert "0 accepted, 2 rejected" in result.output
    assert "the dataset is empty: none of the 2 judged pair(s) reached the threshold of 0.8" in result.output
    assert "(the best scored 0.35)" in result.output and "lower the threshold, allow more rounds" in result.output
    summary = json.loads(acx("-w", root, "runs", "show", "latest", "--json").output)
    assert summary["exit_status"] == 5 and "reached the threshold" in summary["hint"] and summary["written"] == 0
    assert (out / "rejected.jsonl").read_text().count("\n") == 2


def test_the_help_documents_every_exit_status(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    distill_help = acx("-w", root, "distill", "--help").output
    for line in (
        "0  complete",
        "1  nothing ran",
        "3  some tasks failed",
        "4  stopped with work left",
        "5  the run wrote an empty dataset",
    ):
        assert line in distill_help
    import_help = acx("-w", root, "vault", "import", "--help").output
    assert "Exit status:" in import_help and "1  a file could not be imported" in import_help


def test_vault_import_with_a_failed_file_is_1_and_names_it(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Otters\n\nOtters eat fish.\n")
    (docs / "latin1.txt").write_bytes(b"\xff\xfe\x00 not text at all \x00\x00")
    result = acx("-w", root, "vault", "import", docs, code=1)
    assert "1 added" in result.output and "1 failed" in result.output
    assert "failed " in result.output and "latin1.txt" in result.output
    assert "1 file(s) could not be imported (listed above)" in result.output
    acx("-w", root, "vault", "import", docs / "good.md")  # nothing failed: exit status 0
