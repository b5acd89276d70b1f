"""The first API's GPU example (examples/gpu_teachers.py), run as written against the fakes, and its
``VastProvisioner.provision`` keeping the guarantee ``gpu up`` gives: recorded before it is rented."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.compat import VastProvisioner
from arcticcodex.errors import WorkspaceNotFoundError
from arcticcodex.gpu.tunnel import free_local_port
from conftest import GPU_MODEL, VAST_KEY, Acx, make_gpu_workspace
from fakes.openai_server import FakeOpenAIServer
from fakes.vast_server import FakeVastServer, Response, default_offers, make_offer

EXAMPLE = Path(__file__).parent.parent / "examples" / "gpu_teachers.py"


def test_the_seed_example_rents_tunnels_pools_and_cleans_up(tmp_path: Path) -> None:
    cheap_a100 = make_offer(id=31009001, gpu_name="A100 PCIE", gpu_ram=40_960, dph_base=0.42, reliability=0.99)
    with (
        FakeOpenAIServer(model=GPU_MODEL) as vllm,  # vLLM started without a key check, as a plain `vllm serve`
        FakeVastServer(api_key=VAST_KEY, vllm_port=vllm.port, offers=[*default_offers(), cheap_a100]) as vast,
    ):
        (tmp_path / "home").mkdir()
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "arcticcodex.toml").write_text('[workspace]\ndata_dir = ".arcticcodex"\n\n[gpu]\n')
        env = {**os.environ, "VAST_API_KEY": VAST_KEY, "VAST_URL": vast.url, "HOME": str(tmp_path / "home")}
        result = subprocess.run(
            [sys.executable, str(EXAMPLE), str(workspace)], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "balance $50.00" in out
        assert "cheapest: A100 PCIE at $0.4" in out
        rented = [r for r in vast.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]
        assert rented[0].path == "/api/v0/asks/31009001/"  # the A100 under $0.50: "A100" matched "A100 PCIE"
        assert f"serves {GPU_MODEL} at http://127.0.0.1:" in out
        assert "teacher pool: [" in out and "destroyed 2 instance(s)" in out
        assert len(rented) == 3 and vast.instances == {} and len(vast.destroyed) == 3
        assert any(r.method == "PUT" and r.body == {"state": "stopped"} for r in vast.requests)
        chats_or_models = [r for r in vllm.requests if r.path == "/v1/models"]
        assert len(chats_or_models) >= 3  # each instance was checked through its tunnel before use


class RentWatchingVast(FakeVastServer):
    """The fake Vast, which reads the workspace's instance table (read-only, as another process would) at
    the moment a rental request arrives, before it is carried out."""

    def __init__(self, database: Path, **settings: Any) -> None:
        super().__init__(**settings)
        self.database = database
        self.rows_at_rental: list[list[tuple[Any, ...]]] = []

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response | None:
        if method == "PUT" and target.startswith("/api/v0/asks/"):
            with closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)) as conn:
                rows = conn.execute("SELECT label, status, instance_id, offer_id FROM gpu_instances").fetchall()
            self.rows_at_rental.append(rows)
        return super().handle(method, target, headers, raw)


def test_the_first_apis_provision_records_the_instance_before_renting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acx: Acx
) -> None:
    workspace = make_gpu_workspace(tmp_path / "ws")
    with (
        FakeOpenAIServer(model=GPU_MODEL) as vllm,
        RentWatchingVast(
            workspace.database_path, api_key=VAST_KEY, vllm_port=vllm.port, boot_seconds=(0.1, 0.3)
        ) as vast,
        VastProvisioner(VAST_KEY, base_url=vast.url, workspace=workspace, poll_interval=0.05) as provisioner,
    ):
        monkeypatch.setenv("VAST_API_KEY", VAST_KEY)
        monkeypatch.setenv("VAST_URL", vast.url)
        offer = provisioner.search_instances(min_vram=16)[0]
        instance = provisioner.provision(offer_id=offer.id, vllm_model=GPU_MODEL, local_port=free_local_port())
        try:
            (rows,) = vast.rows_at_rental  # one rental, and when it was asked for, the workspace already knew it
            assert rows == [(instance.label, "launching", None, offer.id)]
            listed = json.loads(acx("-w", workspace.root, "gpu", "ls", "--json").stdout)["instances"]
            assert [(row["instance_id"], row["status"]) for row in listed] == [(instance.instance_id, "ready")]
            assert instance.tunnel is not None and instance.tunnel.alive()
        finally:
            assert provisioner.destroy_instance(instance.instance_id)
        assert vast.instances == {} and vast.destroyed == {instance.instance_id}
        assert json.loads(acx("-w", workspace.root, "gpu", "ls", "--json").stdout)["instances"] == []


def test_the_first_apis_provision_outside_a_workspace_rents_nothing(tmp_path: Path) -> None:
    with (
        FakeVastServer(api_key=VAST_KEY, boot_seconds=(0.1, 0.3)) as vast,
        VastProvisioner(VAST_KEY, base_url=vast.url, state_dir=tmp_path / "gpu") as provisioner,
    ):
        offer = provisioner.search_instances(min_vram=16)[0]
        with pytest.raises(WorkspaceNotFoundError) as caught:
            provisioner.provision(offer_id=offer.id)
        message = str(caught.value)
        assert "records every instance in a workspace before renting it" in message
        assert f"no ArcticCodex workspace in {tmp_path}" in message and "arcticcodex init" in message
        assert "VastProvisioner(workspace=Workspace.open(DIR))" in message
        assert not [r for r in vast.requests if r.method == "PUT"] and vast.instances == {}
