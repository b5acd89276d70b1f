"""A library error, worded for the terminal: the parameters it names become the options that set them.

The library names the caller's parameters as Python spells them (``budget_usd must not be negative``)
and lists them in ``error.parameters``; here each becomes the option of the command that ran
(``--budget-usd must not be negative``).  An option stands for the parameter its flag spells
(``--object`` for ``object``) and for the name click gives its value (``--validation`` declared as
``"validation_fraction"`` for ``validation_fraction``).  A parameter the command has no option for is
left as is, and so is a backquoted command line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import click

from ..errors import ArcticCodexError

__all__ = ["commands_run", "worded_for_cli"]


def worded_for_cli(error: ArcticCodexError, commands: Sequence[click.Command]) -> str:
    """``str(error)``, with each parameter it names written as the option for it of ``commands``.

    ``commands`` are the command line's commands, the root first: an option of the command that ran
    stands before one of its group (``--key`` of ``distill``, ``--workspace`` of the root).
    """
    message = str(error)
    if not error.parameters:
        return message
    options: dict[str, str] = {}
    for param in (param for command in commands for param in command.params):
        if isinstance(param, click.Option):
            option = max(param.opts, key=len)
            options[option.lstrip("-").replace("-", "_")] = option  # --object stands for object ...
            if param.name is not None:
                options[param.name] = option  # ... and --validation, declared "validation_fraction", for that
    named = [name for name in error.parameters if name in options]
    if not named:
        return message
    # a whole word, not part of a path, a dotted key (gpu.budget_usd) or a quoted value ('teachers')
    pattern = re.compile(rf"(?<![\w./\\'\"-])({'|'.join(map(re.escape, named))})(?![\w/\\'\"-])")
    # a backquoted command line (`arcticcodex teachers add …`) is already the CLI's: left as it is
    pieces = re.split(r"(`[^`]*`)", message)
    return "".join(
        piece if piece.startswith("`") else pattern.sub(lambda match: options[match[1]], piece) for piece in pieces
    )


def commands_run(group: click.Group, ctx: click.Context, args: Sequence[str]) -> list[click.Command]:
    """``group`` and the commands ``args`` (what followed it on the command line) ran, into subgroups.

    A group's first argument that names one of its commands is taken as the command (the groups of
    this CLI below the root have no options of their own but ``--help``).
    """
    commands: list[click.Command] = [group]
    rest = list(args)
    while isinstance(command := commands[-1], click.Group):
        names = [arg for arg in rest if command.get_command(ctx, arg) is not None]
        found = command.get_command(ctx, names[0]) if names else None
        if found is None:
            break
        rest = rest[rest.index(names[0]) + 1 :]
        commands.append(found)
    return commands
