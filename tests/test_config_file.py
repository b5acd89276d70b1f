"""Every command that writes arcticcodex.toml: the file stays valid TOML, keeps the user's comments, reads back.

The commands are the real ones: ``teachers add``/``remove`` through the CLI, ``gpu up``'s teacher
registration (:func:`register_teachers`, over instance records in the workspace database) and its
budget (:func:`save_budget`), in random orders (Hypothesis) on a file the user wrote comments in.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from arcticcodex import configfile
from arcticcodex.config import Config
from arcticcodex.errors import ConfigError
from arcticcodex.gpu.budget import GpuBudget, save_budget
from arcticcodex.gpu.registration import register_teachers
from arcticcodex.gpu.state import InstanceRecord, InstanceStore
from arcticcodex.teachers.entries import load_teachers
from arcticcodex.workspace import Workspace
from conftest import Acx

USER_FILE = """\
# My ArcticCodex workspace -- notes for the team.
[workspace]
# the data folder
data_dir = ".arcticcodex"  # keep it local

[signing]
key = "dataset"

# Embeddings: the small offline model for tests
[vault]
embedding_model = "hashing-64"  # fast

# a model on my own machine
[[teachers]]
name = "mine"
preset = "ollama"
model = "llama3"

# GPU settings: keep the bill small
[gpu]
poll_interval_s = 0.05  # fast polling
boot_timeout_s = 5

# end of file
"""
COMMENTS = [line for line in USER_FILE.splitlines() if line.lstrip().startswith("#") or " # " in line]
TEACHERS_LAST = """\
[workspace]
data_dir = ".arcticcodex"

[signing]
key = "dataset"  # made by init

[vault]
embedding_model = "hashing-64"

[gpu]
poll_interval_s = 0.05
# budgets go here

# --- teachers ---
[[teachers]]
name = "mine"
preset = "ollama"
model = "llama3"
# trailing note about mine

