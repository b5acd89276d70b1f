"""The sandbox under attack: folders swapped for symlinks by a second process, hard links, FIFOs, loops.

Each test performs the attack on real files and asserts two things: nothing outside the tool root was
read or written, and the refusal is a SandboxError whose message names the path and the rule.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from arcticcodex.agent import Sandbox, default_tools
from arcticcodex.errors import SandboxError, ToolError

SECRET = "SECRET: the contents of a file outside the tool root"

# The attacker: a separate process that, in a tight loop, moves the real folder root/work aside and
# puts a symlink to the outside folder in its place, then puts the real folder back.  Every 16th
# swap it pauses briefly in each state, so that on a single core too the calls meet both states.
SWAPPER = r"""
import os, sys, time
root, outside, stop = sys.argv[1:4]
work, aside, link = (os.path.join(root, name) for name in ("work", "work.aside", "work.link"))
swaps, deadline = 0, time.monotonic() + 120
print("ready", flush=True)
while not os.path.exists(stop) and time.monotonic() < deadline:
    os.rename(work, aside)      # the real folder steps aside ...
    os.symlink(outside, link)
    os.rename(link, work)       # ... and a symlink to the outside takes its name
    if swaps % 16 == 0:
        time.sleep(0.0005)
    os.unlink(work)
    os.rename(aside, work)      # then the real folder comes back
    if swaps % 16 == 0:
        time.sleep(0.0005)
    swaps += 1
