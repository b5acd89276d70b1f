"""Every command documents itself, with an example; the console scripts are installed and run."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from arcticcodex.cli import cli
from conftest import Acx


def walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """(path, command) for ``command`` and everything below it, groups included."""
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            found += walk(sub, (*path, name))
    return found


COMMANDS = walk(cli)
SUBCOMMANDS = [(path, command) for path, command in COMMANDS if path]
LEAVES = [(path, command) for path, command in COMMANDS if not isinstance(command, click.Group)]


def ids(entries: list[tuple[tuple[str, ...], click.Command]]) -> list[str]:
    return [" ".join(path) or "arcticcodex" for path, _ in entries]


def test_the_walk_finds_the_known_commands() -> None:
    names = set(ids(COMMANDS))
    expected = {"init", "forge", "forge encode", "forge decode", "forge validate", "forge canonicalize"}
    expected |= {"forge diff", "keys", "keys new", "keys list", "keys show", "keys export-public"}
    assert expected <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=ids(COMMANDS))
def test_every_command_has_help(path: tuple[str, ...], command: click.Command, acx: Acx) -> None:
    assert command.help and command.help.strip(), f"{' '.join(path)} has no help text"
    assert command.get_short_help_str().strip()
    result = acx(*path, "--help")
    assert result.stdout.startswith("Usage: ")
    first_line = command.help.strip().splitlines()[0]
    assert " ".join(first_line.split()) in " ".join(result.stdout.split())  # modulo re-wrapping
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"option {param.opts} of {' '.join(path) or 'arcticcodex'} has no help"


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=ids(LEAVES))
def test_every_leaf_command_has_an_example(path: tuple[str, ...], command: click.Command, acx: Acx) -> None:
    assert "Example" in (command.help or ""), f"{' '.join(path)} help has no Example"
    result = acx(*path, "-h")
    assert "Example" in result.stdout
    assert f"arcticcodex {' '.join(path)}" in result.stdout  # the example runs this very command


def test_root_help_lists_the_groups(acx: Acx) -> None:
    result = acx("--help")
    for name in ("init", "forge", "keys", "--workspace", "--version"):
        assert name in result.stdout
    assert acx("-h").stdout == result.stdout


def test_no_arguments_shows_usage(acx: Acx) -> None:
    result = acx(code=2)  # click's "no command given": the usage, the commands, and how to start
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: ")
    assert "arcticcodex init my-project" in result.stderr and "Commands:" in result.stderr


def test_version(acx: Acx) -> None:
    for flag in ("--version", "-V"):
        result = acx(flag)
        assert result.stdout == f"arcticcodex, version {version('arcticcodex')}\n"


@pytest.mark.parametrize("script", ["arcticcodex", "acx"])
def test_console_scripts_are_installed_and_run(script: str) -> None:
    path = Path(sys.executable).parent / script
    assert path.is_file(), f"{path} is missing; reinstall the package (pip install -e .)"
    result = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: {script} ")  # the program name is the script's own
    assert "forge" in result.stdout

    result = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"arcticcodex, version {version('arcticcodex')}"
