"""Issue 13, item 2: the library reads ``[gpu]`` as the command line does.

``VastInstanceManager(workspace)`` used to wait with its own defaults (20 minutes to boot, polls 1 s,
2 s, 4 s … apart) whatever ``[gpu]`` said; only ``arcticcodex gpu`` read the table.  Here a manager
made by library code alone, against the fake Vast, must give up on an instance that never runs after
``boot_timeout_s`` and poll it every ``poll_interval_s`` — seen in the requests the fake received.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arcticcodex import configfile
from arcticcodex.errors import ConfigError, InstanceFailedError
from arcticcodex.gpu import OfferQuery, VastInstanceManager, VllmSpec
from arcticcodex.workspace import Workspace
from conftest import GPU_MODEL, VAST_KEY, Acx, make_gpu_workspace
from fakes.vast_server import FakeVastServer


@pytest.fixture
def library_workspace(tmp_path: Path, vast: FakeVastServer, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("VAST_API_KEY", VAST_KEY)
    monkeypatch.setenv("VAST_URL", vast.url)
    workspace = make_gpu_workspace(tmp_path / "ws")  # [gpu] poll_interval_s = 0.05
    configfile.set_values(workspace.config.path, "gpu", {"boot_timeout_s": 1.0, "budget_usd": 3.0})
    return Workspace.open(workspace.root)


def test_a_library_manager_waits_and_polls_as_the_gpu_table_says(
    library_workspace: Workspace, vast: FakeVastServer
) -> None:
    vast.fail_next_instance("never-running")
    with VastInstanceManager(library_workspace) as manager:  # no provisioner, budget or interval given
        # fail fast rather than wait the built-in 20 minutes if the table were ignored
        assert manager.provisioner.boot_deadline == 1.0, "[gpu] boot_timeout_s was not read"
        offer = manager.search(OfferQuery(min_vram_gb=16))[0]
        with pytest.raises(InstanceFailedError) as caught:
            manager.up(offer, VllmSpec(model=GPU_MODEL))
        assert manager.budget.total_usd == 3.0 and manager.poll_interval == 0.05
    assert "was not running after 1 s" in str(caught.value)
    assert "raise [gpu] boot_timeout_s in arcticcodex.toml" in str(caught.value)
    (record,) = manager.instances(include_destroyed=True)
    assert record.status == "destroyed" and vast.instances == {}
    polls = [r for r in vast.requests if r.method == "GET" and r.path == f"/api/v0/instances/{record.instance_id}/"]
    # every 0.05 s for a second; the built-in poll interval would have polled twice (after 1 s and 2 s)
    assert len(polls) > 5, [r.path for r in vast.requests]


def test_a_wrong_gpu_value_stops_gpu_commands_with_its_line_not_other_commands(
    library_workspace: Workspace, acx: Acx
) -> None:
    path = library_workspace.config.path
    path.write_text(path.read_text().replace("poll_interval_s = 0.05", "poll_interval_s = 0"))
    line = path.read_text().splitlines().index("poll_interval_s = 0") + 1
    workspace = Workspace.open(library_workspace.root)  # the rest of the file is usable
    with pytest.raises(ConfigError) as caught:
        VastInstanceManager(workspace)
    expected = (
        f"{path}:{line}: [gpu] poll_interval_s must be a positive number of seconds, not 0; e.g. poll_interval_s = 600"
    )
    assert str(caught.value) == expected
    assert expected in acx("-w", workspace.root, "gpu", "ls", code=1).stderr
    acx("-w", workspace.root, "teachers", "list")  # reads no [gpu]: unaffected
