"""Rent GPUs on Vast.ai that serve a model with vLLM, use them as teachers, and give them back.

The first API's example (``arcticcodex.compat``), working against the real Vast.ai REST API (or the fake
one the tests run); every instance it rents is recorded in the workspace first, as ``gpu up`` does::

    export VAST_API_KEY=...                   # from https://cloud.vast.ai/manage-keys/
    python examples/gpu_teachers.py my-workspace

It rents real GPUs for a few minutes: a few cents, and every instance is destroyed at the end, also
when something fails on the way.
"""

from __future__ import annotations

import os
import sys

from arcticcodex import Workspace
from arcticcodex.compat import VastProvisioner
from arcticcodex.gpu import GpuBudget, VastInstanceManager
from arcticcodex.gpu.tunnel import free_local_port

MODEL = os.environ.get("EXAMPLE_MODEL", "Qwen/Qwen2.5-7B-Instruct")


def one_gpu_by_hand(workspace: Workspace) -> None:
    """The provisioner alone: search, rent, tunnel, check, stop, destroy."""
    provisioner = VastProvisioner(api_key=os.environ["VAST_API_KEY"], workspace=workspace)
    print(f"balance ${provisioner.get_account_balance():.2f}")
    offers = provisioner.search_instances(min_vram=40, gpu_types=["A100"], max_price=0.50)
    if not offers:
        print("no A100 under $0.50/h right now")
        return
    offer = offers[0]
    eight_hours = provisioner.estimate_cost(offer.dph_total, 8)
    print(f"cheapest: {offer.gpu_name} at ${offer.dph_total:.3f}/h; an 8-hour job ≈ ${eight_hours:.2f}")
    instance = provisioner.provision(machine_id=offer.machine_id, vllm_model=MODEL, local_port=free_local_port())
    try:
        tunnel = provisioner.setup_ssh_tunnel(instance, local_port=instance.local_port)
        print(f"instance {instance.instance_id} serves {instance.served_model} at {tunnel.url}")
        provisioner.close_ssh_tunnel(instance)
        provisioner.stop_instance(instance.instance_id)
    finally:
        provisioner.destroy_instance(instance.instance_id)
    print(f"instance {instance.instance_id} destroyed")


def a_teacher_pool(workspace: Workspace) -> None:
    """The manager: a pool of two GPUs registered as the `gpu` teacher, within a budget, then cleaned up."""
    with VastInstanceManager(workspace, budget=GpuBudget(total_usd=5.0)) as manager:
        try:
            pool = manager.provision_teacher_pool(gpu_types=["RTX 4090", "RTX 3090"], pool_size=2, model=MODEL)
            print(f"teacher pool: {[record.instance_id for record in pool]} (teacher 'gpu' in arcticcodex.toml)")
            print(f"spent so far ${manager.get_total_cost():.4f}")
        finally:
            print(f"destroyed {manager.cleanup_all()} instance(s); total ${manager.get_total_cost():.4f}")


if __name__ == "__main__":
    example, _ = Workspace.init(sys.argv[1] if len(sys.argv) > 1 else "gpu-example")
    one_gpu_by_hand(example)
    a_teacher_pool(example)
