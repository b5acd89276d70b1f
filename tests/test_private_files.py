"""Private by default: nothing ArcticCodex writes in a workspace's data folder is open to other users.

The data folder holds the user's documents (the vault), the teacher replies, the signing keys and the GPU
keys.  Each test runs real commands under a umask that lets everyone read everything (0o000), then walks the
data folder and looks at every file's and folder's mode: folders 0700, files without any group or other bits.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from arcticcodex.gpu import OfferQuery, VastInstanceManager, VllmProvisioner, VllmSpec
from arcticcodex.vault import Vault
from arcticcodex.workspace import Workspace
from conftest import GPU_MODEL, VAST_KEY, VLLM_KEY, Acx
from fakes.vast_server import FakeVastServer

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "corpus"
# The public halves of signing keys: a public key and its metadata (name, algorithm, key id) are meant to be
# handed out (``keys export-public``), so the key store writes them 0644; they sit in keys/ (0700) all the same.
PUBLIC_BY_DESIGN = {("keys", ".pub"), ("keys", ".json")}


@contextlib.contextmanager
def everyone_may_read() -> Iterator[None]:
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


def open_to_others(data_dir: Path) -> list[str]:
    """Every path under ``data_dir`` (itself included) that a group or other user could use, with its mode."""
    found = []
    for path in [data_dir, *sorted(data_dir.rglob("*"))]:
        status = path.lstat()
        mode = stat.S_IMODE(status.st_mode)
        relative = path.relative_to(data_dir)
        if stat.S_ISDIR(status.st_mode):
            if mode != 0o700:
                found.append(f"{relative}/ {mode:04o}")
        elif mode & 0o077 and (relative.parent.name, path.suffix) not in PUBLIC_BY_DESIGN:
            found.append(f"{relative} {mode:04o}")
    return found


def test_init_import_and_distill_leave_nothing_open_to_others(tmp_path: Path, acx: Acx) -> None:
    with everyone_may_read():
        acx("-w", tmp_path, "init", "ws")
        root = tmp_path / "ws"
        config = root / "arcticcodex.toml"
        config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')  # init made the key
        acx("-w", root, "vault", "import", CORPUS)
        distilled = acx("-w", root, "distill", "--from-vault", "--questions-per-chunk", "1", "--out", tmp_path / "out")
        assert "accepted" in distilled.output
        workspace = Workspace.open(root)
        with Vault.open(workspace) as vault:  # a connection is open: the -wal and -shm files are there too
            assert vault.stats()["documents"] > 0
            names = {path.name for path in workspace.data_dir.iterdir()}
            assert {"arcticcodex.db", "arcticcodex.db-wal", "arcticcodex.db-shm"} <= names
            assert open_to_others(workspace.data_dir) == []
    assert open_to_others(workspace.data_dir) == []
    assert sorted(path.suffix for path in workspace.keys_dir.iterdir()) == [".json", ".key", ".pub"]
    assert stat.S_IMODE((workspace.keys_dir / "dataset.key").stat().st_mode) == 0o600


def test_renting_a_gpu_leaves_nothing_open_to_others(tmp_path: Path, vast: FakeVastServer) -> None:
    with everyone_may_read():
        workspace, _ = Workspace.init(tmp_path / "ws")
        keys = workspace.data_dir / "gpu" / "keys"
        keys.mkdir(mode=0o700, parents=True)
        (workspace.data_dir / "gpu").chmod(0o700)
        descriptor = os.open(keys / "gpu.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(VLLM_KEY + "\n")  # the key the fake vLLM expects, written as vllm_key() writes one
        provisioner = VllmProvisioner(
            VAST_KEY, base_url=vast.url, poll_interval=0.02, boot_deadline=3.0, vllm_deadline=3.0
        )
        with VastInstanceManager(workspace, provisioner, poll_interval=0.02) as manager:
            record = manager.up(manager.search(OfferQuery(min_vram_gb=16))[0], VllmSpec(model=GPU_MODEL))
            assert record.status == "ready"
            manager.cleanup_all()
    gpu = workspace.data_dir / "gpu"
    written = {str(path.relative_to(gpu)) for path in gpu.rglob("*") if path.is_file()}
    assert {"lifecycle.jsonl", "ssh/id_ed25519", "ssh/id_ed25519.pub", "keys/gpu.key"} <= written
    assert any(name.startswith("ssh/known_hosts-") and name.endswith(".ssh.log") for name in written), written
    assert any(name.startswith("ssh/known_hosts-") and "." not in name for name in written), "ssh pinned a key"
    assert open_to_others(workspace.data_dir) == []
