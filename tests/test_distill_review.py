"""A run made with --review publishes nothing until a person has decided on every accepted pair; then only
the approved ones are trained on, and the rejected ones go to rejected.jsonl with the person's reason."""

from __future__ import annotations

import json
from pathlib import Path

from arcticcodex.dataset import verify_dataset
from arcticcodex.provenance import KeyStore
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_studio import get


def test_reviewed_run_publishes_only_approved_pairs(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    KeyStore(workspace.keys_dir).create("dataset")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        json.dumps({"instruction": "What do otters eat?", "evidence": "Otters eat fish."})
        + "\n"
        + json.dumps({"instruction": "What do beavers build?", "evidence": "Beavers build dams."})
        + "\n"
    )
    out = tmp_path / "data"
    with FakeOpenAIServer(model="m") as server:
        acx.add_teacher(workspace.root, server, name="t", model="m")
        first = json.loads(
            acx(
                "-w",
                workspace.root,
                "distill",
                "--prompts",
                prompts,
                "--out",
                out,
                "--teachers",
                "t",
                "--review",
                "--json",
                code=4,  # stopped with work left: pairs await review
            ).stdout
        )
    assert first["accepted"] == 2 and not (out / "manifest.json").exists(), "nothing is published before review"
    waiting = json.loads(acx("-w", workspace.root, "review", "list", "--kind", "pair", "--json").stdout)
    assert [w["kind"] for w in waiting] == ["pair", "pair"] and "otters" in waiting[0]["text"]
    otters, beavers = waiting[0]["id"], waiting[1]["id"]
    app = create_app(Workspace.open(workspace.root))
    page = get(app, "/review").text
    assert otters in page and "What do otters eat?" in page
    assert get(app, f"/review/{otters}/approve", method="POST").status_code == 303  # from the Studio
    still = acx("-w", workspace.root, "distill", "--resume", first["run_id"], "--json", code=4)
    assert not (out / "manifest.json").exists() and "await review" in still.stdout
    acx("-w", workspace.root, "review", "reject", beavers, "--reason", "too thin")
    twice = acx("-w", workspace.root, "review", "reject", beavers, "--reason", "again", code=1)
    assert f"{beavers} was already rejected by " in twice.stderr and "decisions are final" in twice.stderr
    decided = acx("-w", workspace.root, "review", "edit", otters, "--completion", "x", code=1)
    assert f"{otters} was already approved by " in decided.stderr and "neither decided again nor edited" in (
        decided.stderr
    )
    acx("-w", workspace.root, "distill", "--resume", first["run_id"])
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert [r["instruction"] for r in train] == ["What do otters eat?"]
    assert [r["instruction"] for r in rejected] == ["What do beavers build?"]
    assert rejected[0]["feedback"] == "rejected in human review: too thin" and rejected[0]["accepted"] is False
    assert verify_dataset(out).ok
    assert json.loads(acx("-w", workspace.root, "review", "list", "--kind", "pair", "--json").stdout) == []
