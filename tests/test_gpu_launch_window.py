"""GPU money: from the moment Vast rents an instance, no failure leaves it running unrecorded.

Each test breaks ``VastInstanceManager.up`` at one place of the window between a successful create and the
instance id safely in the workspace — Vast's answer spoiled after it rented, Ctrl-C or a database error while
the id is written, Ctrl-C later in the launch, Vast refusing the destroy as well — and then asks the fake Vast
itself (not our records) whether anything is still running: it must be destroyed at once, or be recorded so
that the next ``gpu ls`` destroys it.  vLLM in the instance listens on loopback only: the last test looks at
what was sent to Vast and at the tunnel's own ``ssh`` command line.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.errors import GpuError, VastApiError
from arcticcodex.gpu import OfferQuery, VastInstanceManager, VllmProvisioner, VllmSpec
from arcticcodex.gpu.offers import Offer
from arcticcodex.gpu.state import InstanceStore
from arcticcodex.workspace import Workspace
from conftest import GPU_MODEL, VAST_KEY, VLLM_KEY, Acx
from fakes.vast_server import FakeVastServer


def short_sleep(seconds: float) -> None:
    time.sleep(min(seconds, 0.02))  # the provisioner's retry pauses, shortened; the fake's clock is not touched


@pytest.fixture
def manager(gpu_workspace: Workspace, vast: FakeVastServer) -> Iterator[VastInstanceManager]:
    provisioner = VllmProvisioner(
        VAST_KEY, base_url=vast.url, poll_interval=0.02, boot_deadline=3.0, vllm_deadline=3.0, sleep=short_sleep
    )
    provisioner.client.backoff = 0.01
    with VastInstanceManager(gpu_workspace, provisioner, poll_interval=0.02) as built:
        yield built


def cheapest(manager: VastInstanceManager) -> Offer:
    return manager.search(OfferQuery(min_vram_gb=16))[0]


def rentals(vast: FakeVastServer) -> int:
    """How many creates the fake carried out (whatever their answers looked like)."""
    return len(vast.instances) + len(vast.destroyed)


def gpu_ls(acx: Acx, workspace: Workspace) -> dict[str, Any]:
    """``arcticcodex gpu ls --json``: what a later command sees, with a manager of its own."""
    result = acx("-w", workspace.root, "gpu", "ls", "--json")
    assert VAST_KEY not in result.output and VLLM_KEY not in result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


class InterruptedStore(InstanceStore):
    """The instance store, failing once with ``failure`` at the write that records the instance id.

    ``committed``: the row is written first and the failure comes after (Ctrl-C as the write returns).
    """

    def __init__(self, workspace: Workspace, failure: BaseException, *, committed: bool = False) -> None:
        super().__init__(workspace)
        self.failure, self.committed, self.armed = failure, committed, True

    def update(self, label: str, **changes: Any) -> None:
        if self.armed and changes.get("instance_id") is not None:
            self.armed = False
            if self.committed:
                super().update(label, **changes)
            raise self.failure
        super().update(label, **changes)


# -- Vast rented it, but the answer carrying the id is spoiled ----------------------------------------------------


def test_the_fakes_processed_faults_rent_and_spoil_only_the_answer(vast: FakeVastServer) -> None:
    provisioner = VllmProvisioner(VAST_KEY, base_url=vast.url)
    try:
        vast.inject("processed-no-id", path="/api/v0/asks/*", method="PUT")
        with pytest.raises(VastApiError, match="without an instance id"):
            provisioner.client.create_instance(vast.offers[0]["id"], {"image": "vllm/vllm-openai:latest"})
        assert len(vast.instances) == 1, "the create was carried out"
    finally:
        provisioner.close()


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("processed-no-id", "without an instance id"),
        ("processed-not-json", "not JSON (HTTP 200)"),
        ("processed-drop", "did not answer"),
    ],
)
def test_a_rental_whose_answer_is_spoiled_is_found_by_its_label_and_destroyed(
    manager: VastInstanceManager, vast: FakeVastServer, fault: str, said: str
) -> None:
    vast.inject(fault, path="/api/v0/asks/*", method="PUT")
    with pytest.raises(VastApiError) as caught:
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))
    (destroyed,) = vast.destroyed
    assert rentals(vast) == 1 and vast.instances == {}, "Vast rented it, and it is gone again"
    message = str(caught.value)
    assert said in message and f"the instance Vast created anyway ({destroyed}) was found and destroyed" in message
    (record,) = manager.instances(include_destroyed=True)
    assert (record.status, record.instance_id) == ("destroyed", destroyed)
    assert VLLM_KEY not in message and "instance_api_key" not in message


@pytest.mark.parametrize("fault", ["processed-no-id", "processed-not-json"])
def test_a_spoiled_answer_while_vast_cannot_list_is_kept_for_the_next_ls(
    manager: VastInstanceManager, vast: FakeVastServer, gpu_workspace: Workspace, fault: str, acx: Acx
) -> None:
    """Not even a 200 that is not JSON counts as a refusal: the record waits, live, for the reaper."""
    vast.inject(fault, path="/api/v0/asks/*", method="PUT")
    vast.inject("503", path="/api/v1/instances", method="GET", times=manager.provisioner.client.max_attempts)
    with pytest.raises(VastApiError) as caught:
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))
    assert "Vast may still have created the instance: `arcticcodex gpu ls` and `gpu reap`" in str(caught.value)
    (instance_id,) = vast.instances  # running, and we do not know its id ...
    (record,) = manager.instances()
    assert record.status == "launching" and record.instance_id is None and record.owner_pid is None  # ... but its label
    report = gpu_ls(acx, gpu_workspace)
    assert any("interrupted launch was cleaned up" in action for action in report["actions"]), report
    assert instance_id in vast.destroyed and vast.instances == {} and report["instances"] == []


# -- Ctrl-C or a database error while the id is recorded ----------------------------------------------------------


@pytest.mark.parametrize("committed", [False, True], ids=["before-the-write", "after-the-write"])
def test_ctrl_c_while_the_instance_id_is_recorded_destroys_the_instance(
    manager: VastInstanceManager, vast: FakeVastServer, gpu_workspace: Workspace, committed: bool
) -> None:
    manager.store = InterruptedStore(gpu_workspace, KeyboardInterrupt(), committed=committed)
    with pytest.raises(KeyboardInterrupt):
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))
    (destroyed,) = vast.destroyed
    assert rentals(vast) == 1 and vast.instances == {}
    (record,) = manager.instances(include_destroyed=True)
    assert (record.status, record.instance_id, record.reason) == ("destroyed", destroyed, "launch failed: interrupted")
    assert Workspace.open(gpu_workspace.root).config.raw.get("teachers", []) == [], "no teacher was registered"


@pytest.mark.parametrize("lasting", [False, True], ids=["fails-once", "keeps-failing"])
def test_a_database_error_while_the_instance_id_is_recorded_destroys_the_instance(
    manager: VastInstanceManager, vast: FakeVastServer, gpu_workspace: Workspace, lasting: bool
) -> None:
    """A real SQLite error from the workspace database: a trigger refuses to store the instance id."""
    raise_ = (
        "SELECT RAISE(ABORT, 'disk I/O error')"
        if lasting
        else "DELETE FROM failing; SELECT RAISE(FAIL, 'disk I/O error')"
    )
    conn = gpu_workspace.connect()
    try:
        conn.execute("CREATE TABLE failing (n INTEGER)")
        conn.execute("INSERT INTO failing VALUES (1)")
        conn.execute(
            "CREATE TRIGGER fail_the_id BEFORE UPDATE OF instance_id ON gpu_instances "
            f"WHEN NEW.instance_id IS NOT NULL AND (SELECT count(*) FROM failing) > 0 BEGIN {raise_}; END"
        )
    finally:
        conn.close()
    with pytest.raises(GpuError) as caught:
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))
    (destroyed,) = vast.destroyed
    assert rentals(vast) == 1 and vast.instances == {}, "destroyed by its id, although the database refused it"
    assert str(caught.value) == (
        f"the launch of instance {destroyed} failed (IntegrityError: disk I/O error); it was destroyed, so it bills "
        "nothing more — fix the cause, then run `arcticcodex gpu up` again"
    )
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    (record,) = manager.instances(include_destroyed=True)
    if lasting:  # nothing could be written: the row waits for an enforce once its owner (this process) is gone
        assert (record.status, record.instance_id) == ("launching", None)
    else:  # the database came back for the bookkeeping
        assert (record.status, record.instance_id) == ("destroyed", destroyed)


@pytest.mark.parametrize("event", ["launched", "tunnel_opened", "ready"])
def test_ctrl_c_later_in_the_launch_destroys_the_instance(
    manager: VastInstanceManager, vast: FakeVastServer, gpu_workspace: Workspace, event: str
) -> None:
    """Ctrl-C lands in the CLI's progress printer (a listener of the lifecycle log) at each step."""

    def interrupt(entry: dict[str, Any]) -> None:
        if entry["event"] == event:
            raise KeyboardInterrupt

    manager.store.listeners.append(interrupt)
    with pytest.raises(KeyboardInterrupt):
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))
    (destroyed,) = vast.destroyed
    assert rentals(vast) == 1 and vast.instances == {}
    (record,) = manager.instances(include_destroyed=True)
    assert (record.status, record.instance_id) == ("destroyed", destroyed)
    assert Workspace.open(gpu_workspace.root).config.raw.get("teachers", []) == [], "no teacher left behind"


