"""Every command line the library and the Studio print for the user to type names a real command.

Messages say how to fix things ("run `arcticcodex teachers trust NAME`"); a command renamed or an
option dropped must not leave such advice pointing nowhere.  Every backquoted ``arcticcodex …`` in
the package's code and templates is walked through the real click tree: each word must be a
subcommand until a command is reached, and each ``--option`` must be one of that command's.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from arcticcodex.cli import cli

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "arcticcodex"
ADVICE = re.compile(r"`(?:arcticcodex|acx)((?: [^`\s]+)*)`?")


def advice() -> list[tuple[str, str]]:
    found = []
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.html"), *PACKAGE.rglob("*.txt")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in ADVICE.finditer(line):
                found.append((f"{path.relative_to(PACKAGE.parent)}:{number}", match.group(1).split()))
    return found


def problem(words: list[str]) -> str | None:
    """What is wrong with ``arcticcodex WORDS``, or None."""
    command: click.Command = cli
    context = click.Context(cli)
    for index, word in enumerate(words):
        if word in ("…", "..."):  # "arcticcodex gpu …": any of the group's commands
            return None
        if not isinstance(command, click.Group) or word.startswith("-"):
            return _options(command, words[index:])
        if not re.fullmatch(r"[a-z][a-z-]*", word):  # a placeholder such as NAME or {name}: a group needs more
            return f"{command.name} needs a command, not {word!r}"
        found = command.get_command(context, word)
        if found is None:
            return f"{command.name or 'arcticcodex'} has no command {word!r}"
        command = found
    return None


def _options(command: click.Command, rest: list[str]) -> str | None:
    known = {option for parameter in command.params for option in (*parameter.opts, *parameter.secondary_opts)}
    known |= {"--help", "-h"}
    for word in rest:
        option = word.split("=", 1)[0].rstrip(".,;:)'\"")
        if re.fullmatch(r"--[a-z][a-z-]*", option) and option not in known:
            return f"{command.name} has no option {option}"
    return None


def test_the_scan_finds_the_advice_in_messages() -> None:
    lines = advice()
    assert len(lines) > 100 and any(words[:2] == ["teachers", "trust"] for _, words in lines)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["teachers", "trsut", "NAME"], "teachers has no command 'trsut'"),
        (["distill", "--resum", "RUN"], "distill has no option --resum"),
        (["keys", "new", "dataset"], None),
        (["gpu", "…"], None),
        (["dataset", "export", "DIR", "--format", "messages"], None),
    ],
)
def test_the_check_itself(words: list[str], expected: str | None) -> None:
    assert problem(words) == expected


def test_every_printed_command_names_a_real_command_and_options() -> None:
    wrong = [f"{where}: arcticcodex {' '.join(words)}: {why}" for where, words in advice() if (why := problem(words))]
    assert not wrong, "\n".join(wrong)
