"""Which options the user gave on the command line, and how they are spelt there.

A resumed run or loop keeps the settings it was started with, so a command refuses a setting given
again with ``--resume``; telling "given" from "a default" is click's parameter source, and naming it
back to the user is the option's own spelling (``--validation`` for ``validation_fraction``).
"""

from __future__ import annotations

import click

__all__ = ["given_on_command_line", "option_name"]


def given_on_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def option_name(ctx: click.Context, name: str) -> str:
    """The option's first spelling without its dashes (``validation`` for ``validation_fraction``)."""
    for parameter in ctx.command.params:
        if parameter.name == name and parameter.opts:
            return parameter.opts[0].lstrip("-")
    return name.replace("_", "-")
