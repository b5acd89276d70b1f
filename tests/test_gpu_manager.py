"""The GPU manager and provisioner against the fakes: faults in launching, tunnels that die, crashed
launches, reaping, budgets under simulated time, and keys that never leak."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arcticcodex._sync import run_sync
from arcticcodex.errors import GpuBudgetError, InstanceFailedError, TunnelError
from arcticcodex.gpu import GpuBudget, OfferQuery, VastClient, VastInstanceManager, VllmProvisioner, VllmSpec
from arcticcodex.gpu.state import InstanceStore
from arcticcodex.gpu.tunnel import pid_alive, port_accepts
from arcticcodex.teachers.factory import build_pool
from arcticcodex.teachers.replicas import ReplicatedTeacher
from arcticcodex.teachers.results import EvidenceItem, Rubric
from arcticcodex.workspace import Workspace
from conftest import GPU_MODEL, VAST_KEY, VLLM_KEY, make_gpu_workspace
from fakes.openai_server import FakeOpenAIServer
from fakes.vast_server import FakeVastServer


def make_manager(
    workspace: Workspace,
    vast: FakeVastServer,
    *,
    budget: GpuBudget | None = None,
    poll: float = 0.02,
    boot_deadline: float = 3.0,
    clock: object = None,
) -> VastInstanceManager:
    provisioner = VllmProvisioner(
        VAST_KEY, base_url=vast.url, poll_interval=poll, boot_deadline=boot_deadline, vllm_deadline=3.0
    )
    provisioner.client.backoff = 0.01
    kwargs = {"clock": clock} if clock is not None else {}
    return VastInstanceManager(workspace, provisioner, budget=budget, poll_interval=poll, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def manager(gpu_workspace: Workspace, vast: FakeVastServer) -> Iterator[VastInstanceManager]:
    with make_manager(gpu_workspace, vast) as built:
        yield built
        built.cleanup_all()


def cheapest(manager: VastInstanceManager) -> object:
    return manager.search(OfferQuery(min_vram_gb=16))[0]


@pytest.mark.parametrize("failure", ["never-running", "exit-while-loading", "oci-error", "unknown", "offline"])
def test_a_launch_that_does_not_come_up_is_destroyed(
    manager: VastInstanceManager, vast: FakeVastServer, failure: str
) -> None:
    vast.fail_next_instance(failure)
    manager.provisioner.boot_deadline = 0.5
    with pytest.raises(InstanceFailedError) as caught:
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    assert "will be destroyed" in str(caught.value)
    (record,) = manager.instances(include_destroyed=True)
    assert record.status == "destroyed" and record.reason.startswith("launch failed")
    assert record.instance_id in vast.destroyed and vast.instances == {}
    if failure == "never-running":
        assert "was not running after" in str(caught.value)


def test_an_instance_invisible_right_after_create_is_waited_for(
    manager: VastInstanceManager, vast: FakeVastServer
) -> None:
    vast.fail_next_instance("invisible-first-read")
    record = manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    assert record.status == "ready"


def test_bursts_of_429_and_5xx_are_retried(manager: VastInstanceManager, vast: FakeVastServer) -> None:
    vast.inject("429", path="/api/v0/bundles", times=2)
    vast.inject("429-json", path="/api/v0/instances/*", method="GET", times=3)
    vast.inject("503", path="/api/v0/instances/*", method="GET", times=1)
    record = manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    assert record.status == "ready"
    answered = [r.status for r in vast.requests]
    assert answered.count(429) == 5 and answered.count(503) == 1


def test_the_daily_search_quota_is_not_retried(vast: FakeVastServer) -> None:
    vast.inject("429-quota", path="/api/v0/bundles", times=5)
    with VastClient(VAST_KEY, base_url=vast.url, backoff=0.01) as client, pytest.raises(Exception) as caught:
        client.search_offers(OfferQuery())
    assert "midnight UTC" in str(caught.value)
    assert sum(1 for r in vast.requests if r.path.startswith("/api/v0/bundles")) == 1


def test_create_is_never_retried(vast: FakeVastServer) -> None:
    vast.inject("503", path="/api/v0/asks/*", times=1)
    offer = vast.offers[0]["id"]
    with VastClient(VAST_KEY, base_url=vast.url, backoff=0.01) as client, pytest.raises(Exception) as caught:
        client.create_instance(offer, {"image": "vllm/vllm-openai:latest"})
    assert "503" in str(caught.value)
    assert sum(1 for r in vast.requests if r.path.startswith("/api/v0/asks/")) == 1


def test_a_dead_tunnel_is_detected_and_reopened(
    manager: VastInstanceManager, vast: FakeVastServer, vllm: FakeOpenAIServer
) -> None:
    record = manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    assert record.instance_id is not None and record.local_port is not None
    first = record.tunnel_pid
    os.kill(first, signal.SIGKILL)  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while pid_alive(first) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not port_accepts(record.local_port)
    reopened = manager.tunnel(record.instance_id)
    assert reopened.pid != first and reopened.local_port == record.local_port and port_accepts(record.local_port)

    vast.drop_ssh_connections(record.instance_id)  # a network blip: the ssh client notices and exits
    deadline = time.monotonic() + 5
    while pid_alive(reopened.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    again = manager.tunnel(record.instance_id)
    assert again.pid != reopened.pid and port_accepts(record.local_port)
    events = [e["event"] for e in manager.store.events()]
    assert events.count("tunnel_opened") == 3


def test_no_tunnel_to_a_stopped_instance(manager: VastInstanceManager, vast: FakeVastServer) -> None:
    record = manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    assert record.instance_id is not None
    manager.stop(record.instance_id, reason="test")
    with pytest.raises(TunnelError, match="not running"):
        manager.tunnel(record.instance_id)
    stopped = manager.store.by_instance(record.instance_id)
    assert stopped is not None and stopped.rate == pytest.approx(stopped.storage_rate)


def test_a_crashed_launch_is_destroyed_by_the_next_ls(gpu_workspace: Workspace, tmp_path: Path) -> None:
    """kill -9 `gpu up` while the instance boots; `gpu ls` in a later process finds and destroys it."""
    with (
        FakeOpenAIServer(model=GPU_MODEL, api_key=VLLM_KEY) as slow_vllm,
        FakeVastServer(api_key=VAST_KEY, vllm_port=slow_vllm.port, boot_seconds=(0.2, 600)) as slow,
    ):
        env = {**os.environ, "VAST_URL": slow.url, "VAST_API_KEY": VAST_KEY}
        command = [str(Path(sys.executable).parent / "arcticcodex"), "-w", str(gpu_workspace.root)]
        launch = subprocess.Popen([*command, "gpu", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        store = InstanceStore(gpu_workspace)
        deadline = time.monotonic() + 20
        while not any(r.instance_id for r in store.all()) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the launch has noted the instance id: now it waits for the boot
        launch.kill()
        launch.communicate()
        (instance_id,) = slow.instances
        listed = subprocess.run([*command, "gpu", "ls", "--json"], env=env, capture_output=True, text=True, check=True)
        report = json.loads(listed.stdout)
        assert report["instances"] == []
        assert any("launch was interrupted" in action for action in report["actions"])
        assert instance_id in slow.destroyed and slow.instances == {}


def test_reap_destroys_labelled_instances_it_does_not_track(manager: VastInstanceManager, vast: FakeVastServer) -> None:
    ours = manager.provisioner.client.create_instance(
        vast.offers[0]["id"], {"image": "vllm/vllm-openai:latest", "label": manager.label_prefix + "lost0001"}
    )
    theirs = manager.provisioner.client.create_instance(
        vast.offers[1]["id"], {"image": "vllm/vllm-openai:latest", "label": "someone-elses"}
    )
    assert manager.reap() == [ours]
    assert ours in vast.destroyed and theirs in vast.instances
    assert {"event": "reaped", "instance_id": ours}.items() <= list(manager.store.events())[-1].items()


def test_ttl_and_idle(gpu_workspace: Workspace, vast: FakeVastServer, vllm: FakeOpenAIServer) -> None:
    with make_manager(gpu_workspace, vast, clock=vast.now) as manager:
        offers = manager.search(OfferQuery(min_vram_gb=16))
        short = manager.up(offers[0], VllmSpec(model=GPU_MODEL), ttl_s=3600)
        idle = manager.up(offers[1], VllmSpec(model=GPU_MODEL), idle_s=600)
        assert manager.enforce() == []
        vast.advance(400)
        manager.enforce()
        vllm_calls = len(vllm.requests)
        _call_through(idle.local_port)  # a request through the tunnel resets the idle clock
        assert len(vllm.requests) == vllm_calls + 1
        vast.advance(400)
        assert manager.enforce() == []  # 800 s since launch, but only 400 since the last request
        vast.advance(3000)
        done = manager.enforce()
        assert f"{short.instance_id}: destroyed (TTL reached)" in done
        assert f"{idle.instance_id}: stopped (idle)" in done
        assert short.instance_id in vast.destroyed
        assert vast.instances[idle.instance_id]["intended_status"] == "stopped"
        manager.cleanup_all()


def _call_through(port: int | None) -> None:
    import httpx2 as httpx

    body = {"model": GPU_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {VLLM_KEY}"}
    )
    assert response.status_code == 200


def test_launch_refused_when_the_budget_cannot_pay(manager: VastInstanceManager, vast: FakeVastServer) -> None:
    offer = cheapest(manager)
    manager.budget = GpuBudget(total_usd=offer.dph_total * 2)  # type: ignore[attr-defined]
    manager.up(offer, VllmSpec(model=GPU_MODEL), hours=1)  # type: ignore[arg-type]
    with pytest.raises(GpuBudgetError, match="committed to running instances"):
        manager.up(manager.search(OfferQuery(min_vram_gb=16))[0], VllmSpec(model=GPU_MODEL), hours=1.5)
    assert len(vast.instances) == 1


POLL = 600.0  # simulated seconds between budget checks


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    budget=st.floats(min_value=0.2, max_value=3.0),
    plan=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=4)), min_size=3, max_size=10),
)
def test_spend_never_exceeds_the_budget_by_more_than_one_polling_interval(
    budget: float, plan: list[tuple[bool, int]]
) -> None:
    """Simulated time: instances launched at random ticks on random offers; `enforce` every POLL seconds.

    The spend is the fake Vast's own bill (its balance), not the manager's estimate."""
    with (
        tempfile.TemporaryDirectory() as folder,
        FakeOpenAIServer(model=GPU_MODEL, api_key=VLLM_KEY) as model_server,
        FakeVastServer(api_key=VAST_KEY, vllm_port=model_server.port, boot_seconds=(0, 0), balance=1000) as vast,
    ):
        workspace = make_gpu_workspace(Path(folder))
        start_balance = vast.balance()
        with make_manager(workspace, vast, budget=GpuBudget(total_usd=budget), clock=vast.now) as manager:
            manager.poll_interval = POLL
            most_burning = 0.0  # $/h of the instances running at once, at most
            for launch, which in plan:
                offers = manager.search(OfferQuery(min_vram_gb=16, limit=5))  # rented offers leave the list
                if launch and offers:
                    with contextlib.suppress(GpuBudgetError):
                        manager.up(offers[which % len(offers)], VllmSpec(model=GPU_MODEL), hours=POLL / 3600)
                burning = sum(i["dph_total"] for i in vast.instances.values() if i["actual_status"] == "running")
                most_burning = max(most_burning, burning)
                vast.advance(POLL)
                manager.enforce()
                fake_spend = start_balance - vast.balance()
                assert fake_spend <= budget + most_burning * POLL / 3600 + 1e-6
                assert manager.get_total_cost() >= fake_spend - 1e-6, "the estimate never under-counts"
            manager.cleanup_all()


def test_secrets_never_in_logs_errors_or_json(
    gpu_workspace: Workspace, manager: VastInstanceManager, vast: FakeVastServer
) -> None:
    manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    vast.fail_next_instance("exit-while-loading")
    with pytest.raises(InstanceFailedError) as caught:
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    with VastClient("not-the-key-" + VAST_KEY[::-1], base_url=vast.url) as wrong, pytest.raises(Exception) as refused:
        wrong.balance()
    now = time.time()
    texts = [
        str(caught.value),
        str(refused.value),
        json.dumps([r.as_json(now) for r in manager.instances(include_destroyed=True)]),
        manager.store.log_path.read_text(),
        gpu_workspace.config.path.read_text(),
        *(p.read_text(errors="replace") for p in (gpu_workspace.data_dir / "gpu" / "ssh").glob("*.log")),
    ]
    for text in texts:
        assert VAST_KEY not in text and VLLM_KEY not in text and VAST_KEY[::-1] not in text
    key_file = gpu_workspace.data_dir / "gpu" / "keys" / "gpu.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert (gpu_workspace.data_dir / "gpu" / "ssh" / "id_ed25519").stat().st_mode & 0o077 == 0


def test_a_pool_of_instances_is_one_teacher_that_spreads_its_calls(
    gpu_workspace: Workspace, manager: VastInstanceManager, vllm: FakeOpenAIServer
) -> None:
    pool_records = manager.provision_teacher_pool(gpu_types=["RTX 4090", "RTX 3090"], pool_size=2, model=GPU_MODEL)
    assert len({r.machine_id for r in pool_records}) == 2
    workspace = Workspace.open(gpu_workspace.root)
    pool = build_pool(workspace, only=["gpu"], use_cache=False)
    teacher = pool.teachers["gpu"]
    assert isinstance(teacher, ReplicatedTeacher) and len(teacher.replicas) == 2
    urls = {replica.config.base_url for replica in teacher.replicas}  # type: ignore[attr-defined]
    assert urls == {f"http://127.0.0.1:{r.local_port}/v1" for r in pool_records}
    vllm.latency = 0.05
    evidence = [EvidenceItem(number=1, text="Otters eat fish.")]

    async def many() -> list[float]:
        try:
            critiques = await asyncio.gather(
                *(pool.critique(f"Otters eat fish {i}.", evidence, Rubric()) for i in range(8))
            )
        finally:
            await pool.aclose()
        return [c.score for c in critiques]

    assert run_sync(many()) == [0.9] * 8
    assert teacher.calls == [4, 4], "concurrent calls are spread evenly over the replicas"
    assert sum(1 for r in vllm.requests if r.role == "critic") == 8

    manager.down(pool_records[0].instance_id)  # type: ignore[arg-type]
    config = Workspace.open(gpu_workspace.root).config
    (entry,) = config.raw["teachers"]
    assert entry["base_url"] == f"http://127.0.0.1:{pool_records[1].local_port}/v1" and "replicas" not in entry


def test_a_rental_whose_answer_was_lost_is_found_and_destroyed(gpu_workspace: Workspace, vast: FakeVastServer) -> None:
    """Vast creates the instance but the answer never arrives (timeout): the record stays live until it is found."""
    client = VastClient(VAST_KEY, base_url=vast.url, timeout=0.5, backoff=0.01)
    provisioner = VllmProvisioner(client=client, poll_interval=0.02, boot_deadline=3, vllm_deadline=3)
    try:
        manager = VastInstanceManager(gpu_workspace, provisioner, poll_interval=0.02)
        vast.inject("slow:1.5", path="/api/v0/asks/*", method="PUT")
        with pytest.raises(Exception, match="may still have created the instance"):
            manager.up(manager.search(OfferQuery())[0], VllmSpec(model=GPU_MODEL))
        (record,) = manager.instances()
        assert record.status == "launching" and record.instance_id is None and record.rate > 0, "still charged"
        deadline = time.monotonic() + 10
        while not vast.instances and time.monotonic() < deadline:
            time.sleep(0.05)
        (instance_id,) = vast.instances
        done = manager.enforce()
        assert any("destroyed" in action or "cleaned up" in action for action in done), done
        assert instance_id in vast.destroyed and vast.instances == {}
        assert manager.instances() == []
    finally:
        client.close()


def test_a_teacher_name_in_use_is_refused_before_renting(gpu_workspace: Workspace, vast: FakeVastServer) -> None:
    with gpu_workspace.config.path.open("a") as handle:
        handle.write('\n[[teachers]]\nname = "gpu"\npreset = "openai"\n')
    with (
        make_manager(Workspace.open(gpu_workspace.root), vast) as manager,
        pytest.raises(Exception, match="already names an entry that is not GPU-managed"),
    ):
        manager.up(manager.search(OfferQuery())[0], VllmSpec(model=GPU_MODEL))
    assert not any(r.path.startswith("/api/v0/asks/") for r in vast.requests) and vast.instances == {}


def test_the_instance_destroys_itself_after_its_ttl() -> None:
    onstart = VllmSpec(model=GPU_MODEL, ttl_s=7200).onstart()
    first, second = onstart.splitlines()
    assert first.startswith("(sleep 7200 && curl -fsS -X DELETE")
    assert '"https://console.vast.ai/api/v0/instances/$CONTAINER_ID/"' in first and "$CONTAINER_API_KEY" in first
    assert second.startswith(f"nohup vllm serve {GPU_MODEL} ")
    assert "\n" not in VllmSpec(model=GPU_MODEL).onstart()


def test_stop_and_start_again(manager: VastInstanceManager, vast: FakeVastServer) -> None:
    record = manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))  # type: ignore[arg-type]
    assert record.instance_id is not None
    pinned = manager.provisioner.state_dir / "ssh" / f"known_hosts-{record.instance_id}"
    before = pinned.read_text()
    manager.stop(record.instance_id)
    assert "teachers" not in Workspace.open(manager.workspace.root).config.raw, "a stopped GPU is no teacher"
    started = manager.start(record.instance_id)
    assert started.status == "ready" and port_accepts(started.local_port)  # type: ignore[arg-type]
    # the restarted container's fresh host key is pinned in place of the old one, not beside it: kept, the
    # old pin would refuse the new key whenever the container came back on the port it had before
    after = pinned.read_text().splitlines()
    assert len(after) == 1 and after[0] not in before
    assert vast.instances[record.instance_id]["actual_status"] == "running"
    assert Workspace.open(manager.workspace.root).config.raw["teachers"][0]["name"] == "gpu"