# the end
"""
BARE = '# only this comment\n[vault]\nembedding_model = "hashing-64"  # fast'  # no [gpu], no final newline
STARTS = [  # (file, its teachers, its [gpu]): the user's file before any command runs
    (
        USER_FILE,
        [{"name": "mine", "preset": "ollama", "model": "llama3"}],
        {"poll_interval_s": 0.05, "boot_timeout_s": 5},
    ),
    (TEACHERS_LAST, [{"name": "mine", "preset": "ollama", "model": "llama3"}], {"poll_interval_s": 0.05}),
    (BARE, [], None),
]


def comments_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#") or " # " in line]


# -- the defect, as a user met it -----------------------------------------------------------------------


def test_add_remove_the_last_then_add_again_leaves_a_working_workspace(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    root = workspace.root
    ollama = ("--preset", "ollama", "--model", "llama3")
    acx("-w", root, "teachers", "add", "a", *ollama)
    acx("-w", root, "teachers", "remove", "a")
    text = workspace.config.path.read_text(encoding="utf-8")
    assert "teachers" not in tomllib.loads(text), "the last teacher removed leaves no `teachers = []` behind"
    assert not re.search(r"^\s*teachers\s*=|\[\[teachers\]\]", text, re.MULTILINE), text
    added = acx("-w", root, "teachers", "add", "b", *ollama)
    assert "added teacher b" in added.output

    text = workspace.config.path.read_text(encoding="utf-8")
    assert tomllib.loads(text)["teachers"] == [{"name": "b", "preset": "ollama", "model": "llama3"}]
    assert "[[teachers]]" in text and "teachers = [" not in text
    listed = acx("-w", root, "teachers", "list")
    assert listed.output.startswith("b ")


def test_a_file_an_older_version_left_with_teachers_inline_is_mended_by_the_next_add(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    path = workspace.config.path
    path.write_text("teachers = []\n" + path.read_text(encoding="utf-8"), encoding="utf-8")  # as `remove` left it
    acx("-w", workspace.root, "teachers", "add", "b", "--preset", "ollama", "--model", "m")
    text = path.read_text(encoding="utf-8")
    assert "teachers = [" not in text and "[[teachers]]" in text
    assert [t.name for t in load_teachers(Config.load(path))[0]] == ["b"]


def test_a_refused_edit_leaves_the_file_byte_for_byte(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    path = workspace.config.path
    path.write_text(USER_FILE, encoding="utf-8")
    for args, message in (
        (
            ("teachers", "add", "mine", "--preset", "ollama", "--model", "m"),
            f"a teacher named 'mine' already exists in {path}",
        ),
        (("teachers", "remove", "ghost"), f"no teacher named 'ghost' in {path}"),
        (
            ("teachers", "add", "my teacher", "--preset", "ollama", "--model", "m"),
            "'my teacher' is not a valid teacher name",
        ),
    ):
        result = acx("-w", workspace.root, *args, code=1)
        assert message in result.stderr, result.stderr
        assert path.read_text(encoding="utf-8") == USER_FILE
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_the_file_keeps_its_mode(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    workspace.config.path.chmod(0o600)
    configfile.set_values(workspace.config.path, "gpu", {"budget_usd": 2.0})
    assert workspace.config.path.stat().st_mode & 0o777 == 0o600


def test_an_edit_that_would_not_validate_is_not_written(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    before = workspace.config.path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting 'idle' in \[gpu\]"):
        configfile.set_values(workspace.config.path, "gpu", {"idle": 5})
    with pytest.raises(ConfigError, match="needs a model"):
        configfile.add_teacher(workspace.config.path, {"name": "x", "preset": "vllm"})
    assert workspace.config.path.read_text(encoding="utf-8") == before


def test_commands_writing_at_once_lose_no_change(tmp_path: Path) -> None:
    """Two writers (here: threads, each with its own open file) never read the file the other is replacing."""
    workspace, _ = Workspace.init(tmp_path / "ws")
    path = workspace.config.path
    errors: list[BaseException] = []

    def add(prefix: str) -> None:
        try:
            for number in range(12):
                configfile.add_teacher(path, {"name": f"{prefix}{number}", "preset": "ollama", "model": "m"})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=add, args=(prefix,)) for prefix in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    names = {entry["name"] for entry in tomllib.loads(path.read_text(encoding="utf-8"))["teachers"]}
    assert names == {f"{prefix}{number}" for prefix in "abc" for number in range(12)}


def test_the_gpu_budget_goes_under_gpu_keeping_its_comments(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    workspace.config.path.write_text(USER_FILE, encoding="utf-8")
    workspace = Workspace.open(workspace.root)
    save_budget(workspace, GpuBudget(5, None))
    save_budget(workspace, GpuBudget(4, 1.5))
    text = workspace.config.path.read_text(encoding="utf-8")
    assert comments_of(text) == COMMENTS
    assert tomllib.loads(text)["gpu"] == {
        "poll_interval_s": 0.05,
        "boot_timeout_s": 5,
        "budget_usd": 4.0,
        "run_budget_usd": 1.5,
    }
    assert text.index("run_budget_usd") < text.index("# end of file")
    assert workspace.config.raw["gpu"]["budget_usd"] == 4.0, "the open workspace sees the new value"


# -- the property: any sequence of config-writing commands ------------------------------------------------


ACX = Acx()  # the shared command-line helper, for the state machine (Hypothesis gives it no fixtures)


class ConfigEdits(RuleBasedStateMachine):
    """Random sequences of every command that writes arcticcodex.toml, against a model of what it should hold."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.labels = 0

    @initialize(start=st.sampled_from(STARTS))
    def write_the_users_file(self, start: tuple[str, list[dict[str, Any]], dict[str, Any] | None]) -> None:
        text, teachers, gpu = start
        workspace, _ = Workspace.init(Path(self.folder.name) / "ws")
        workspace.config.path.write_text(text, encoding="utf-8")
        self.workspace = Workspace.open(workspace.root)
        self.comments = comments_of(text)
        self.teachers = [dict(teacher) for teacher in teachers]
        for teacher in self.teachers:  # hand-written: trusted once, as a user would
            ACX("-w", self.workspace.root, "teachers", "trust", teacher["name"])
        self.managed: set[str] = set()
        self.gpu = dict(gpu) if gpu is not None else None
        self.store = InstanceStore(self.workspace)

    def teardown(self) -> None:
        self.folder.cleanup()

    @property
    def path(self) -> Path:
        return self.workspace.config.path

    def unchanged(self, result: Result, before: str, message: str) -> None:
        assert message in result.stderr and str(self.path) in result.stderr, result.stderr
        assert self.path.read_text(encoding="utf-8") == before

    @rule(
        name=st.sampled_from(["a", "b", "mine", "ds"]),
        preset=st.sampled_from(["ollama", "vllm", "deepseek"]),
        model=st.sampled_from(["m1", "Qwen/Qwen2.5-7B-Instruct"]),
    )
    def teachers_add(self, name: str, preset: str, model: str) -> None:
        before = self.path.read_text(encoding="utf-8")
        taken = any(t["name"] == name for t in self.teachers)
        arguments = ("teachers", "add", name, "--preset", preset, "--model", model)
        result = ACX("-w", self.workspace.root, *arguments, code=1 if taken else 0)
        if taken:
            self.unchanged(result, before, f"a teacher named {name!r} already exists")
            return
        self.teachers.append({"name": name, "preset": preset, "model": model})

    @rule(name=st.sampled_from(["a", "b", "mine", "ds", "gpu", "pool"]))
    def teachers_remove(self, name: str) -> None:
        before = self.path.read_text(encoding="utf-8")
        there = any(t["name"] == name for t in self.teachers)
        result = ACX("-w", self.workspace.root, "teachers", "remove", name, code=0 if there else 1)
        if not there:
            self.unchanged(result, before, f"no teacher named {name!r}")
            return
        self.teachers = [t for t in self.teachers if t["name"] != name]
        self.managed.discard(name)

    @rule(ready=st.dictionaries(st.sampled_from(["gpu", "pool"]), st.integers(1, 3), max_size=2))
    def gpu_registration(self, ready: dict[str, int]) -> None:
        """The instances now ready (teacher name -> how many), as `gpu up`/`gpu down` leave them."""
        for record in self.store.live():
            self.store.update(record.label, status="destroyed")
        ports: dict[str, list[int]] = {}
        for name, count in sorted(ready.items()):
            for _ in range(count):
                self.labels += 1
                ports.setdefault(name, []).append(20000 + self.labels)
                self.store.insert(ready_record(self.labels, name, 20000 + self.labels))
        register_teachers(self.workspace, self.store)
        wanted: dict[str, dict[str, Any]] = {}
        for name, used in ports.items():
            entry: dict[str, Any] = {
                "name": name,
                "preset": "vllm",
                "model": "served",
                "base_url": f"http://127.0.0.1:{used[0]}/v1",
            }
            if used[1:]:
                entry["replicas"] = [f"http://127.0.0.1:{port}/v1" for port in used[1:]]
            entry["api_key_file"] = f".arcticcodex/gpu/keys/{name}.key"
            wanted[name] = entry
        kept = [wanted.get(t["name"], t) for t in self.teachers if t["name"] not in self.managed or t["name"] in wanted]
        self.teachers = kept + [entry for name, entry in sorted(wanted.items()) if name not in self.managed]
        self.managed = set(wanted)

    @rule(
        total=st.none() | st.floats(0, 100).map(lambda x: round(x, 2)),
        run=st.none() | st.floats(0, 10).map(lambda x: round(x, 2)),
    )
    def gpu_budget(self, total: float | None, run: float | None) -> None:
        save_budget(self.workspace, GpuBudget(total, run))
        values = {k: v for k, v in (("budget_usd", total), ("run_budget_usd", run)) if v is not None}
        if values or self.gpu is not None:
            self.gpu = {**(self.gpu or {}), **values}

    @invariant()
    def the_file_is_valid_keeps_its_comments_and_reads_back(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
        assert comments_of(text) == self.comments, text
        assert not re.search(r"^teachers\s*=", text, re.MULTILINE), "never an inline teacher list"
        assert "\n\n\n" not in text, "blank lines do not pile up"
        config = Config.load(self.path)
        configs, _ = load_teachers(config)
        assert [c.name for c in configs] == [t["name"] for t in self.teachers]
        assert raw.get("teachers", []) == self.teachers
        assert raw.get("gpu") == self.gpu
        assert raw["vault"] == {"embedding_model": "hashing-64"}
        assert all(c.trusted for c in configs), "entries the commands wrote are trusted"


def ready_record(number: int, teacher: str, port: int) -> InstanceRecord:
    """A ready instance serving ``teacher`` through a tunnel on ``port`` (created in ``number`` order)."""
    now = time.time()
    return InstanceRecord(
        label=f"test-{number}", instance_id=None, offer_id=1, machine_id=1, gpu_name="RTX 4090", num_gpus=1, model="m",
        served_model="served", status="ready", reason="", owner_pid=None, run="default", teacher=teacher,
        running_rate=0.3, storage_rate=0.01, rate=0.3, rate_since=now, accrued_usd=0.0, created_at=number,
        ready_at=now, destroyed_at=None, ttl_s=None, idle_s=None, last_used_at=now, requests_seen=None,
        local_port=port, tunnel_pid=None,
    )  # fmt: skip


def test_any_sequence_of_config_writing_commands_keeps_the_file_valid_and_commented() -> None:
    examples = 100 if os.environ.get("CI") else 25  # CI runs the `ci` Hypothesis profile: more examples
    run_state_machine_as_test(ConfigEdits, settings=settings(max_examples=examples, stateful_step_count=10))


def test_the_property_holds_for_a_file_that_ends_without_a_newline(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    workspace.config.path.write_text(USER_FILE.rstrip("\n"), encoding="utf-8")
    for name in ("a", "b"):
        acx("-w", workspace.root, "teachers", "add", name, "--preset", "ollama", "--model", "m")
    for name in ("mine", "a", "b"):
        acx("-w", workspace.root, "teachers", "remove", name)
    text = workspace.config.path.read_text(encoding="utf-8")
    assert comments_of(text) == COMMENTS and "teachers" not in tomllib.loads(text)
    assert os.path.getsize(workspace.config.path) > 0
