"""`arcticcodex distill --engine ray` (issue 15): a run's tasks in shards on a local Ray, exactly once.

A local Ray (started by the run on 127.0.0.1, no dashboard) runs each shard as a task against the
shard's own journal and request cache; the driver merges them and publishes in task order.  The
fake OpenAI server is the teacher, and its request log is what proves that nothing was asked twice.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.distill.shards import shard_of
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, records, write_prompts

pytestmark = pytest.mark.slow
PLACES = ["harbour", "mill", "bridge", "chapel", "market", "tower", "school", "garden", "station", "library"]
VOLATILE = ("created_at", "integrity")  # when it was signed, and by which workspace's key


def prompts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "instruction": f"When was the {PLACES[n % len(PLACES)]} of town {n} built?",
            "evidence": f"The {PLACES[n % len(PLACES)]} of town {n} was built in {1700 + n}. It still stands.",
        }
        for n in range(count)
    ]


def comparable(folder: Path) -> list[dict[str, Any]]:
    """The dataset's records in order, without what differs between two runs of the same prompts."""
    rows = records(folder / "train.jsonl") + records(folder / "validation.jsonl")
    return [{name: value for name, value in row.items() if name not in VOLATILE} for row in rows]


def chat_bodies(server: FakeOpenAIServer) -> list[str]:
    return [json.dumps(r.body, sort_keys=True) for r in server.requests if r.path.endswith("/chat/completions")]


def test_four_shards_on_ray_publish_what_a_single_process_run_publishes(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    pytest.importorskip("ray")
    root = make_root(acx, tmp_path, server)
    given = write_prompts(tmp_path / "prompts.jsonl", prompts(200))
    assert sorted(Counter(shard_of(f"p{n}", 4) for n in range(200)).values())[0] > 0  # the hash spreads keys
    args = ["distill", "--prompts", given, "--teachers", "gpu", "--drafter", "gpu", "--validation", "0.1"]
    single = json.loads(acx("-w", root, *args, "--out", tmp_path / "single", "--json").stdout)
    assert single["status"] == "complete" and single["written"] == 200

    other = make_root(acx, tmp_path / "other", server)  # a fresh workspace: no request answered from a cache
    server.clear()
    sharded = acx("-w", other, *args, "--out", tmp_path / "ray", "--engine", "ray", "--shards", "4", "--json")
    summary = json.loads(sharded.stdout)
    assert summary["status"] == "complete" and (summary["accepted"], summary["written"]) == (200, 200)
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "single")
    assert verify_dataset(tmp_path / "ray").ok
    sent = chat_bodies(server)
    assert len(sent) == len(set(sent)) and Counter(r.role for r in server.requests)["drafter"] == 200
    shards = sorted((Workspace.open(other).runs_dir / summary["run_id"] / "shards").glob("shard-*.sqlite"))
    assert [path.name for path in shards] == [f"shard-{index}.sqlite" for index in range(4)]
