"""``arcticcodex keys``: new, list, show, export-public — and no secret in any output."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from click.testing import Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from arcticcodex.errors import KeyFileError
from arcticcodex.provenance import KeyStore
from arcticcodex.workspace import Workspace
from conftest import Acx


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    workspace, _ = Workspace.init(tmp_path / "ws")
    return workspace


def run(acx: Acx, workspace: Workspace, *args: str | Path, code: int = 0) -> Result:
    """``acx -w WS keys ARGS…``."""
    return acx("-w", workspace.root, "keys", *args, code=code)


def secrets_of(workspace: Workspace, name: str) -> list[str]:
    """Every textual form of a key's secret that must never be printed."""
    data = (workspace.keys_dir / f"{name}.key").read_bytes()
    lines = data.decode("ascii").strip().splitlines()
    body = "".join(lines[1:-1])
    forms = [body, *lines[1:-1]]
    if b"ARCTICCODEX HMAC" in data:
        raw = base64.b64decode(body)
    else:
        key = serialization.load_pem_private_key(data, password=None)
        assert isinstance(key, Ed25519PrivateKey)
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
    forms += [raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    return [form for form in forms if form]


def test_new_prints_metadata_and_paths(workspace: Workspace, acx: Acx) -> None:
    result = run(acx, workspace, "new", "dataset")
    info = KeyStore(workspace.keys_dir).info("dataset")
    assert "Created ed25519 key 'dataset'" in result.output
    assert info.key_id in result.output
    assert str(workspace.keys_dir / "dataset.key") in result.output
    assert str(workspace.keys_dir / "dataset.pub") in result.output
    assert stat.S_IMODE((workspace.keys_dir / "dataset.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(workspace.keys_dir.stat().st_mode) == 0o700


def test_new_hmac(workspace: Workspace, acx: Acx) -> None:
    result = run(acx, workspace, "new", "shared", "--algorithm", "hmac-sha256")
    assert "Created hmac-sha256 key 'shared'" in result.output
    assert "public key" not in result.output
    assert KeyStore(workspace.keys_dir).info("shared").algorithm == "hmac-sha256"


def test_new_refuses_duplicates_and_bad_names(workspace: Workspace, acx: Acx) -> None:
    run(acx, workspace, "new", "dataset")
    before = (workspace.keys_dir / "dataset.key").read_bytes()
    result = run(acx, workspace, "new", "dataset", code=1)
    assert "Error: a key named 'dataset' already exists" in result.output
    assert (workspace.keys_dir / "dataset.key").read_bytes() == before
    result = run(acx, workspace, "new", "../escape", code=1)
    assert "is not a valid key name" in result.output
    result = run(acx, workspace, "new", "x", "--algorithm", "rsa", code=2)  # a usage error, from click
    assert "'rsa' is not one of 'ed25519', 'hmac-sha256'" in result.stderr
    assert not (workspace.keys_dir / "x.key").exists()


def test_list_table_and_json(workspace: Workspace, acx: Acx) -> None:
    assert "No keys in" in run(acx, workspace, "list").output
    assert json.loads(run(acx, workspace, "list", "--json").output) == []
    run(acx, workspace, "new", "zeta")
    run(acx, workspace, "new", "alpha", "-a", "hmac-sha256")
    store = KeyStore(workspace.keys_dir)
    table = run(acx, workspace, "list").output.splitlines()
    assert table[0].split() == ["NAME", "ALGORITHM", "KEY", "ID", "CREATED"]
    assert table[1].split()[:3] == ["alpha", "hmac-sha256", store.info("alpha").key_id]
    assert table[2].split()[:3] == ["zeta", "ed25519", store.info("zeta").key_id]
    listed = json.loads(run(acx, workspace, "list", "--json").output)
    assert listed == [store.info("alpha").to_json(), store.info("zeta").to_json()]
    assert set(listed[0]) == {"name", "algorithm", "key_id", "created_at"}


def test_show_ed25519_includes_the_public_pem(workspace: Workspace, acx: Acx) -> None:
    run(acx, workspace, "new", "dataset")
    info = KeyStore(workspace.keys_dir).info("dataset")
    text = run(acx, workspace, "show", "dataset").output
    assert info.key_id in text and "-----BEGIN PUBLIC KEY-----" in text
    shown = json.loads(run(acx, workspace, "show", info.key_id[:10], "--json").output)
    assert shown["name"] == "dataset" and shown["key_id"] == info.key_id
    assert shown["public_key_pem"] == (workspace.keys_dir / "dataset.pub").read_text()


def test_show_hmac_has_no_public_key(workspace: Workspace, acx: Acx) -> None:
    run(acx, workspace, "new", "shared", "-a", "hmac-sha256")
    assert "public key   none" in run(acx, workspace, "show", "shared").output
    assert json.loads(run(acx, workspace, "show", "shared", "--json").output)["public_key_pem"] is None


def test_show_missing_key_says_how_to_create_one(workspace: Workspace, acx: Acx) -> None:
    result = run(acx, workspace, "show", "nope", code=1)
    assert "no key named 'nope'" in result.output and "arcticcodex keys new nope" in result.output


def test_export_public_loads_with_cryptography_and_matches_the_key_id(
    workspace: Workspace, tmp_path: Path, acx: Acx
) -> None:
    run(acx, workspace, "new", "dataset")
    key_id = KeyStore(workspace.keys_dir).info("dataset").key_id
    pem = run(acx, workspace, "export-public", "dataset").stdout.encode()
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert hashlib.sha256(raw).hexdigest() == key_id

    target = tmp_path / "dataset.pub"
    result = run(acx, workspace, "export-public", "dataset", "-o", target)
    assert target.read_bytes() == pem
    assert result.stdout == ""
    assert key_id in result.stderr


def test_export_public_refuses_hmac(workspace: Workspace, acx: Acx) -> None:
    run(acx, workspace, "new", "shared", "-a", "hmac-sha256")
    result = run(acx, workspace, "export-public", "shared", code=1)
    assert "HMAC keys have no public part; share the secret out of band" in result.output


def test_no_secret_appears_in_any_output(workspace: Workspace, tmp_path: Path, acx: Acx) -> None:
    outputs = [
        run(acx, workspace, "new", "dataset").output,
        run(acx, workspace, "new", "shared", "-a", "hmac-sha256").output,
        run(acx, workspace, "list").output,
        run(acx, workspace, "list", "--json").output,
        run(acx, workspace, "new", "shared", code=1).output,
    ]
    for name in ("dataset", "shared"):
        outputs += [
            run(acx, workspace, "show", name).output,
            run(acx, workspace, "show", name, "--json").output,
        ]
    outputs.append(run(acx, workspace, "export-public", "dataset").output)
    outputs.append(run(acx, workspace, "export-public", "shared", code=1).output)
    outputs.append(run(acx, workspace, "export-public", "dataset", "-o", tmp_path / "p.pem").output)
    forbidden = secrets_of(workspace, "dataset") + secrets_of(workspace, "shared")
    # the library's errors for an unsafe or corrupted key file name the file, never what it holds
    store = KeyStore(workspace.keys_dir)
    for name in ("dataset", "shared"):
        key_file = store.private_key_path(name)
        key_file.chmod(0o644)
        with pytest.raises(KeyFileError) as unsafe:
            store.signer(name)
        key_file.chmod(0o600)
        key_file.write_bytes(key_file.read_bytes()[:-30])
        with pytest.raises(KeyFileError) as corrupted:
            store.signer(name)
        outputs += [str(unsafe.value), str(corrupted.value)]
    assert len(outputs) == 16
    for output in outputs:
        for secret in forbidden:
            assert secret not in output
