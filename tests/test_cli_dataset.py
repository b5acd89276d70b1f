"""``arcticcodex dataset verify``: 0 intact and trusted, 1 naming every bad record, 2 intact but untrusted."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from arcticcodex.cli import cli
from arcticcodex.provenance import Ed25519Signer, KeyStore
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.workspace import Workspace
from test_dataset_verify import SIGNER, build


def verify(*args: str) -> tuple[int, str]:
    options = list(args[:2]) if args[:1] == ("-w",) else []
    result = CliRunner().invoke(cli, [*options, "dataset", "verify", *args[len(options) :]], catch_exceptions=False)
    return result.exit_code, result.output


def test_intact_dataset_of_a_trusted_signer_exits_zero(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    TrustedKeys.for_user().trust_key(SIGNER, name="tests", origin="the test")
    code, output = verify(str(out))
    assert code == 0, output
    assert output.startswith(f"OK: intact, signer trusted (trusted key 'tests', key {SIGNER.key_id[:16]}…) — 6 records")
    code, output = verify(str(out), "--json")
    report = json.loads(output)
    assert code == 0 and report["ok"] is True and report["trusted"] is True and report["problems"] == []
    assert (report["records"], report["key_id"], report["trusted_as"]) == (6, SIGNER.key_id, "trusted key 'tests'")


def test_damage_exits_one_and_names_the_line(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    lines = (out / "train.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"Question 3", b"Question 8")
    (out / "train.jsonl").write_bytes(b"".join(lines))
    code, output = verify(str(out))
    assert code == 1
    assert "train.jsonl:4 (record tp-" in output and "edited after signing" in output
    assert "FAILED: NOT intact, " in output
    code, output = verify(str(out), "--json")
    report = json.loads(output)
    assert code == 1 and report["ok"] is False
    assert {(p["file"], p["line"]) for p in report["problems"]} >= {("train.jsonl", 4)}


def test_trusted_keys_by_workspace_name_or_public_key_file(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    store = KeyStore(workspace.keys_dir)
    store.create("dataset")
    out = build(tmp_path / "ds", signer=store.signer("dataset"))
    code, output = verify("-w", str(workspace.root), str(out), "--key", "dataset")  # only that key is trusted
    assert code == 0 and "signer trusted (--key dataset, key " in output
    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(Ed25519Signer.generate().public_pem())
    code, output = verify(str(out), "--public-key", str(stranger))
    assert code == 2 and "intact, signer NOT trusted" in output
    assert f"signed by ed25519 key {store.info('dataset').key_id}, which is not --public-key stranger.pub" in output


def test_a_folder_that_is_not_a_dataset_gets_a_clear_error(tmp_path: Path) -> None:
    code, output = verify(str(tmp_path))
    assert code != 0 and "has no manifest.json" in output
