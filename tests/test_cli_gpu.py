"""`arcticcodex gpu` end to end over the fakes: a real HTTP Vast API, a real SSH server in each instance
(reached by the system ssh client), and the fake OpenAI-compatible server standing in for vLLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from arcticcodex.config import Config
from arcticcodex.gpu.state import InstanceStore
from arcticcodex.gpu.tunnel import pid_alive, port_accepts
from arcticcodex.teachers.entries import load_teachers
from arcticcodex.workspace import Workspace
from conftest import GPU_MODEL, VAST_KEY, VLLM_KEY, Acx
from fakes.openai_server import FakeOpenAIServer
from fakes.vast_server import FakeVastServer


def run(acx: Acx, workspace: Workspace, *args: str | Path, code: int = 0, env: dict[str, str] | None = None) -> Result:
    """``acx --workspace WS ARGS…``, checking that no key ever reaches the output."""
    result = acx("--workspace", workspace.root, *args, code=code, env=env)
    assert VAST_KEY not in result.output and VLLM_KEY not in result.output, "a key leaked into the output"
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_search_prints_offers_as_json_in_gb_and_sends_mb(
    gpu_workspace: Workspace, vast: FakeVastServer, acx: Acx
) -> None:
    result = run(acx, gpu_workspace, "gpu", "search", "--min-vram-gb", "40", "--max-price", "1.0", "--json")
    offers = as_json(result)
    assert offers, "the default catalogue has 40 GB offers under $1/h"
    assert all(o["gpu_ram_gb"] >= 37 and o["dph_total"] <= 1.0 for o in offers)
    assert [o["dph_total"] for o in offers] == sorted(o["dph_total"] for o in offers)
    sent = next(r for r in vast.requests if r.path.startswith("/api/v0/bundles"))
    assert sent.method == "POST"
    assert sent.body["gpu_ram"] == {"gte": 37200}  # MB, with the tolerance for cards reporting a little less
    assert sent.body["dph_total"] == {"lte": 1.0}
    assert sent.headers["authorization"] == f"Bearer {VAST_KEY}"

    named = as_json(run(acx, gpu_workspace, "gpu", "search", "--min-vram-gb", "20", "--gpu", "RTX 4090", "--json"))
    assert named and {o["gpu_name"] for o in named} == {"RTX 4090"}


def test_search_up_tunnel_teacher_call_cost_down(
    gpu_workspace: Workspace, vast: FakeVastServer, vllm: FakeOpenAIServer, acx: Acx
) -> None:
    up = as_json(run(acx, gpu_workspace, "gpu", "up", "--gpu", "RTX 4090", "--max-price", "1", "--ttl", "2h", "--json"))
    instance_id = up["instance_id"]
    assert up["status"] == "ready" and up["model"] == GPU_MODEL

    # what was rented: the vLLM image as the instance image, vLLM on the container's loopback with no public port
    # (the tunnel is the only way in), the key in the env, a workspace label
    created = next(r for r in vast.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/"))
    assert created.body["image"].startswith("vllm/vllm-openai")
    assert not any(key.startswith("-p") for key in created.body["env"]), created.body["env"]
    assert "8000/tcp" not in vast.instances[instance_id]["ports"], "vLLM is published on no public port"
    assert " --host 127.0.0.1 " in created.body["onstart"] and "0.0.0.0" not in created.body["onstart"]
    assert created.body["env"]["VLLM_API_KEY"] == VLLM_KEY
    assert f"vllm serve {GPU_MODEL}" in created.body["onstart"] and VLLM_KEY not in created.body["onstart"]
    assert created.body["label"].startswith("arcticcodex-")
    assert vast.instances[instance_id]["label"] == created.body["label"]
    assert vast.ssh_keys, "the workspace's SSH public key was registered before the launch"

    # the tunnel is a live ssh process forwarding a local port, and it outlives the command
    port = up["local_port"]
    assert port_accepts(port)
    assert vast.ssh_connection_count(instance_id) == 1

    # registered as a vllm teacher; a teacher call goes through the tunnel to "vLLM" with the instance's key
    config = Config.load(gpu_workspace.config.path)
    teachers, _ = load_teachers(config)
    (teacher,) = [t for t in teachers if t.name == "gpu"]
    assert (teacher.preset, teacher.model, teacher.base_url) == ("vllm", GPU_MODEL, f"http://127.0.0.1:{port}/v1")
    assert VLLM_KEY not in config.path.read_text(), "the key lives in a 0600 file, not in arcticcodex.toml"
    answer = tmp_answer(gpu_workspace.root)
    refined = as_json(run(acx, gpu_workspace, "refine", answer, "--evidence", answer, "--teachers", "gpu", "--json"))
    assert refined["accepted"] is True
    chats = [r for r in vllm.requests if r.path == "/v1/chat/completions"]
    assert chats and all(r.headers["authorization"] == f"Bearer {VLLM_KEY}" for r in chats)

    # cost accrues from the instance's rate and elapsed time
    cost = as_json(run(acx, gpu_workspace, "gpu", "cost", "--json"))
    assert cost["total_usd"] > 0
    assert cost["instances"][0]["dph_total"] == vast.instances[instance_id]["dph_total"]

    listed = as_json(run(acx, gpu_workspace, "gpu", "ls", "--json"))
    assert [i["instance_id"] for i in listed["instances"]] == [instance_id]

    down = as_json(run(acx, gpu_workspace, "gpu", "down", instance_id, "--json"))
    assert down["destroyed"] == [instance_id]
    assert instance_id in vast.destroyed and instance_id not in vast.instances
    assert as_json(run(acx, gpu_workspace, "gpu", "ls", "--json"))["instances"] == []
    assert not port_accepts(port), "the tunnel was closed"
    config = Config.load(gpu_workspace.config.path)
    assert [t.name for t in load_teachers(config)[0]] == [], "the teacher went with its instance"
    log = (gpu_workspace.data_dir / "gpu" / "lifecycle.jsonl").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log]
    assert events[:2] == ["launched", "tunnel_opened"] and "ready" in events and events[-1] == "destroyed"


def tmp_answer(root: Path) -> Path:
    path = root / "answer.txt"
    path.write_text("The manifest binds the record count and the Merkle root of the records.\n")
    return path


def test_balance_and_errors_never_show_the_key(gpu_workspace: Workspace, vast: FakeVastServer, acx: Acx) -> None:
    assert as_json(run(acx, gpu_workspace, "gpu", "balance", "--json"))["credit_usd"] == pytest.approx(50.0, abs=0.01)
    bad = run(acx, gpu_workspace, "gpu", "balance", code=1, env={"VAST_API_KEY": "wrong-key-that-must-not-leak"})
    assert "401" in bad.output and "VAST_API_KEY" in bad.output
    assert "wrong-key-that-must-not-leak" not in bad.output


def test_missing_key_is_a_clear_error(gpu_workspace: Workspace, monkeypatch: pytest.MonkeyPatch, acx: Acx) -> None:
    monkeypatch.delenv("VAST_API_KEY")
    result = run(acx, gpu_workspace, "gpu", "search", code=1)
    assert "set VAST_API_KEY" in result.output


def test_up_refused_by_the_budget_rents_nothing(gpu_workspace: Workspace, vast: FakeVastServer, acx: Acx) -> None:
    result = run(acx, gpu_workspace, "gpu", "up", "--min-vram-gb", "70", "--hours", "10", "--budget-usd", "0.5", code=1)
    assert "budget" in result.output and "$0.50" in result.output
    assert not any(r.method == "PUT" and r.path.startswith("/api/v0/asks/") for r in vast.requests)
    assert vast.instances == {}


def test_a_budget_given_to_up_is_kept_for_later_commands(
    gpu_workspace: Workspace, vast: FakeVastServer, acx: Acx
) -> None:
    up = as_json(run(acx, gpu_workspace, "gpu", "up", "--budget-usd", "5", "--run-budget-usd", "2", "--json"))
    gpu = Config.load(gpu_workspace.config.path).raw["gpu"]
    assert (gpu["budget_usd"], gpu["run_budget_usd"]) == (5.0, 2.0)
    assert as_json(run(acx, gpu_workspace, "gpu", "cost", "--json"))["budget_usd"] == 5.0
    run(acx, gpu_workspace, "gpu", "stop", up["instance_id"])
    assert vast.instances[up["instance_id"]]["intended_status"] == "stopped"
    assert "ready at http://127.0.0.1:" in run(acx, gpu_workspace, "gpu", "start", up["instance_id"]).output
    assert "vllm" in run(acx, gpu_workspace, "gpu", "logs", up["instance_id"]).output.lower()
    assert as_json(run(acx, gpu_workspace, "gpu", "down", "--all", "--json"))["destroyed"] == [up["instance_id"]]


def test_help_has_examples(acx: Acx) -> None:
    for command in (
        "search",
        "up",
        "ls",
        "tunnel",
        "down",
        "cost",
        "balance",
        "reap",
        "watch",
        "stop",
        "start",
        "logs",
    ):
        assert "Example:" in acx("gpu", command, "--help").stdout, command


def test_a_vllm_that_refuses_its_key_is_destroyed(gpu_workspace: Workspace, vast: FakeVastServer, acx: Acx) -> None:
    # without a teacher name the instance gets a fresh key of its own, which this fake vLLM does not know
    result = run(acx, gpu_workspace, "gpu", "up", "--teacher", "", code=1)
    assert "refused the instance's API key (HTTP 401)" in result.output
    assert vast.instances == {} and len(vast.destroyed) == 1
    (record,) = InstanceStore(gpu_workspace).all()
    assert record.status == "destroyed" and "launch failed" in record.reason
    assert record.local_port and not port_accepts(record.local_port), "the tunnel was closed"
    assert not list((gpu_workspace.data_dir / "gpu" / "keys").glob("arcticcodex-*")), "its own key went with it"


def test_tunnel_process_is_gone_after_down(gpu_workspace: Workspace, vast: FakeVastServer, acx: Acx) -> None:
    up = as_json(run(acx, gpu_workspace, "gpu", "up", "--json"))
    record = InstanceStore(gpu_workspace).by_instance(up["instance_id"])
    assert record is not None and pid_alive(record.tunnel_pid)
    run(acx, gpu_workspace, "gpu", "down", "--all")
    assert not pid_alive(record.tunnel_pid)
