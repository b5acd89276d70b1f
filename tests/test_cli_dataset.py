"""``arcticcodex dataset verify``: 0 intact and trusted, 1 naming every bad record, 2 intact but untrusted."""

from __future__ import annotations

import json
from pathlib import Path

from arcticcodex.provenance import Ed25519Signer, KeyStore
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_dataset_verify import SIGNER, build


def test_intact_dataset_of_a_trusted_signer_exits_zero(tmp_path: Path, acx: Acx) -> None:
    out = build(tmp_path / "ds")
    TrustedKeys.for_user().trust_key(SIGNER, name="tests", origin="the test")
    output = acx("dataset", "verify", out).output
    assert output.startswith(f"OK: intact, signer trusted (trusted key 'tests', key {SIGNER.key_id[:16]}…) — 6 records")
    report = json.loads(acx("dataset", "verify", out, "--json").stdout)
    assert report["ok"] is True and report["trusted"] is True and report["problems"] == []
    assert (report["records"], report["key_id"], report["trusted_as"]) == (6, SIGNER.key_id, "trusted key 'tests'")


def test_damage_exits_one_and_names_the_line(tmp_path: Path, acx: Acx) -> None:
    out = build(tmp_path / "ds")
    lines = (out / "train.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"Question 3", b"Question 8")
    (out / "train.jsonl").write_bytes(b"".join(lines))
    output = acx("dataset", "verify", out, code=1).output
    assert "train.jsonl:4 (record tp-" in output and "edited after signing" in output
    assert "FAILED: NOT intact, " in output
    report = json.loads(acx("dataset", "verify", out, "--json", code=1).stdout)
    assert report["ok"] is False
    assert {(p["file"], p["line"]) for p in report["problems"]} >= {("train.jsonl", 4)}


def test_trusted_keys_by_workspace_name_or_public_key_file(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    store = KeyStore(workspace.keys_dir)
    store.create("dataset")
    out = build(tmp_path / "ds", signer=store.signer("dataset"))
    output = acx("-w", workspace.root, "dataset", "verify", out, "--key", "dataset").output  # only that key
    assert "signer trusted (--key dataset, key " in output
    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(Ed25519Signer.generate().public_pem())
    output = acx("dataset", "verify", out, "--public-key", stranger, code=2).output
    assert "intact, signer NOT trusted" in output
    assert f"signed by ed25519 key {store.info('dataset').key_id}, which is not --public-key stranger.pub" in output


def test_a_folder_that_is_not_a_dataset_gets_a_clear_error(tmp_path: Path, acx: Acx) -> None:
    result = acx("dataset", "verify", tmp_path, code=1)
    assert "has no manifest.json" in result.stderr and str(tmp_path) in result.stderr
