"""KeyStore: key files on disk, their modes, metadata, look-up and the refusals that protect secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from arcticcodex.errors import ConfigError, KeyFileError
from arcticcodex.provenance import Ed25519Signer, Ed25519Verifier, HmacSigner, KeyInfo, KeyStore
from arcticcodex.workspace import Workspace

MESSAGE = b"signed bytes"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    workspace, _ = Workspace.init(tmp_path / "ws")
    return workspace


@pytest.fixture
def store(workspace: Workspace) -> KeyStore:
    return KeyStore(workspace.keys_dir)


def test_create_ed25519_writes_three_files_with_safe_modes(store: KeyStore) -> None:
    info = store.create("dataset")
    assert mode_of(store.keys_dir) == 0o700
    assert mode_of(store.private_key_path("dataset")) == 0o600
    assert mode_of(store.public_key_path("dataset")) == 0o644
    assert mode_of(store.metadata_path("dataset")) == 0o644
    assert sorted(path.name for path in store.keys_dir.iterdir()) == [
        "dataset.json",
        "dataset.key",
        "dataset.pub",
    ]

    assert info.name == "dataset" and info.algorithm == "ed25519"
    assert info.public_key_path == store.public_key_path("dataset")
    datetime.strptime(info.created_at, "%Y-%m-%dT%H:%M:%SZ")  # ISO-8601 UTC

    public = serialization.load_pem_public_key(store.public_key_path("dataset").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert info.key_id == hashlib.sha256(raw).hexdigest()

    metadata = json.loads(store.metadata_path("dataset").read_text())
    assert metadata == {
        "name": "dataset",
        "algorithm": "ed25519",
        "key_id": info.key_id,
        "created_at": info.created_at,
    }
    assert b"BEGIN PRIVATE KEY" in store.private_key_path("dataset").read_bytes()


def test_private_key_is_0600_even_with_a_permissive_umask(store: KeyStore) -> None:
    previous = os.umask(0)
    try:
        store.create("loose")
    finally:
        os.umask(previous)
    assert mode_of(store.private_key_path("loose")) == 0o600


def test_no_temporary_files_are_left_behind(store: KeyStore) -> None:
    store.create("a")
    store.create("b", "hmac-sha256")
    assert not [path for path in store.keys_dir.iterdir() if path.name.startswith(".")]


def test_create_hmac_writes_a_pem_style_block_and_no_public_file(store: KeyStore) -> None:
    info = store.create("shared", algorithm="hmac-sha256")
    assert info.public_key_path is None
    assert not store.public_key_path("shared").exists()
    text = store.private_key_path("shared").read_text()
    lines = text.strip().splitlines()
    assert lines[0] == "-----BEGIN ARCTICCODEX HMAC-SHA256 KEY-----"
    assert lines[-1] == "-----END ARCTICCODEX HMAC-SHA256 KEY-----"
    secret = base64.b64decode("".join(lines[1:-1]))
    assert len(secret) == 32
    signer = store.signer("shared")
    assert isinstance(signer, HmacSigner)
    assert signer.key_id == info.key_id == HmacSigner(secret).key_id
    assert mode_of(store.private_key_path("shared")) == 0o600


def test_signer_and_verifier_round_trip(store: KeyStore) -> None:
    store.create("dataset")
    store.create("shared", "hmac-sha256")
    signer = store.signer("dataset")
    assert isinstance(signer, Ed25519Signer)
    verifier = store.verifier("dataset")
    assert isinstance(verifier, Ed25519Verifier)
    assert verifier.verify(MESSAGE, signer.sign(MESSAGE))
    assert store.verifier("shared").verify(MESSAGE, store.signer("shared").sign(MESSAGE))
    assert not store.verifier("shared").verify(MESSAGE, signer.sign(MESSAGE))


def test_duplicate_name_is_refused_and_the_key_is_kept(store: KeyStore) -> None:
    first = store.create("dataset")
    before = store.private_key_path("dataset").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        store.create("dataset")
    with pytest.raises(KeyFileError, match="already exists"):
        store.create("dataset", "hmac-sha256")
    assert store.private_key_path("dataset").read_bytes() == before
    assert store.info("dataset") == first


@pytest.mark.parametrize("name", ["", "-dash", ".hidden", "with space", "a/b", "x" * 65, "é", "name\n"])
def test_invalid_names_are_refused_with_the_rule(store: KeyStore, name: str) -> None:
    with pytest.raises(ConfigError, match="letters, digits"):
        store.create(name)


def test_unknown_algorithm_is_refused(store: KeyStore) -> None:
    with pytest.raises(ConfigError, match="ed25519, hmac-sha256"):
        store.create("dataset", "rsa")


def test_list_is_sorted_and_reads_metadata_only(store: KeyStore) -> None:
    assert store.list() == []
    for name in ("zeta", "alpha", "Mid.key-1"):
        store.create(name)
    store.private_key_path("alpha").chmod(0o644)  # listing must not open private keys
    assert [info.name for info in store.list()] == ["Mid.key-1", "alpha", "zeta"]
    assert all(isinstance(info, KeyInfo) for info in store.list())


def test_list_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert KeyStore(tmp_path / "nowhere").list() == []


def test_info_by_key_id_prefix(store: KeyStore) -> None:
    info = store.create("dataset")
    assert store.info(info.key_id) == info
    assert store.info(info.key_id[:8]) == info
    assert isinstance(store.signer(info.key_id[:12]), Ed25519Signer)
    with pytest.raises(KeyFileError):
        store.info(info.key_id[:7])  # too short to count as a prefix


def test_ambiguous_prefix_lists_the_candidates(store: KeyStore) -> None:
    first, second = store.create("first"), store.create("second")
    prefix = first.key_id[:8]
    # two real keys sharing 8 hex digits would take ~2**32 tries; give the second one a shared prefix
    metadata = json.loads(store.metadata_path("second").read_text())
    metadata["key_id"] = prefix + second.key_id[8:]
    store.metadata_path("second").write_text(json.dumps(metadata))
    with pytest.raises(KeyFileError, match=r"matches 2 keys: first .*, second "):
        store.info(prefix)
    assert store.info(first.key_id) == first


def test_missing_key_lists_what_exists_and_how_to_create(store: KeyStore) -> None:
    with pytest.raises(KeyFileError, match=r"keys there: none yet; create one with `arcticcodex keys new dataset`"):
        store.signer("dataset")
    store.create("one")
    store.create("two")
    with pytest.raises(KeyFileError, match="keys there: one, two"):
        store.info("three")


def test_group_readable_private_key_is_refused_with_the_chmod_hint(store: KeyStore) -> None:
    store.create("dataset")
    path = store.private_key_path("dataset")
    path.chmod(0o644)
    with pytest.raises(KeyFileError) as caught:
        store.signer("dataset")
    assert str(caught.value) == f"Key file {path} is readable by others (mode 0644); run `chmod 600 {path}`"
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="mode 0640"):
        store.signer("dataset")
    path.chmod(0o600)
    assert store.signer("dataset").key_id == store.info("dataset").key_id


@pytest.mark.parametrize("algorithm", ["ed25519", "hmac-sha256"])
@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage\n",
        b"-----BEGIN ARCTICCODEX HMAC-SHA256 KEY-----\n!!!\n-----END ARCTICCODEX HMAC-SHA256 KEY-----\n",
    ],
)
def test_corrupted_key_file_names_the_file_and_the_fix(store: KeyStore, algorithm: str, content: bytes) -> None:
    store.create("dataset", algorithm)
    path = store.private_key_path("dataset")
    path.write_bytes(content)
    with pytest.raises(KeyFileError) as caught:
        store.signer("dataset")
    message = str(caught.value)
    assert str(path) in message
    assert "arcticcodex keys new" in message


def test_truncated_key_file_never_leaks_its_content(store: KeyStore) -> None:
    store.create("dataset")
    path = store.private_key_path("dataset")
    original = path.read_bytes()
    body = b"".join(original.splitlines()[1:-1])
    path.write_bytes(original[: len(original) // 2])
    with pytest.raises(KeyFileError) as caught:
        store.signer("dataset")
    assert body.decode()[:20] not in str(caught.value)


def test_key_file_swapped_with_another_key_is_detected(store: KeyStore) -> None:
    store.create("a")
    store.create("b")
    store.private_key_path("a").write_bytes(store.private_key_path("b").read_bytes())
    with pytest.raises(KeyFileError, match="does not hold key 'a'"):
        store.signer("a")


def test_malformed_metadata_names_the_file(store: KeyStore) -> None:
    store.create("dataset")
    store.metadata_path("dataset").write_text("{not json")
    with pytest.raises(KeyFileError, match=r"dataset\.json is not valid JSON"):
        store.list()


def test_missing_private_key_file(store: KeyStore) -> None:
    store.create("dataset")
    store.private_key_path("dataset").unlink()
    with pytest.raises(KeyFileError, match=r"dataset\.key is missing; .*arcticcodex keys new"):
        store.signer("dataset")


def test_public_pem_and_export(store: KeyStore, tmp_path: Path) -> None:
    info = store.create("dataset")
    pem = store.public_pem("dataset")
    assert Ed25519Verifier.from_public_pem(pem).key_id == info.key_id
    target = store.export_public("dataset", tmp_path / "out.pub")
    assert target.read_bytes() == pem
    store.export_public("dataset", target)  # replacing an exported public key is fine
    assert target.read_bytes() == pem


def test_hmac_keys_have_no_public_part(store: KeyStore) -> None:
    store.create("shared", "hmac-sha256")
    with pytest.raises(KeyFileError, match="HMAC keys have no public part; share the secret out of band"):
        store.public_pem("shared")


def test_repr_and_info_hold_no_secret(store: KeyStore) -> None:
    store.create("shared", "hmac-sha256")
    secret = store.signer("shared")
    assert isinstance(secret, HmacSigner)
    secret_b64 = base64.b64encode(secret.secret_bytes()).decode()
    for text in (repr(store), repr(store.info("shared")), repr(secret), repr(store.list())):
        assert secret_b64 not in text and secret.secret_bytes().hex() not in text