print(swaps, flush=True)
"""


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


@pytest.fixture
def attack(tmp_path: Path) -> tuple[Sandbox, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "work").mkdir(parents=True)
    outside.mkdir()
    (root / "work" / "file.txt").write_text("inside")
    (outside / "file.txt").write_text(SECRET)  # the same name: a followed symlink would read this
    (outside / "only-outside.txt").write_text(SECRET)
    return Sandbox(root), outside


def test_a_folder_swapped_for_a_symlink_by_another_process_never_leads_outside(
    attack: tuple[Sandbox, Path], tmp_path: Path
) -> None:
    sandbox, outside = attack
    stop = tmp_path / "stop"
    descriptors = _open_descriptors()
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(sandbox.root), str(outside), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    outcomes: Counter[str] = Counter()
    try:
        assert swapper.stdout is not None and swapper.stdout.readline().strip() == "ready"
        loop_until = time.monotonic() + 3.0  # bounds the loop's length; nothing below asserts a duration
        iteration = 0
        while time.monotonic() < loop_until and iteration < 200_000:
            iteration += 1
            try:
                text = sandbox.read_text("work/file.txt")
                assert text == "inside", f"escape: read {text!r} through the swapped folder"
                outcomes["read"] += 1
            except SandboxError as error:
                assert "'work/file.txt'" in str(error)
                outcomes["refused"] += 1
            try:
                sandbox.write_text("work/new.txt", f"payload {iteration}")
                outcomes["written"] += 1
            except SandboxError as error:
                assert "'work/new.txt'" in str(error)
                outcomes["refused"] += 1
            try:
                listed = sandbox.list("work")
                assert all(name.startswith("work/") for name in listed), listed
                assert "work/only-outside.txt" not in listed
                outcomes["listed"] += 1
            except SandboxError as error:
                assert "'work'" in str(error)
                outcomes["refused"] += 1
            assert sorted(os.listdir(outside)) == ["file.txt", "only-outside.txt"], "a file was written outside"
    finally:
        stop.touch()
        output, _ = swapper.communicate(timeout=30)
    swaps = int(output.split()[-1])
    assert swaps > 100, "the swapper process did not race the calls"
    # 0 escapes: the secret was never read (checked on every read above), nothing was written outside …
    assert (outside / "file.txt").read_text() == SECRET and (outside / "only-outside.txt").read_text() == SECRET
    assert sorted(os.listdir(outside)) == ["file.txt", "only-outside.txt"]
    # … the calls both succeeded on the real folder and were refused while the link stood there …
    assert outcomes["read"] > 0 and outcomes["written"] > 0 and outcomes["refused"] > 0, outcomes
    assert (sandbox.root / "work" / "new.txt").read_text().startswith("payload ")
    assert not [name for name in os.listdir(sandbox.root / "work") if name.endswith(".tmp")]  # no debris
    # … and no descriptor was left open on any of the paths taken
    assert _open_descriptors() == descriptors


def test_a_hard_link_to_a_file_outside_is_refused_and_never_written_through(tmp_path: Path) -> None:
    root, secret = tmp_path / "root", tmp_path / "id_ed25519"
    (root / "notes").mkdir(parents=True)
    secret.write_text(SECRET)
    os.link(secret, root / "notes" / "key.txt")  # what an attacker who can write inside the root can do
    sandbox = Sandbox(root)
    with pytest.raises(SandboxError, match=r"'notes/key\.txt' is a hard link .*copy the file instead"):
        sandbox.read_text("notes/key.txt")
    registry = default_tools(sandbox=sandbox, approve=lambda name, arguments: True)
    with pytest.raises(ToolError, match="hard link"):
        registry.call("read_file", {"path": "notes/key.txt"})
    assert registry.calls[-1].result is None and "hard link" in (registry.calls[-1].error or "")
    # a write replaces the name inside the root; the file outside keeps its content and its one name
    registry.call("write_file", {"path": "notes/key.txt", "text": "mine"})
    assert secret.read_text() == SECRET and secret.stat().st_nlink == 1
    assert (root / "notes" / "key.txt").read_text() == "mine"
    assert sandbox.read_text("notes/key.txt") == "mine"


def test_links_inside_the_root_work_and_links_that_leave_it_do_not(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "runs" / "7").mkdir(parents=True)
    (root / "runs" / "7" / "log.txt").write_text("run 7")
    (tmp_path / "secret.txt").write_text(SECRET)
    (root / "latest").symlink_to("runs/7")  # relative, stays inside
    (root / "runs" / "current").symlink_to("../runs/7")  # goes up, but not out
    (root / "up").symlink_to("..")
    (root / "sneaky").symlink_to("runs/../..")
    (root / "loop").symlink_to("loop")
    (root / "zero").symlink_to("/dev/zero")
    sandbox = Sandbox(root)
    assert sandbox.read_text("latest/log.txt") == "run 7"
    assert sandbox.read_text("runs/current/log.txt") == "run 7"
    assert sandbox.list("latest") == ["runs/7/log.txt"]  # real names, not the link's
    sandbox.write_text("latest/new.txt", "through an inside link")
    assert (root / "runs" / "7" / "new.txt").read_text() == "through an inside link"
    for path in ("up/secret.txt", "sneaky/secret.txt", "zero"):
        with pytest.raises(SandboxError, match=f"'{path}' leads outside the tool root through a symbolic link"):
            sandbox.read_text(path)
        with pytest.raises(SandboxError, match="leads outside the tool root"):
            sandbox.write_text(path, "x")
    with pytest.raises(SandboxError, match="'loop' goes through more than 40 symbolic links"):
        sandbox.read_text("loop")
    assert (tmp_path / "secret.txt").read_text() == SECRET


def test_special_files_are_refused_without_waiting(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe")  # opening a FIFO for reading waits for a writer unless O_NONBLOCK
    (root / "folder").mkdir()
    sandbox = Sandbox(root)
    with pytest.raises(SandboxError, match="'pipe' is not a file in the tool root"):
        sandbox.read_text("pipe")
    with pytest.raises(SandboxError, match="'pipe' is a folder or a link; tools write plain files only"):
        sandbox.write_text("pipe", "x")
    with pytest.raises(SandboxError, match="'folder' is not a file"):
        sandbox.read_text("folder")
    with pytest.raises(SandboxError, match="'pipe' is not a folder"):
        sandbox.list("pipe")


def test_text_and_paths_utf8_cannot_hold_are_refused_with_nothing_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    registry = default_tools(sandbox=Sandbox(root), approve=lambda name, arguments: True)
    with pytest.raises(ToolError, match=r"'a\.md' holds a lone surrogate U\+D800 at index 5.*U\+FFFD"):
        registry.call("write_file", '{"path": "a.md", "text": "text \\ud800 more"}')  # as a model's JSON spells it
    with pytest.raises(ToolError, match="not a usable path"):
        registry.call("read_file", '{"path": "a\\udc80.md"}')
    assert os.listdir(root) == []
    (root / "b\udcff.txt").write_text("")  # a file name that is not UTF-8 lists as escapes, not surrogates
    assert registry.call("list_files", {}) == '["b\\\\xff.txt"]'


def test_a_file_swapped_for_a_symlink_after_the_walk_is_not_followed(tmp_path: Path) -> None:
    """The last component is opened with O_NOFOLLOW: a link swapped in after the walk fails the open."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text(SECRET)
    (root / "a.txt").write_text("inside")
    sandbox = Sandbox(root)
    real_stat = os.stat

    def swap_then_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if path == "a.txt":  # the walk has looked at a.txt: now the attacker swaps it
            os.replace(root / "a.txt", tmp_path / "a.bak")
            (root / "a.txt").symlink_to(tmp_path / "secret.txt")
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", swap_then_stat)
        with pytest.raises(SandboxError, match=r"'a\.txt' turned into a symbolic link while it was being opened"):
            sandbox.read_text("a.txt")
