"""`distill --near-duplicate-mode` and `[distill] near_duplicate_mode` (issue 19): a user whose pairs an index
cannot serve (the dense, structureless case in benchmarks/README.md) can ask for exact screening; the choice
is recorded in the signed recipe, fixed for the run, and a wrong value is named with its place and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex.distill.settings import RunSettings
from arcticcodex.errors import UserError
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_crash import make_workspace, prompts_file


def recipe(out: Path) -> dict[str, object]:
    manifest = json.loads((out / "manifest.json").read_text())
    result: dict[str, object] = manifest["recipe"]
    return result


def test_the_mode_comes_from_the_command_line_or_the_table_and_is_signed_into_the_recipe(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_workspace(acx, tmp_path / "ws", server.base_url)
    prompts = prompts_file(tmp_path / "p.jsonl", 20)
    acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "a", "--near-duplicate-mode", "exact")
    assert recipe(tmp_path / "a")["near_duplicate_mode"] == "exact"
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[distill]\nnear_duplicate_mode = "approximate"\n')
    acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "b")
    assert recipe(tmp_path / "b")["near_duplicate_mode"] == "approximate"
    refused = acx("-w", root, "distill", "--resume", "latest", "--near-duplicate-mode", "exact", code=2)
    assert "--near-duplicate-mode" in refused.output  # fixed when the run started


def test_a_wrong_mode_in_the_table_is_named_with_its_line_and_the_choices(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_workspace(acx, tmp_path / "ws", server.base_url)
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[distill]\nnear_duplicate_mode = "fast"\n')
    line = config.read_text().splitlines().index('near_duplicate_mode = "fast"') + 1
    result = acx(
        "-w", root, "distill", "--prompts", prompts_file(tmp_path / "p.jsonl", 2), "--out", tmp_path / "o", code=1
    )
    assert f"arcticcodex.toml:{line}" in result.output and "near_duplicate_mode" in result.output
    assert '"auto", "exact" or "approximate"' in result.output
    assert not (tmp_path / "o").exists()
    with pytest.raises(UserError, match="near_duplicate_mode must be one of auto, exact, approximate, not 'fast'"):
        RunSettings(near_duplicate_mode="fast")  # type: ignore[arg-type]
