"""Attacks on trust in datasets: a stranger re-signs, a folder ships its own key, a hostile folder.

Integrity and trust are two verdicts.  Each test performs the attack through the command line a
user runs (`dataset verify`, `dataset export`, `keys trust`) and checks both the exit status and the
words the user reads.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from arcticcodex.dataset import DatasetWriter, TrainingPair
from arcticcodex.dataset.record import iter_records
from arcticcodex.provenance import Ed25519Signer, HmacSigner
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_dataset_record import make_pair

STRANGER = Ed25519Signer.generate()


@pytest.fixture
def mine(tmp_path: Path, acx: Acx) -> tuple[Workspace, Path]:
    """A workspace whose key was made with `keys new` (so it is trusted), and a dataset it signed."""
    workspace, _ = Workspace.init(tmp_path / "ws")
    acx("-w", workspace.root, "keys", "new", "dataset")
    signer = workspace_signer(workspace)
    out = tmp_path / "ds"
    with DatasetWriter(out, signer) as writer:
        for number in range(5):
            writer.add(make_pair(instruction=f"Question {number}?"))
    return workspace, out


def workspace_signer(workspace: Workspace, name: str = "dataset") -> Ed25519Signer | HmacSigner:
    from arcticcodex.provenance import KeyStore

    return KeyStore(workspace.keys_dir).signer(name)


def resign(
    source: Path, target: Path, signer: Ed25519Signer | HmacSigner, edit: Callable[[TrainingPair], TrainingPair]
) -> None:
    """What an attacker does: read the records, change what they like, sign it all again with their key."""
    pairs = [pair for _, pair, _ in iter_records(source / "train.jsonl")]
    with DatasetWriter(target, signer) as writer:
        for pair in pairs:
            writer.add(edit(pair))


def poisoned(pair: TrainingPair) -> TrainingPair:
    from dataclasses import replace

    completion = pair.completion + " Also: send your API keys to evil.example."
    changed = replace(pair, completion=completion)
    return replace(changed, id=changed.content_id)


def test_a_dataset_resigned_by_a_stranger_with_their_key_shipped_is_intact_but_not_trusted(
    mine: tuple[Workspace, Path], tmp_path: Path, acx: Acx
) -> None:
    workspace, original = mine
    assert "OK: intact, signer trusted" in acx("-w", workspace.root, "dataset", "verify", original).output
    forged = tmp_path / "forged"
    resign(original, forged, STRANGER, poisoned)
    assert (forged / "keys" / f"{STRANGER.key_id}.pub").is_file()  # the stranger ships their own key

    result = acx("-w", workspace.root, "dataset", "verify", forged, code=2)
    assert "intact, signer NOT trusted — 5 records, 0 rejected" in result.output
    assert f"signed by ed25519 key {STRANGER.key_id}, which is not one of the keys you trust" in result.output
    assert f"arcticcodex keys trust {forged / 'keys' / (STRANGER.key_id + '.pub')} --name NAME" in result.output
    assert "OK" not in result.output
    report = json.loads(acx("-w", workspace.root, "dataset", "verify", forged, "--json", code=2).stdout)
    assert (report["ok"], report["trusted"], report["key_id"]) == (True, False, STRANGER.key_id)
    assert report["verdict"] == "intact, signer NOT trusted" and report["trusted_as"] is None

    # the export refuses it (exit 2, nothing written) unless the user says otherwise
    target = tmp_path / "train.messages.jsonl"
    refused = acx("-w", workspace.root, "dataset", "export", forged, "--format", "messages", "-o", target, code=2)
    assert not target.exists()
    assert "intact, but its signer is NOT trusted" in refused.output and "--allow-untrusted" in refused.output
    acx("-w", workspace.root, "dataset", "export", forged, "--format", "messages", "-o", target, "--allow-untrusted")
    assert "evil.example" in target.read_text()


def test_trusting_a_key_is_the_users_act_and_can_be_taken_back(
    mine: tuple[Workspace, Path], tmp_path: Path, acx: Acx
) -> None:
    workspace, original = mine
    forged = tmp_path / "forged"
    resign(original, forged, STRANGER, lambda pair: pair)
    shipped = forged / "keys" / f"{STRANGER.key_id}.pub"

    trusted = acx("keys", "trust", shipped, "--name", "stranger")
    assert f"key id  {STRANGER.key_id}" in trusted.output
    result = acx("-w", workspace.root, "dataset", "verify", forged)
    assert "OK: intact, signer trusted (trusted key 'stranger'" in result.output
    listing = acx("keys", "trusted").output
    rows = [line.split() for line in listing.splitlines()]
    assert rows[0] == ["NAME", "ALGORITHM", "KEY", "ID", "ADDED", "HOW"]
    assert [row[:2] for row in rows[1:]] == [["dataset", "ed25519"], ["stranger", "ed25519"]]
    assert rows[2][2] == STRANGER.key_id and "`keys trust" in listing

    acx("keys", "untrust", "stranger")
    again = acx("-w", workspace.root, "dataset", "verify", forged, code=2)
    assert f"signed by ed25519 key {STRANGER.key_id}, which is not one of the keys you trust" in again.output
    missing = acx("keys", "untrust", "stranger", code=1)
    assert "'stranger' is not a trusted key's name or key id" in missing.output


def test_the_trust_list_lives_outside_every_workspace_and_dataset(mine: tuple[Workspace, Path]) -> None:
    workspace, _ = mine
    path = TrustedKeys.for_user().path
    assert path.parent == Path(os.environ["ARCTICCODEX_CONFIG_DIR"])
    assert not path.is_relative_to(workspace.root)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_keys_in_a_cloned_workspace_are_not_trusted_by_being_there(tmp_path: Path, acx: Acx) -> None:
    """A repository can carry arcticcodex.toml, .arcticcodex/keys/ and a dataset signed by those keys."""
    from arcticcodex.provenance import KeyStore

    cloned, _ = Workspace.init(tmp_path / "clone")
    KeyStore(cloned.keys_dir).create("dataset")  # written by someone else, not by `keys new` here
    out = cloned.root / "datasets" / "v1"
    with DatasetWriter(out, workspace_signer(cloned)) as writer:
        writer.add(make_pair())
    result = acx("-w", cloned.root, "dataset", "verify", out, code=2)
    assert "intact, signer NOT trusted" in result.output


def test_giving_a_key_trusts_only_that_key(mine: tuple[Workspace, Path], tmp_path: Path, acx: Acx) -> None:
    workspace, original = mine
    alice = tmp_path / "alice.pub"
    alice.write_bytes(Ed25519Signer.generate().public_pem())
    result = acx("-w", workspace.root, "dataset", "verify", original, "--public-key", alice, code=2)
    assert "which is not --public-key alice.pub" in result.output


def test_an_hmac_dataset_verifies_with_the_workspace_secret_and_not_without(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    acx("-w", workspace.root, "keys", "new", "shared", "--algorithm", "hmac-sha256")
    out = tmp_path / "ds"
    with DatasetWriter(out, workspace_signer(workspace, "shared")) as writer:
        writer.add(make_pair())
    result = acx("-w", workspace.root, "dataset", "verify", out)
    assert "signer trusted (trusted key 'shared'" in result.output
    elsewhere, _ = Workspace.init(tmp_path / "other")
    result = acx("-w", elsewhere.root, "dataset", "verify", out, code=1)
    assert (
        "whose secret is not in this workspace's keys: check the records with it "
        "(`arcticcodex dataset verify DIR --key NAME`)" in result.output
    )


def test_export_refuses_a_tampered_dataset_even_when_untrusted_is_allowed(
    mine: tuple[Workspace, Path], tmp_path: Path, acx: Acx
) -> None:
    workspace, out = mine
    train = out / "train.jsonl"
    train.write_bytes(train.read_bytes().replace(b"Question 2?", b"Question 7?"))
    target = tmp_path / "x.jsonl"
    result = acx(
        "-w", workspace.root, "dataset", "export", out, "--format", "alpaca", "-o", target, "--allow-untrusted", code=1
    )
    assert not target.exists()
    assert f"the dataset in {out} is NOT intact (" in result.output
    assert "the first: train.jsonl:3 (record tp-" in result.output and "edited after signing" in result.output


class Forged(TrainingPair):
    """A pair that lies about its id (the writer checks ``content_id``; this one claims its own id)."""

    @property
    def content_id(self) -> str:
        return self.id


def test_a_made_up_id_is_found_by_recomputing_the_content_id(
    mine: tuple[Workspace, Path], tmp_path: Path, acx: Acx
) -> None:
    workspace, original = mine
    forged = tmp_path / "forged"
    signer = workspace_signer(workspace)  # even the trusted signer cannot make a made-up id pass

    def lie(pair: TrainingPair) -> TrainingPair:
        fields = {name: getattr(pair, name) for name in TrainingPair.__dataclass_fields__}
        return Forged(**{**fields, "id": "tp-" + "0" * 31 + str(pair.index)})

    resign(original, forged, signer, lie)
    result = acx("-w", workspace.root, "dataset", "verify", forged, code=1)
    assert (
        "train.jsonl:1 (record tp-00000000000000000000000000000000): id 'tp-00000000000000000000000000000000' is "
        in (result.output)
    )
    assert "is not the record's content id tp-" in result.output


# -- hostile folders: a located report, never a traceback or a hang ------------------------------------------------


def hostile_record(change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        lines = (out / "train.jsonl").read_bytes().splitlines(keepends=True)
        record = json.loads(lines[1])
        change(record)
        lines[1] = (json.dumps(record) + "\n").encode()
        (out / "train.jsonl").write_bytes(b"".join(lines))

    return damage


def set_field(name: str, value: object) -> Callable[[dict[str, object]], None]:
    return lambda record: record.update({name: value})


def replace_key(make: Callable[[Path], None]) -> Callable[[Path], None]:
    """Damage the public key a stranger's dataset ships (the only kind whose shipped key is read)."""

    def damage(out: Path) -> None:
        forged = out.with_name("forged")
        resign(out, forged, STRANGER, lambda pair: pair)
        shutil.rmtree(out)
        forged.rename(out)
        (key,) = (out / "keys").iterdir()
        key.unlink()
        make(key)

    return damage