def test_when_vast_will_not_destroy_it_either_the_next_ls_does(
    manager: VastInstanceManager, vast: FakeVastServer, gpu_workspace: Workspace, acx: Acx
) -> None:
    manager.store = InterruptedStore(gpu_workspace, KeyboardInterrupt())
    vast.inject("500", path="/api/v0/instances/*", method="DELETE", times=4)  # every attempt the provisioner makes
    with pytest.raises(GpuError) as caught:
        manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))
    (instance_id,) = vast.instances
    assert str(caught.value).startswith(
        f"the launch of instance {instance_id} failed (interrupted) and destroying it failed too (Vast.ai refused "
    )
    assert f"`arcticcodex gpu down {instance_id}` or `arcticcodex gpu reap` destroys it" in str(caught.value)
    (record,) = manager.instances()
    assert (record.instance_id, record.status, record.owner_pid) == (instance_id, "booting", None), "left to the reaper"
    report = gpu_ls(acx, gpu_workspace)
    assert f"{instance_id}: destroyed (its launch was interrupted)" in report["actions"], report
    assert instance_id in vast.destroyed and vast.instances == {} and report["instances"] == []


# -- vLLM listens on the container's loopback: the tunnel is the only way in -------------------------------------


def test_vllm_is_published_on_no_public_port_and_the_tunnel_reaches_its_loopback(
    manager: VastInstanceManager, vast: FakeVastServer
) -> None:
    record = manager.up(cheapest(manager), VllmSpec(model=GPU_MODEL))
    try:
        (created,) = [r for r in vast.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]
        assert [key for key in created.body["env"] if key.startswith("-p")] == [], created.body["env"]
        assert created.body["runtype"] == "ssh_direc ssh_proxy", "ssh is the one port Vast opens"
        assert "vllm serve " in created.body["onstart"] and " --host 127.0.0.1 --port 8000 " in created.body["onstart"]
        assert "0.0.0.0" not in json.dumps(created.body)
        assert record.instance_id is not None
        assert set(vast.instances[record.instance_id]["ports"]) == {"22/tcp"}
        argv = Path(f"/proc/{record.tunnel_pid}/cmdline").read_bytes().decode().split("\0")
        assert argv[argv.index("-L") + 1] == f"127.0.0.1:{record.local_port}:127.0.0.1:8000"
    finally:
        manager.cleanup_all()
