"""`distill --engine`: refused before the run exists when it cannot run, and the shard plan's rules.

These need no Ray cluster: a process where Ray cannot be imported stands for a machine without the
extra, and the shard plan is made and merged by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arcticcodex.distill.journal import RunJournal
from arcticcodex.distill.settings import RunSettings
from arcticcodex.distill.shards import merge_shards, plan_shards, shard_of
from arcticcodex.distill.tasks import Task
from arcticcodex.errors import UserError
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, write_prompts

WITHOUT_RAY = "import sys; sys.modules['ray'] = None; from arcticcodex.cli import main; main()"


def test_without_ray_the_engine_says_how_to_install_it_and_nothing_is_created(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    given = write_prompts(tmp_path / "p.jsonl", [{"instruction": "What do otters eat?", "evidence": "Fish."}])
    args = ["-w", str(root), "distill", "--prompts", str(given), "--out", str(tmp_path / "out"), "--engine", "ray"]
    done = subprocess.run([sys.executable, "-c", WITHOUT_RAY, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    assert "--engine 'ray' needs Ray, which is not installed: pip install 'arcticcodex[ray]'" in done.stderr
    assert RunJournal(Workspace.open(root)).runs() == [] and server.requests == []


def test_shard_options_without_the_ray_engine_are_a_usage_error(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    given = write_prompts(tmp_path / "p.jsonl", [{"instruction": "What do otters eat?", "evidence": "Fish."}])
    refused = acx("-w", root, "distill", "--prompts", given, "--out", tmp_path / "out", "--shards", "4", code=2)
    assert "--shards and --ray-address shape a run on Ray; add --engine ray" in refused.stderr


def test_the_shard_plan_is_stable_kept_on_resume_and_merging_twice_changes_nothing(workspace: Workspace) -> None:
    assert [shard_of(f"key-{n}", 4) for n in range(6)] == [shard_of(f"key-{n}", 4) for n in range(6)]
    tasks = [Task(f"key-{n}", {"instruction": f"q{n}", "evidence": []}) for n in range(40)]
    settings = RunSettings(engine="ray", shards=3)
    with RunJournal(workspace) as journal:
        run = journal.create_run(settings.to_json(), "out", tasks)
        plan = plan_shards(workspace, journal, run.id, 3)
        counts = []
        for index in range(3):
            with RunJournal(plan.workspace(workspace, index)) as shard:
                counts.append(shard.counts(run.id)["pending"])
                positions = [position for position, _ in shard.pending(run.id)]
                assert all(shard_of(f"key-{p}", 3) == index for p in positions)  # key-N sits at position N
                shard.conn.execute(
                    "UPDATE distill_tasks SET status = 'failed', reason = 'x', cost_usd = 0.5 WHERE run_id = ?",
                    (run.id,),
                )
                shard.conn.execute("UPDATE distill_runs SET spent_usd = ? WHERE id = ?", (0.25 * (index + 1), run.id))
        assert sum(counts) == 40 and min(counts) > 0
        assert plan_shards(workspace, journal, run.id, 3) == plan  # the plan on disk, not made again
        with pytest.raises(UserError, match=f"run {run.id} was split into 3 shards when it started"):
            plan_shards(workspace, journal, run.id, 5)
        first = merge_shards(workspace, journal, plan, run.id)
        second = merge_shards(workspace, journal, plan, run.id)
        assert (first["merged"], second["merged"]) == (40, 0) and first["spent_usd"] == second["spent_usd"] == 1.5
        assert journal.counts(run.id)["failed"] == 40 and journal.run(run.id).spent_usd == 1.5
        assert json.loads((plan.folder / "plan.json").read_text()) == {"shards": 3, "spent_before": 0.0}


@pytest.mark.parametrize("chosen_in", ["the command line", "[distill] engine"])
def test_a_local_ray_without_its_token_is_refused_before_the_run_exists(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx, chosen_in: str
) -> None:
    """Ray's servers listen on every interface; with its token off, any machine on the network could run code."""
    pytest.importorskip("ray")
    root = make_root(acx, tmp_path, server)
    engine: tuple[str, ...] = ("--engine", "ray")
    if chosen_in == "[distill] engine":
        config = root / "arcticcodex.toml"
        config.write_text(config.read_text() + '\n[distill]\nengine = "ray"\nshards = 3\n')
        engine = ()
    given = write_prompts(tmp_path / "p.jsonl", [{"instruction": "What do otters eat?", "evidence": "Fish."}])
    args = ("-w", root, "distill", "--prompts", given, "--out", tmp_path / "out", *engine)
    refused = acx(*args, code=1, env={"RAY_AUTH_MODE": "disabled"})
    assert "RAY_AUTH_MODE=disabled in the environment turns off the token" in refused.stderr
    assert "unset RAY_AUTH_MODE to run on Ray" in refused.stderr
    assert RunJournal(Workspace.open(root)).runs() == [] and server.requests == []