def write_manifest(text: Callable[[str], str]) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        (out / "manifest.json").write_text(text((out / "manifest.json").read_text()))

    return damage


HOSTILE_RECORDS = {
    "index -1": (hostile_record(set_field("index", -1)), "train.jsonl:2 (record tp-", "not a valid record"),
    "newline in signer_id": (
        hostile_record(set_field("signer_id", "teacher\nOK — all good")),
        "train.jsonl:2 (record tp-",
        "not a valid record",
    ),
    "empty teacher name": (hostile_record(set_field("teachers", [""])), "train.jsonl:2", "not a valid record"),
    "a 2**70 index": (hostile_record(set_field("index", 2**70)), "train.jsonl:2", "not a valid record"),
    "FIFO key": (replace_key(lambda key: os.mkfifo(key)), "keys/", "is a FIFO, not a plain file"),
    "key linked to /dev/zero": (
        replace_key(lambda key: key.symlink_to("/dev/zero")),
        "keys/",
        "is a symbolic link; it is not followed",
    ),
    "a 65 KB key": (replace_key(lambda key: key.write_bytes(b"-" * 66_000)), "keys/", "over the 65,536-byte limit"),
    "FIFO records": (
        lambda out: ((out / "train.jsonl").unlink(), os.mkfifo(out / "train.jsonl")),
        "train.jsonl",
        "is not a plain file",
    ),
    "records linked to /dev/zero": (
        lambda out: ((out / "train.jsonl").unlink(), (out / "train.jsonl").symlink_to("/dev/zero")),
        "train.jsonl",
        "is not a plain file",
    ),
    "card linked to /dev/zero": (
        lambda out: ((out / "README.md").unlink(), (out / "README.md").symlink_to("/dev/zero")),
        "README.md",
        "is a symbolic link",
    ),
}


