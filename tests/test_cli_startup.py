"""Start-up: `arcticcodex --version` and `--help` import none of the heavy libraries, and a BM25 search
loads no embedding model.  Each check runs a real process with ``python -X importtime``, which lists every
module the process imported (this test process has long imported them all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from arcticcodex.cli import COMMANDS, cli
from arcticcodex.vault import HashingBackend, Vault, import_paths
from arcticcodex.vault.embeddings import DEFAULT_MODEL
from arcticcodex.workspace import Workspace

HEAVY = ("openai", "numpy", "torch", "starlette")
EMBEDDING_MODEL = ("torch", "sentence_transformers", "transformers")


def imported_by(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m arcticcodex.cli ARGS``; the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "arcticcodex.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    names = {
        line.rpartition("|")[2].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "click" in names, done.stderr[-2000:]  # the listing is really there
    return done, names


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_no_heavy_library(flag: str) -> None:
    done, names = imported_by(flag)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "0.1.0" in done.stdout if flag == "--version" else "teachers" in done.stdout
    loaded = sorted(set(HEAVY) & names)
    assert not loaded, f"`arcticcodex {flag}` imported {loaded}"


def test_help_lists_every_command_with_its_own_summary() -> None:
    """--help shows the summaries kept in COMMANDS; each must be the first paragraph of its command's help."""
    for name, (_, _, summary) in COMMANDS.items():
        command = cli.commands[name]  # imports it
        assert command.help is not None
        first_paragraph = " ".join(command.help.partition("\n\n")[0].split())
        assert summary == first_paragraph, f"COMMANDS[{name!r}] in arcticcodex/cli/__init__.py is out of date"
        for limit in (40, 70, 200):
            assert click.Command(name, help=summary).get_short_help_str(limit) == command.get_short_help_str(limit)
    lazy, _ = imported_by("--help")
    every_command_loaded = "from arcticcodex.cli import cli; dict(cli.commands); cli.main(['--help'], 'arcticcodex')"
    loaded = subprocess.run([sys.executable, "-c", every_command_loaded], capture_output=True, text=True, check=False)
    assert lazy.stdout == loaded.stdout and "refine" in lazy.stdout


def test_an_unknown_command_names_the_nearest_one_without_importing_them_all() -> None:
    done, names = imported_by("distil")
    assert done.returncode == 2
    assert "No such command 'distil'" in done.stderr and "distill" in done.stderr
    assert not set(HEAVY) & names


def test_bm25_search_loads_no_embedding_model(tmp_path: Path) -> None:
    """The workspace uses the default model (sentence-transformers on torch); BM25 does not need it."""
    workspace, _ = Workspace.init(tmp_path / "ws")
    (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish. They also eat crabs.\n")

    class DefaultModelStandIn(HashingBackend):
        """Vectors labelled as the default model, made without loading it (the test needs no torch)."""

        @property
        def name(self) -> str:
            return DEFAULT_MODEL

    with Vault(workspace, embedder=DefaultModelStandIn(384)) as vault:
        assert len(import_paths(vault, [tmp_path / "otters.md"]).added) == 1
    done, names = imported_by("-w", str(workspace.root), "vault", "search", "crabs", "--mode", "bm25", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    (hit,) = json.loads(done.stdout)
    assert "crabs" in hit["text"]
    loaded = sorted(set(EMBEDDING_MODEL) & names)
    assert not loaded, f"`vault search --mode bm25` loaded the embedding model ({loaded})"
