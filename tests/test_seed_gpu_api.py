"""The seed's GPU example (examples/gpu_teachers.py), run as written against the fakes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import GPU_MODEL, VAST_KEY
from fakes.openai_server import FakeOpenAIServer
from fakes.vast_server import FakeVastServer, default_offers, make_offer

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
