"""Issue 12, item 8: `arcticcodex runs list|show`, `distill --resume latest`, and `[distill]` defaults."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import PROMPTS, make_root, write_prompts


def add_to_config(root: Path, text: str) -> None:
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text() + text)


def test_runs_list_and_show(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    assert "no runs yet" in acx("-w", root, "runs", "list").output
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:2])
    done = json.loads(acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "a", "--json").output)
    server.inject("400", role="critic")
    others = write_prompts(tmp_path / "q.jsonl", [PROMPTS[3]])
    failed = json.loads(
        acx("-w", root, "distill", "--prompts", others, "--out", tmp_path / "b", "--json", code=3).output
    )

    table = acx("-w", root, "runs", "list").output
    assert table.index(failed["run_id"]) < table.index(done["run_id"])  # newest first
    for text in ("complete", "stopped", f"prompts: {prompts}", str(tmp_path / "a"), "2/0/0/0", "0/0/1/0"):
        assert text in table
    listed = json.loads(acx("-w", root, "runs", "list", "--json").output)
    assert [row["run_id"] for row in listed] == [failed["run_id"], done["run_id"]]
    assert listed[1]["accepted"] == 2 and listed[1]["status"] == "complete" and listed[1]["tasks"] == 2
    assert listed[0]["failed"] == 1 and listed[0]["exit_status"] == 3
    assert json.loads(acx("-w", root, "runs", "list", "--limit", "1", "--json").output)[0]["run_id"] == failed["run_id"]

    shown = acx("-w", root, "runs", "show", failed["run_id"]).output
    assert f"run       {failed['run_id']} (stopped)" in shown and f"out       {tmp_path / 'b'}" in shown
    assert "tasks     1: 0 accepted, 0 rejected, 1 failed, 0 pending" in shown and "spent     $0.0000" in shown
    assert "task 0 failed: no critic could answer: teacher gpu (fake-model) refused the request" in shown
    assert f"finish with: arcticcodex distill --resume {failed['run_id']}" in shown
    latest = json.loads(acx("-w", root, "runs", "show", "latest", "--json").output)
    assert latest["run_id"] == failed["run_id"] and latest["failures"][0]["task"] == 0
    assert latest["settings"]["threshold"] == 0.8 and latest["out"] == str((tmp_path / "b").resolve())
    missing = acx("-w", root, "runs", "show", "run-nope", code=1).output
    assert "no distillation run 'run-nope'" in missing and done["run_id"] in missing  # the recent runs, named

    resumed = json.loads(acx("-w", root, "distill", "--resume", "latest", "--json").output)  # the teacher answers now
    assert resumed["run_id"] == failed["run_id"] and resumed["accepted"] == 1 and resumed["exit_status"] == 0


def test_resume_refuses_what_would_change_the_run(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    assert "this workspace has no runs yet" in acx("-w", root, "distill", "--resume", "latest", code=1).output
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out")
    refused = acx("-w", root, "distill", "--resume", "latest", "--threshold", "0.5", "--review", code=2).output
    assert "only --budget-usd may change (got --threshold, --review)" in refused


def test_distill_defaults_come_from_the_configuration_and_the_command_line_wins(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    acx("-w", root, "keys", "new", "team")
    add_to_config(
        root,
        '\n[distill]\nteachers = "gpu"\ndrafter = "extractive"\nthreshold = 0.85\nmax_rounds = 2\n'
        'concurrency = 2\nvalidation = 0.25\nkey = "team"\nreview = true\nkeep_near_duplicates = true\n'
        "budget_usd = 3.5\n",
    )
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:2])
    waiting = json.loads(
        acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "a", "--json", code=4).output
    )
    assert waiting["awaiting_review"] == 2  # review = true
    settings = json.loads(acx("-w", root, "runs", "show", "latest", "--json").output)["settings"]
    assert settings["teachers"] == ["gpu"] and settings["drafter"] == "extractive" and settings["threshold"] == 0.85
    assert (settings["max_rounds"], settings["concurrency"], settings["validation_fraction"]) == (2, 2, 0.25)
    assert settings["key"] == "team" and settings["key_origin"] == "[distill] key in arcticcodex.toml"
    assert settings["near_duplicate_threshold"] is None and settings["budget_usd"] == 3.5

    args = ["--threshold", "0.5", "--no-review", "--drop-near-duplicates", "--key", "dataset", "--concurrency", "1"]
    done = json.loads(acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "b", *args, "--json").output)
    assert done["exit_status"] == 0 and done["written"] == 2
    settings = json.loads(acx("-w", root, "runs", "show", "latest", "--json").output)["settings"]
    assert (settings["threshold"], settings["human_review"], settings["key"], settings["concurrency"]) == (
        0.5,
        False,
        "dataset",
        1,
    )
    assert settings["near_duplicate_threshold"] == 0.95 and settings["max_rounds"] == 2  # the rest still from [distill]


def test_bad_distill_settings_are_refused_with_the_setting_and_an_example(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    config = root / "arcticcodex.toml"
    original = config.read_text()
    for setting, expected in (
        ('threshold = "high"', "[distill] threshold must be a number from 0 to 1, not 'high'; e.g. threshold = 0.8"),
        ("limit = 0", "[distill] limit must be a whole number from 1 up, not 0; e.g. limit = 100"),
        ("review = 1", "[distill] review must be true or false, not 1; e.g. review = true"),
        ("teachers = [1]", "[distill] teachers must be a list of teacher names, not [1]"),
    ):
        config.write_text(original + f"\n[distill]\n{setting}\n")
        message = acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out", code=1).output
        assert str(config) in message and expected in message, message
    config.write_text(original + "\n[distill]\ntreshold = 0.9\n")  # a misspelt name: the configuration check
    message = acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out", code=1).output
    assert "treshold" in message and "'threshold'" in message
    with sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db") as conn:
        assert conn.execute("SELECT count(*) FROM distill_runs").fetchone() == (0,)
