"""Workspaces: ``arcticcodex init``, discovery, ``arcticcodex.toml`` and the database."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from arcticcodex.config import CONFIG_NAME, CONFIG_TEMPLATE, WORKSPACE_ENV
from arcticcodex.errors import ConfigError, StoreError, UserError, WorkspaceNotFoundError
from arcticcodex.workspace import DATABASE_NAME, Workspace
from conftest import Acx


def assert_layout(root: Path, data_dir: str = ".arcticcodex") -> None:
    data = root / data_dir
    assert (root / CONFIG_NAME).is_file()
    assert (data / DATABASE_NAME).is_file()
    assert (data / "keys").is_dir()
    assert stat.S_IMODE((data / "keys").stat().st_mode) == 0o700
    assert (data / "runs").is_dir()


def keys_dir_used(acx: Acx, *args: str) -> Path:
    """The keys folder of the workspace a command discovered (``keys list`` names it)."""
    out = acx(*args, "keys", "list").stdout
    prefix = "No keys in "
    assert out.startswith(prefix), out
    return Path(out[len(prefix) :].split(";")[0])


# --- init ----------------------------------------------------------------------------------------


def test_init_directory_creates_config_and_data_folder(tmp_path: Path, acx: Acx) -> None:
    result = acx("init", "proj")
    root = tmp_path / "proj"
    assert_layout(root)
    assert (root / CONFIG_NAME).read_text(encoding="utf-8") == CONFIG_TEMPLATE.format(
        data_dir=json.dumps(".arcticcodex")
    )
    assert f"Created workspace {root}" in result.stdout
    assert str(root / ".arcticcodex" / DATABASE_NAME) in result.stdout
    assert sorted(path.name for path in root.iterdir()) == [".arcticcodex", ".gitignore", CONFIG_NAME]  # no temp files


def test_init_defaults_to_the_current_folder_or_the_workspace_option(tmp_path: Path, acx: Acx) -> None:
    acx("init")
    assert_layout(tmp_path)
    acx("-w", str(tmp_path / "elsewhere"), "init")
    assert_layout(tmp_path / "elsewhere")
    acx("--workspace", str(tmp_path / "a" / "b"), "init")
    assert_layout(tmp_path / "a" / "b")


def test_init_custom_data_dir(tmp_path: Path, acx: Acx) -> None:
    acx("init", "proj", "--data-dir", "state")
    assert_layout(tmp_path / "proj", "state")
    workspace = Workspace.open(tmp_path / "proj")
    assert workspace.data_dir == tmp_path / "proj" / "state"
    assert 'data_dir = "state"' in (tmp_path / "proj" / CONFIG_NAME).read_text(encoding="utf-8")


def test_second_init_changes_no_configuration(tmp_path: Path, acx: Acx) -> None:
    acx("init", "proj")
    config = tmp_path / "proj" / CONFIG_NAME
    edited = config.read_text(encoding="utf-8").replace("data_dir =", "# the data folder\ndata_dir =")
    config.write_text(edited + "\n# my own note\n", encoding="utf-8")
    before = Workspace.open(tmp_path / "proj").meta()
    (tmp_path / "proj" / ".arcticcodex" / "runs").rmdir()
    (tmp_path / "proj" / ".arcticcodex" / "keys").chmod(0o755)

    result = acx("init", "proj", "--data-dir", "other")
    assert "already exists" in result.stdout
    assert "Created" not in result.stdout
    assert config.read_text(encoding="utf-8") == edited + "\n# my own note\n"
    assert not (tmp_path / "proj" / "other").exists()
    assert_layout(tmp_path / "proj")  # the layout is completed and keys/ made private again
    workspace, created = Workspace.init(tmp_path / "proj")
    assert created is False
    assert workspace.config.signing_key == "dataset"
    assert workspace.meta() == before  # the same database, not a fresh one


def test_workspace_init_api(tmp_path: Path) -> None:
    workspace, created = Workspace.init(tmp_path / "new" / "nested")
    assert created is True
    assert workspace.root == tmp_path / "new" / "nested"
    assert workspace.database_path == workspace.root / ".arcticcodex" / DATABASE_NAME
    assert workspace.keys_dir == workspace.data_dir / "keys"
    assert workspace.runs_dir == workspace.data_dir / "runs"
    assert_layout(workspace.root)
    assert repr(workspace) == f"Workspace({str(workspace.root)!r})"


# --- init: the signing key and .gitignore (issue 12) ------------------------------------------------------


def test_init_makes_a_trusted_signing_key_so_init_then_distill_works(tmp_path: Path, acx: Acx) -> None:
    result = acx("init", "proj")
    root = tmp_path / "proj"
    (info,) = json.loads(acx("-w", str(root), "keys", "list", "--json").stdout)
    assert (info["name"], info["algorithm"]) == ("dataset", "ed25519")
    assert f"signing key  dataset: new ed25519 key, key id {info['key_id'][:16]}…, trusted" in result.stdout
    (trusted,) = json.loads(acx("keys", "trusted", "--json").stdout)
    assert trusted["key_id"] == info["key_id"] and trusted["origin"] == f"created by `init` in {root}"
    assert Workspace.open(root).config.signing_key == "dataset"

    config = root / CONFIG_NAME
    config.write_text(config.read_text(encoding="utf-8") + '\n[vault]\nembedding_model = "hashing-64"\n')
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"instruction": "What do otters eat?", "evidence": "Otters eat fish."}) + "\n")
    out = tmp_path / "out"
    acx("-w", str(root), "distill", "--prompts", str(prompts), "--out", str(out))
    verified = acx("dataset", "verify", str(out))
    assert "OK: intact, signer trusted" in verified.stdout


def test_init_keeps_the_data_folder_out_of_git(tmp_path: Path, acx: Acx) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    acx("init", "proj")
    root = tmp_path / "proj"
    subprocess.run([git, "init", "-q"], cwd=root, check=True)
    subprocess.run([git, "add", "-A"], cwd=root, check=True)
    staged = subprocess.run([git, "ls-files"], cwd=root, check=True, capture_output=True, text=True).stdout
    assert staged.split() == [".gitignore", CONFIG_NAME], "no key, database or run is staged"
    assert (root / ".arcticcodex" / "keys" / "dataset.key").is_file()
    assert (root / ".gitignore").read_text() == (
        "# ArcticCodex: the database, signing keys and runs stay out of git\n/.arcticcodex/\n"
    )


def test_init_appends_to_an_existing_gitignore_once_and_never_rewrites_it(tmp_path: Path, acx: Acx) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    ignore = root / ".gitignore"
    ignore.write_text("node_modules/\n*.log", encoding="utf-8")  # the user's, without a final newline
    ignore.chmod(0o600)
    result = acx("init", str(root), "--data-dir", "state")
    assert "  .gitignore   appended /state/ (keeps it out of git)" in result.stdout
    expected = "node_modules/\n*.log\n\n# ArcticCodex: the database, signing keys and runs stay out of git\n/state/\n"
    assert ignore.read_text(encoding="utf-8") == expected
    assert stat.S_IMODE(ignore.stat().st_mode) == 0o600
    again = acx("init", str(root))
    assert "  .gitignore   already keeps /state/ out of git" in again.stdout
    assert ignore.read_text(encoding="utf-8") == expected


def test_init_leaves_a_gitignore_that_already_names_the_data_folder(tmp_path: Path, acx: Acx) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / ".gitignore").write_text(".arcticcodex\n", encoding="utf-8")
    assert "already keeps /.arcticcodex/ out of git" in acx("init", str(root)).stdout
    assert (root / ".gitignore").read_text(encoding="utf-8") == ".arcticcodex\n"


def test_init_leaves_a_gitignore_link_alone_and_says_what_to_add(tmp_path: Path, acx: Acx) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    elsewhere = tmp_path / "shared-ignore"
    elsewhere.write_text("*.pyc\n", encoding="utf-8")
    (root / ".gitignore").symlink_to(elsewhere)
    result = acx("init", str(root))
    assert "is a symbolic link; it is not followed" in result.stdout
    assert "add the line /.arcticcodex/ to it yourself" in result.stdout
    assert elsewhere.read_text(encoding="utf-8") == "*.pyc\n" and (root / ".gitignore").is_symlink()


def test_a_second_init_keeps_the_key_and_its_trust(tmp_path: Path, acx: Acx) -> None:
    acx("init", "proj")
    root = tmp_path / "proj"
    before = json.loads(acx("-w", str(root), "keys", "list", "--json").stdout)
    result = acx("init", "proj")
    assert "  signing key  dataset (already there)" in result.stdout
    assert json.loads(acx("-w", str(root), "keys", "list", "--json").stdout) == before
    assert len(json.loads(acx("keys", "trusted", "--json").stdout)) == 1


def test_init_on_an_older_workspace_makes_the_key_its_signing_table_names(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "proj")  # the library makes no key: as an older `init` left it
    config = workspace.config.path
    config.write_text(config.read_text(encoding="utf-8").replace('key = "dataset"', 'key = "release"'))
    assert "signing key  release: new ed25519 key" in acx("init", str(workspace.root)).stdout
    names = [key["name"] for key in json.loads(acx("-w", str(workspace.root), "keys", "list", "--json").stdout)]
    assert names == ["release"]


def test_init_takes_the_key_back_when_its_trust_cannot_be_recorded(tmp_path: Path, acx: Acx) -> None:
    user_config = Path(os.environ["ARCTICCODEX_CONFIG_DIR"])
    user_config.mkdir(parents=True, exist_ok=True)
    (user_config / "trusted-keys.json").write_text("{not json")
    result = acx("init", "proj", code=1)
    assert "the trusted-keys list" in result.stderr and "is not valid JSON" in result.stderr
    assert list((tmp_path / "proj" / ".arcticcodex" / "keys").iterdir()) == [], "no key nobody trusts is left"


def test_meta_has_an_id_and_creation_time(workspace: Workspace) -> None:
    meta = workspace.meta()
    assert uuid.UUID(meta["workspace_id"]).version == 4
    created = datetime.fromisoformat(meta["created_at"])
    assert created.tzinfo is not None
    assert workspace.meta() == meta  # stable across connections


def test_data_dir_is_relative_to_the_config_not_the_cwd(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "away").mkdir()
    monkeypatch.chdir(tmp_path / "away")
    assert Workspace.open(workspace.root).data_dir == workspace.root / ".arcticcodex"


# --- discovery -----------------------------------------------------------------------------------


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acx: Acx) -> None:
    here, from_env, from_option = (Workspace.init(tmp_path / name)[0] for name in ("here", "env", "opt"))
    nested = here.root / "src" / "deeply" / "nested"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)

    # the current directory and its parents
    assert (
        keys_dir_used(
            acx,
        )
        == here.keys_dir
    )
    assert Workspace.discover().root == here.root

    # ARCTICCODEX_WORKSPACE beats the current directory
    monkeypatch.setenv(WORKSPACE_ENV, str(from_env.root))
    assert (
        keys_dir_used(
            acx,
        )
        == from_env.keys_dir
    )
    assert Workspace.discover().root == from_env.root

    # --workspace / -w beats both
    assert keys_dir_used(acx, "--workspace", str(from_option.root)) == from_option.keys_dir
    assert keys_dir_used(acx, "-w", str(from_option.root)) == from_option.keys_dir
    assert Workspace.discover(from_option.root).root == from_option.root


def test_discovery_with_explicit_cwd_and_environ(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    (workspace.root / "sub").mkdir()
    assert Workspace.discover(cwd=workspace.root / "sub", environ={}).root == workspace.root
    other, _ = Workspace.init(tmp_path / "other")
    found = Workspace.discover(cwd=workspace.root / "sub", environ={WORKSPACE_ENV: str(other.root)})
    assert found.root == other.root


def test_the_option_and_environment_must_point_at_a_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acx: Acx
) -> None:
    Workspace.init(tmp_path)  # a workspace in the cwd is not a fallback for a wrong pointer
    empty = tmp_path / "empty"
    empty.mkdir()

    result = acx("-w", str(empty), "keys", "list", code=1)
    assert f"--workspace points at {empty}, which has no {CONFIG_NAME}" in result.stderr
    assert f"arcticcodex init {empty}" in result.stderr

    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "missing"))
    result = acx("keys", "list", code=1)
    assert f"{WORKSPACE_ENV} points at {tmp_path / 'missing'}" in result.stderr
    with pytest.raises(WorkspaceNotFoundError, match=WORKSPACE_ENV):
        Workspace.discover()


def test_no_workspace_found(tmp_path: Path, acx: Acx) -> None:
    with pytest.raises(WorkspaceNotFoundError) as caught:
        Workspace.discover()
    message = str(caught.value)
    assert isinstance(caught.value, UserError)
    for needle in (str(tmp_path), "arcticcodex init", "--workspace", WORKSPACE_ENV):
        assert needle in message

    result = acx("keys", "list", code=1)
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"


# --- arcticcodex.toml ----------------------------------------------------------------------------


def write_config(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


def test_invalid_toml_names_the_file(tmp_path: Path, acx: Acx) -> None:
    path = write_config(tmp_path / "ws", "[workspace\ndata_dir = ")
    with pytest.raises(ConfigError) as caught:
        Workspace.open(tmp_path / "ws")
    assert f"{path} is not valid TOML" in str(caught.value)

    result = acx("-w", str(tmp_path / "ws"), "keys", "list", code=1)
    assert f"Error: {path} is not valid TOML" in result.stderr


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[workspace]\ndata_dir = ""\n', 2, "data_dir must be a non-empty string"),
        ("[workspace]\ndata_dir = 5\n", 2, "data_dir must be a non-empty string"),
        ('[workspace]\ndata_dir = "  "\n', 2, "data_dir must be a non-empty string"),
        ('workspace = "flat"\n', 1, "[workspace] must be a table"),
        ("[signing]\nkey = 3\n", 2, "[signing] key must be the name of a key"),
        ('signing = ["a"]\n', 1, "[signing] must be a table"),
    ],
)
def test_bad_config_values_name_the_file(tmp_path: Path, text: str, line: int, message: str, acx: Acx) -> None:
    path = write_config(tmp_path / "ws", text)
    with pytest.raises(ConfigError) as caught:
        Workspace.discover(tmp_path / "ws")
    assert str(caught.value).startswith(f"{path}:{line}: ")  # the file and the line of the setting
    assert message in str(caught.value)
    result = acx("init", str(tmp_path / "ws"), code=1)
    assert message in result.stderr


def test_config_defaults(tmp_path: Path) -> None:
    write_config(tmp_path / "ws", "")
    workspace = Workspace.open(tmp_path / "ws")
    assert workspace.data_dir == tmp_path / "ws" / ".arcticcodex"
    assert workspace.config.signing_key is None


def test_open_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="arcticcodex init"):
        Workspace.open(tmp_path)


# --- the database --------------------------------------------------------------------------------


def test_corrupt_database_gives_store_error_with_a_fix(workspace: Workspace, acx: Acx) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{workspace.database_path}{suffix}").unlink(missing_ok=True)
    workspace.database_path.write_bytes(b"this is not an SQLite database\x00\xff" * 200)
    with pytest.raises(StoreError) as caught:
        workspace.connect()
    message = str(caught.value)
    assert str(workspace.database_path) in message
    assert "not a usable SQLite database" in message
    assert "move it aside" in message and "arcticcodex init" in message
    with pytest.raises(StoreError):
        workspace.meta()

    result = acx("init", str(workspace.root), code=1)
    assert "not a usable SQLite database" in result.stderr


def test_connect_is_autocommit_wal_with_foreign_keys(workspace: Workspace) -> None:
    conn = workspace.connect()
    try:
        assert conn.isolation_level is None
        assert not conn.in_transaction
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        rows = conn.execute("SELECT migration_set, number FROM schema_migrations").fetchall()
        assert ("workspace", 1) in rows
    finally:
        conn.close()


# --- private by default --------------------------------------------------------------------------


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run with a permissive umask, as on a machine that shares files by default."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o000], ids=oct)
def test_the_data_folder_and_database_are_private_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        workspace, _ = Workspace.init(tmp_path / "proj")
        conn = workspace.connect()  # WAL: the -wal and -shm files exist while a connection is open
        try:
            conn.execute("INSERT INTO workspace_meta (key, value) VALUES ('note', 'private')")
            wal, shm = (Path(f"{workspace.database_path}{suffix}") for suffix in ("-wal", "-shm"))
            assert wal.is_file() and shm.is_file()
            assert (mode(workspace.database_path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        finally:
            conn.close()
    for folder in (workspace.data_dir, workspace.keys_dir, workspace.runs_dir):
        assert mode(folder) == 0o700, folder
    assert mode(workspace.database_path) == 0o600


def test_a_workspace_others_can_read_is_tightened_quietly_when_opened(tmp_path: Path, acx: Acx) -> None:
    """A workspace from before this rule (or made by hand): opening it takes group and other access away."""
    workspace, _ = Workspace.init(tmp_path / "proj")
    loose = [workspace.data_dir, workspace.runs_dir, workspace.keys_dir]
    for folder in loose:
        folder.chmod(0o755)
    journal = Path(f"{workspace.database_path}-journal")  # an empty one, as a crash in rollback mode leaves
    journal.touch()
    for path in (workspace.database_path, journal):
        path.chmod(0o644)
    result = acx("-w", str(workspace.root), "review", "list")  # any command that opens the database
    assert result.stdout.lower() == "no pending proposals\n" and result.stderr == "", (
        "nothing to say, nothing to decide"
    )
    for folder in loose:
        assert mode(folder) == 0o700, folder
    assert mode(workspace.database_path) == 0o600 and mode(journal) == 0o600
