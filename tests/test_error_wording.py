"""The library speaks of its parameters; the CLI writes the options that set them.

A Python caller who passed ``threshold=2`` must read "threshold must be …", not about an option it
never saw; a terminal user who typed ``--threshold 2`` must read "--threshold must be …".  The
library lists the parameters a message names in ``error.parameters``; the CLI's boundary
(:mod:`arcticcodex.cli.messages`) writes each as the running command's option.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from arcticcodex.cli.messages import worded_for_cli
from arcticcodex.distill.settings import RunSettings
from arcticcodex.errors import ConfigError, UserError
from arcticcodex.human_review import HumanReview
from arcticcodex.workspace import Workspace
from conftest import Acx

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "arcticcodex"
EDGES = ("cli", "studio", "compat")  # they speak to a person at a terminal or a page, or keep the first API
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
BACKQUOTED = re.compile(r"`[^`]*`")
# strings that are other programs' command lines, not advice to our user
OTHER_PROGRAMS = {
    ("gpu", "provisioner.py"),  # vLLM's command line
    ("vault", "loaders.py"),  # qpdf's, in advice
    ("training", "merging.py"),  # mergekit's
    ("training", "remote.py"),  # `arcticcodex train` as run on a rented GPU
    ("evaluation", "serving.py"),  # `transformers serve`'s
}


def library_strings() -> list[tuple[str, str]]:
    """Every string literal of the library (not docstrings), with its place; f-strings by their parts."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] in EDGES or parts[-2:] in OTHER_PROGRAMS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # docstrings, of modules, classes, functions and attributes alike: statements that are a string
        skipped = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant | ast.JoinedStr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):  # one string, its {…} parts as placeholders
                skipped.update(id(part) for part in node.values)
                if id(node) not in skipped:
                    text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
                    found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", str(text)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node.value))
    return found


def test_no_library_message_names_an_option_outside_a_command_line() -> None:
    """``--budget-usd`` may appear only inside a backquoted command (`arcticcodex distill … --budget-usd N`)."""
    strings = library_strings()
    assert len(strings) > 500  # the scan sees the library's messages
    wrong = [
        f"{where}: {text!r}"
        for where, text in strings
        if not text.startswith("arcticcodex ")  # a command line of its own (the dataset card's usage block)
        and OPTION.search(BACKQUOTED.sub("", text.replace("``", "")))
    ]
    assert not wrong, "\n".join(wrong)


def test_the_scan_finds_a_bare_option() -> None:
    assert OPTION.search(BACKQUOTED.sub("", "raise --budget-usd to continue"))
    assert not OPTION.search(BACKQUOTED.sub("", "resume: `arcticcodex distill --resume RUN --budget-usd N`"))


def test_a_python_caller_reads_the_parameter_it_passed() -> None:
    with pytest.raises(UserError, match=r"^threshold must be between 0 and 1, not 2") as raised:
        RunSettings(threshold=2)
    assert raised.value.parameters == ("threshold",)
    with pytest.raises(UserError, match=r"^validation_fraction must be a fraction in \[0, 1\), not 1.5"):
        RunSettings(validation_fraction=1.5)


def test_a_python_reviewer_reads_the_fields_it_may_edit(workspace: Workspace) -> None:
    with HumanReview(workspace, by="me") as review, pytest.raises(UserError) as raised:
        review.edit("pair:run-x:1", text="a summary's text")
    assert str(raised.value) == "pair:run-x:1 is a training pair: edit its instruction or completion, not text"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--threshold", "2"], "Error: --threshold must be between 0 and 1, not 2.0"),
        (["--max-rounds", "0"], "Error: --max-rounds must be between 1 and 10, not 0"),
        (["--validation", "1.5"], "Error: --validation must be a fraction in [0, 1), not 1.5"),
        (
            ["--near-duplicates", "0.2"],
            "Error: --near-duplicates must be between 0.5 and 1.0 (cosine), not 0.2; to keep them all, turn the "
            "check off (--keep-near-duplicates)",
        ),
        (["--signer-id", " "], "Error: --signer-id must not be empty"),
    ],
)
def test_a_terminal_user_reads_the_option_they_typed(
    workspace: Workspace, acx: Acx, tmp_path: Path, options: list[str], expected: str
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "What do otters eat?"}\n', encoding="utf-8")
    out = tmp_path / "out"
    result = acx("-w", workspace.root, "distill", "--prompts", prompts, "--out", out, *options, code=1)
    assert expected in result.output
    assert not out.exists()


def test_an_out_folder_that_is_taken_names_out_and_append(workspace: Workspace, acx: Acx, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "What do otters eat?"}\n', encoding="utf-8")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    result = acx("-w", workspace.root, "distill", "--prompts", prompts, "--out", taken, code=1)
    assert f"Error: --out {taken.resolve()} is not empty; choose a new folder, or set --append" in result.output
    assert (taken / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_the_wording_replaces_whole_parameter_names_only() -> None:
    @click.command()
    @click.option("--budget-usd", type=float)
    @click.option("--object", "obj")
    @click.option("--validation", "validation_fraction", type=float)
    def command(budget_usd: float, obj: str, validation_fraction: float) -> None: ...

    error = ConfigError(
        "budget_usd (gpu.budget_usd in arcticcodex.toml), object, validation_fraction; run_budget_usd stays",
        parameters=["budget_usd", "object", "validation_fraction", "run_budget_usd"],
    )
    assert worded_for_cli(error, [command]) == (
        "--budget-usd (gpu.budget_usd in arcticcodex.toml), --object, --validation; run_budget_usd stays"
    )
    assert worded_for_cli(ConfigError("budget_usd"), [command]) == "budget_usd"  # not named a parameter: kept
    in_a_path = ConfigError(
        "budget_usd: /srv/budget_usd/x, 'budget_usd', `arcticcodex budget_usd`", parameters=["budget_usd"]
    )
    assert (
        worded_for_cli(in_a_path, [command])
        == "--budget-usd: /srv/budget_usd/x, 'budget_usd', `arcticcodex budget_usd`"
    )
