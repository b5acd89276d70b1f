"""``arcticcodex dataset verify``: exit 0 when all holds, 1 naming every bad record; trusted keys by name or file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from arcticcodex.cli import cli
from arcticcodex.provenance import Ed25519Signer, KeyStore
from arcticcodex.workspace import Workspace
from test_dataset_verify import build


def verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["dataset", "verify", *args])
    return result.exit_code, result.output


def test_intact_dataset_exits_zero(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    code, output = verify(str(out))
    assert code == 0, output
    assert output.startswith("OK — 6 records, 1 rejected, key ")
    code, output = verify(str(out), "--json")
    report = json.loads(output)
    assert code == 0 and report["ok"] is True and report["records"] == 6 and report["problems"] == []


def test_damage_exits_one_and_names_the_line(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    lines = (out / "train.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"Question 3", b"Question 8")
    (out / "train.jsonl").write_bytes(b"".join(lines))
    code, output = verify(str(out))
    assert code == 1
    assert "train.jsonl:4 (record tp-" in output and "edited after signing" in output
    assert "FAILED: " in output
    code, output = verify(str(out), "--json")
    report = json.loads(output)
    assert code == 1 and report["ok"] is False
    assert {(p["file"], p["line"]) for p in report["problems"]} >= {("train.jsonl", 4)}


def test_trusted_keys_by_workspace_name_or_public_key_file(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    store = KeyStore(workspace.keys_dir)
    store.create("dataset")
    out = build(tmp_path / "ds", signer=store.signer("dataset"))
    result = CliRunner().invoke(cli, ["-w", str(workspace.root), "dataset", "verify", str(out), "--key", "dataset"])
    assert result.exit_code == 0, result.output
    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(Ed25519Signer.generate().public_pem())
    code, output = verify(str(out), "--public-key", str(stranger))
    assert code == 1 and "not the trusted ed25519 key" in output


def test_a_folder_that_is_not_a_dataset_gets_a_clear_error(tmp_path: Path) -> None:
    code, output = verify(str(tmp_path))
    assert code != 0 and "has no manifest.json" in output