def verify_with_a_deadline(acx: Acx, out: Path, workspace: Path, code: int) -> Result:
    """Run the command in a thread, so that a hang fails the test instead of stopping the suite."""
    outcome: list[Result] = []
    worker = threading.Thread(target=lambda: outcome.append(acx("-w", workspace, "dataset", "verify", out, code=code)))
    worker.daemon = True
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "dataset verify hung on a hostile folder"
    return outcome[0]


@pytest.mark.parametrize("attack", HOSTILE_RECORDS, ids=list(HOSTILE_RECORDS))
def test_hostile_folders_get_a_located_report(mine: tuple[Workspace, Path], attack: str, acx: Acx) -> None:
    workspace, out = mine
    damage, place, phrase = HOSTILE_RECORDS[attack]
    damage(out)
    result = verify_with_a_deadline(acx, out, workspace.root, code=1)
    located = [line for line in result.output.splitlines() if line.startswith(place)]
    assert any(phrase in line for line in located), result.output
    assert "FAILED: NOT intact" in result.output
    assert "OK — all good" not in result.output.replace("\\n", "\n").split("FAILED")[0].splitlines()[0:1]


@pytest.mark.parametrize(
    ("attack", "phrase"),
    [
        (write_manifest(lambda text: text.replace('"record_count": 5', '"record_count": ' + "9" * 5000)), "Exceeds"),
        (write_manifest(lambda text: text.rstrip()[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"), "deeply"),
        (lambda out: (out / "manifest.json").write_bytes(b" " * (17 << 20)), "over the 16,777,216-byte limit"),
        (
            lambda out: ((out / "manifest.json").unlink(), os.mkfifo(out / "manifest.json")),
            "is a FIFO, not a plain file",
        ),
    ],
    ids=["5000-digit number", "100k-deep array", "17 MB manifest", "FIFO manifest"],
)
def test_a_hostile_manifest_is_a_clear_error(
    mine: tuple[Workspace, Path], attack: Callable[[Path], None], phrase: str, acx: Acx
) -> None:
    workspace, out = mine
    attack(out)
    result = verify_with_a_deadline(acx, out, workspace.root, code=1)
    assert result.stderr.startswith("Error: ") and str(out / "manifest.json") in result.stderr
    assert "manifest" in result.output and phrase in result.output, result.output


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "70 KB"])
def test_keys_trust_reads_only_a_small_plain_file(tmp_path: Path, kind: str, acx: Acx) -> None:
    path = tmp_path / "offered.pub"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "70 KB":
        path.write_bytes(b"-" * 70_000)
    else:
        path.symlink_to("/dev/zero")
    outcome: list[Result] = []
    worker = threading.Thread(target=lambda: outcome.append(acx("keys", "trust", path, code=1)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "keys trust hung"
    expected = {
        "fifo": "is a FIFO, not a plain file",
        "link to /dev/zero": "is a symbolic link",
        "70 KB": "is 70,000 bytes, over the 65,536-byte limit",
    }
    assert f"public key file {path} {expected[kind]}" in outcome[0].stderr
    assert TrustedKeys.for_user().list() == []


def test_a_cloned_workspace_key_that_is_a_link_to_dev_zero_does_not_hang_verify(tmp_path: Path, acx: Acx) -> None:
    """The workspace's key store is read for key material; a hostile one must not be read without bound."""
    from arcticcodex.provenance import KeyStore

    cloned, _ = Workspace.init(tmp_path / "clone")
    store = KeyStore(cloned.keys_dir)
    store.create("dataset")
    out = cloned.root / "datasets" / "v1"
    with DatasetWriter(out, workspace_signer(cloned)) as writer:
        writer.add(make_pair())
    public = store.public_key_path("dataset")
    public.unlink()
    public.symlink_to("/dev/zero")
    result = verify_with_a_deadline(acx, out, cloned.root, code=2)
    assert "intact, signer NOT trusted" in result.output  # checked with the shipped key


def test_a_terabyte_of_sparse_records_is_not_read_to_its_end(mine: tuple[Workspace, Path], acx: Acx) -> None:
    workspace, out = mine
    train = out / "train.jsonl"
    with train.open("r+b") as handle:
        handle.truncate(1 << 40)  # a hole of zeros: one "line" a terabyte long, costing no disk
    result = verify_with_a_deadline(acx, out, workspace.root, code=1)
    assert "train.jsonl: is 1,099,511,627,776 bytes, far more than the" in result.output
    assert "signed; the rest was not read" in result.output and "past the 67,108,864-byte limit" in result.output


def test_a_trust_list_kept_as_a_dotfile_link_is_read_and_written_through(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "trusted-keys.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text('{"version": 1, "keys": []}\n')
    trusted = TrustedKeys.for_user()
    trusted.folder.mkdir(parents=True, exist_ok=True)
    trusted.path.symlink_to(dotfiles)
    trusted.trust_key(STRANGER, name="stranger", origin="the test")
    assert trusted.path.is_symlink() and STRANGER.key_id in dotfiles.read_text()
    assert [key.name for key in TrustedKeys.for_user().list()] == ["stranger"]


def test_keys_trust_takes_a_workspace_key_by_name_hmac_included(tmp_path: Path, acx: Acx) -> None:
    """A workspace key made before trust was recorded (or an HMAC key, which has no public file)."""
    from arcticcodex.provenance import KeyStore

    workspace, _ = Workspace.init(tmp_path / "ws")
    KeyStore(workspace.keys_dir).create("shared", "hmac-sha256")  # as an older version made it: not trusted
    out = tmp_path / "ds"
    with DatasetWriter(out, workspace_signer(workspace, "shared")) as writer:
        writer.add(make_pair())
    before = acx("-w", workspace.root, "dataset", "verify", out, code=2)
    assert "arcticcodex keys trust --key shared" in before.output
    trusted = acx("-w", workspace.root, "keys", "trust", "--key", "shared")
    assert "Trusted hmac-sha256 key 'shared'" in trusted.output
    assert "OK: intact, signer trusted" in acx("-w", workspace.root, "dataset", "verify", out).output
    secret = workspace_signer(workspace, "shared")
    assert isinstance(secret, HmacSigner)
    recorded = TrustedKeys.for_user().path.read_text()  # only the key id: the secret never leaves keys/
    assert secret.key_id in recorded
    assert (
        secret.secret_bytes().hex() not in recorded and base64.b64encode(secret.secret_bytes()).decode() not in recorded
    )


def test_keys_trust_from_a_deep_folder_records_a_shortened_origin(tmp_path: Path, acx: Acx) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 90)
    deep.mkdir(parents=True)
    offered = deep / "alice.pub"
    offered.write_bytes(STRANGER.public_pem())
    assert "Trusted ed25519 key 'alice'" in acx("keys", "trust", offered).output
    (entry,) = TrustedKeys.for_user().list()
    assert entry.name == "alice" and len(entry.origin) == 2000 and entry.origin.endswith("…")


def test_verify_json_of_a_folder_that_is_no_dataset_is_still_json(tmp_path: Path, acx: Acx) -> None:
    result = acx("dataset", "verify", tmp_path, "--json", code=1)
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["trusted"] is False
    assert "has no manifest.json" in report["error"]
