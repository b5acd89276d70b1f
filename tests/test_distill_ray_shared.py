"""`distill --engine ray`: many shards, one endpoint governor each, one budget (issue 15, item 3).

Each shard is its own process, so only actors can make them share: the run's budget actor admits a
call only while the whole run has spent less than the budget, and each endpoint's governor lends at
most the teacher's ``concurrency`` places across all shards, backing off on a 429 and holding every
request until its ``Retry-After`` has passed.  The fake OpenAI server is the endpoint: its request
log and its count of completions in flight are what the endpoint saw.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.results import Usage
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_ray import chat_bodies, comparable, prompts
from test_distill_run import write_prompts

pytestmark = pytest.mark.slow
PRICES = {"price_input": 270.0, "price_cached_input": 70.0, "price_output": 1100.0}  # $ per million: ~$0.1 a call
SHARDS = 4


def make_workspace(acx: Acx, root: Path, server: FakeOpenAIServer, *, concurrency: int) -> Path:
    """A workspace whose one teacher, ``gpu``, is the fake server: priced, at most ``concurrency`` in flight."""
    workspace, _ = Workspace.init(root)
    config = workspace.root / "arcticcodex.toml"
    config.write_text(
        config.read_text()
        + '\n[vault]\nembedding_model = "hashing-64"\n'
        + f'\n[[teachers]]\nname = "gpu"\npreset = "vllm"\nbase_url = "{server.base_url}"\nmodel = "fake-model"\n'
        + f"concurrency = {concurrency}\n"
        + "".join(f"{name} = {price}\n" for name, price in PRICES.items())
    )
    for command in (["keys", "new", "dataset"], ["teachers", "trust", "gpu"]):  # a hand-written entry: trusted
        acx("-w", workspace.root, *command)
    return workspace.root


def call_costs(databases: list[Path]) -> list[float]:
    """What each reply in these databases' request caches cost at the teacher's prices."""
    prices = TeacherConfig(name="gpu", preset="vllm", model="fake-model", base_url="http://127.0.0.1", **PRICES)
    costs = []
    for database in databases:
        conn = sqlite3.connect(database)
        try:
            for (usage,) in conn.execute("SELECT usage FROM teacher_cache"):
                found = Usage.model_validate_json(usage)
                costs.append(prices.cost(found.prompt_tokens, found.cache_hit_tokens, found.completion_tokens))
        finally:
            conn.close()
    return costs


def unpriced(folder: Path) -> list[dict[str, Any]]:
    """:func:`comparable` without what each revision's calls cost: a call answered from the request cache
    on resume (paid for before the budget stopped the run) costs nothing the second time, as in a
    single-process run resumed after its budget ran out."""
    rows = comparable(folder)
    for row in rows:
        row["revisions"] = [{k: v for k, v in revision.items() if k != "cost_usd"} for revision in row["revisions"]]
    return rows


def distill(acx: Acx, root: Path, given: Path, out: Path, *more: str, code: int = 0) -> dict[str, Any]:
    args = ["distill", "--prompts", given, "--teachers", "gpu", "--drafter", "gpu", "--validation", "0.1"]
    result: dict[str, Any] = json.loads(acx("-w", root, *args, "--out", out, *more, "--json", code=code).stdout)
    return result


def test_the_budget_holds_across_shards_and_a_resume_finishes_the_same_dataset(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    pytest.importorskip("ray")
    concurrency = 4
    given = write_prompts(tmp_path / "prompts.jsonl", prompts(48))
    reference_root = make_workspace(acx, tmp_path / "reference", server, concurrency=concurrency)
    reference = distill(acx, reference_root, given, tmp_path / "reference-out")  # one process, no budget
    assert reference["status"] == "complete" and reference["written"] == 48
    largest_call = max(call_costs([reference_root / ".arcticcodex" / "arcticcodex.db"]))
    budget = round(reference["cost_usd"] * 0.4, 2)

    root = make_workspace(acx, tmp_path / "sharded", server, concurrency=concurrency)
    server.clear()
    stopped = distill(
        acx, root, given, tmp_path / "out", "--engine", "ray", "--shards", str(SHARDS), "--budget-usd", str(budget),
        code=4,
    )  # fmt: skip
    run_id = stopped["run_id"]
    assert stopped["status"] == "stopped" and stopped["pending"] > 0
    assert f"the budget of ${budget:.2f} is spent" in stopped["note"]
    assert f"`arcticcodex distill --resume {run_id} --budget-usd N`" in stopped["note"]
    in_flight = SHARDS * concurrency * largest_call  # what the calls in flight when it ran out can add
    assert budget <= stopped["cost_usd"] <= budget + in_flight
    paid = len(chat_bodies(server))
    assert paid < 3 * 48  # it stopped short: the budget held the whole run, not each shard apart

    finished = json.loads(
        acx("-w", root, "distill", "--resume", run_id, "--budget-usd", str(budget * 10), "--json").stdout
    )
    assert finished["status"] == "complete" and finished["written"] == 48
    assert unpriced(tmp_path / "out") == unpriced(tmp_path / "reference-out")
    sent = chat_bodies(server)
    assert len(sent) == len(set(sent)) == 3 * 48  # nothing paid twice across the stop and the resume
    shards = sorted((Workspace.open(root).runs_dir / run_id / "shards").glob("shard-*.sqlite"))
    assert math.isclose(finished["cost_usd"], math.fsum(call_costs(shards)), rel_tol=1e-9)
    print(  # the figures for the report: how far past the budget the calls in flight took the run
        f"budget ${budget:.2f}: stopped at ${stopped['cost_usd']:.4f} after {paid} calls "
        f"(overshoot ${stopped['cost_usd'] - budget:.4f}; bound ${in_flight:.4f}; largest call ${largest_call:.4f})"
    )


def test_one_governor_holds_an_endpoint_to_its_concurrency_across_shards_and_waits_out_retry_after(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    pytest.importorskip("ray")
    latency, pause = 0.1, 2
    server.latency = latency
    root = make_workspace(acx, tmp_path / "ws", server, concurrency=4)
    given = write_prompts(tmp_path / "prompts.jsonl", prompts(40))
    server.inject(*[f"429:retry-after={pause}"] * 3)  # the first three requests are throttled
    summary = distill(
        acx, root, given, tmp_path / "out", "--engine", "ray", "--shards", str(SHARDS), "--concurrency", "8"
    )
    assert summary["status"] == "complete" and summary["accepted"] == 40
    # 4 shards x 8 workers, each shard's teacher allowed 4: the endpoint saw at most 4, the run's limit
    assert 2 <= server.peak_in_flight <= 4
    sent = [request for request in server.requests if request.path.endswith("/chat/completions")]
    throttled = [request for request in sent if request.fault]
    assert len(throttled) == 3 and Counter(request.role for request in sent)["drafter"] == 40 + 3
    # no request started while the Retry-After ran: the last 429 went back `latency` after it arrived,
    # and half a second is left for the report to reach the governor (only a frozen machine needs more)
    last = max(request.timestamp for request in throttled)
    quiet_from, quiet_until = last + latency + 0.5, last + latency + pause
    assert not [request for request in sent if quiet_from < request.timestamp < quiet_until]
    report = json.loads((Workspace.open(root).runs_dir / summary["run_id"] / "shards" / "endpoints.json").read_text())
    (governor,) = report.values()
    assert governor["maximum"] == 4 and governor["throttled"] == 3 and governor["decreases"] >= 1
    assert governor["peak_in_flight"] <= 4 and governor["in_flight"] == 0
    print(f"endpoint peak in flight {server.peak_in_flight} (governor: {governor})")
