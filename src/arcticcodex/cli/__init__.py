"""The ``arcticcodex`` (alias ``acx``) command line.

One module per command group; each command is a thin layer over the library.  Errors are translated
here, once: an :class:`~arcticcodex.errors.ArcticCodexError` is printed as its message (no
traceback) and the command exits with status 1 — or 2 for a :class:`~arcticcodex.errors.TrustError`
(intact but untrusted, as `dataset verify` says it).  Set ``ARCTICCODEX_RAISE_ERRORS=1`` to get the
original exception and traceback instead, for debugging.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import ArcticCodexError, TrustError
from ..terminal import escape_controls
from ..workspace import Workspace

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
RAISE_ERRORS_ENV = "ARCTICCODEX_RAISE_ERRORS"


class CliError(click.ClickException):
    """A library error rendered for the terminal (exit status 1, message on stderr)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        # a message can quote a file name or a configuration value: never let it drive the terminal
        click.echo(f"Error: {escape_controls(self.format_message())}", err=True)


class UntrustedCliError(CliError):
    """Intact but untrusted (exit status 2, as `dataset verify` says it)."""

    exit_code = 2


class ArcticCodexGroup(click.Group):
    """A click group that turns ArcticCodex errors into clean messages, once, at the boundary."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArcticCodexError as error:
            if os.environ.get(RAISE_ERRORS_ENV, "").strip().lower() not in ("", "0", "false", "no", "off"):
                raise
            raise (UntrustedCliError if isinstance(error, TrustError) else CliError)(str(error)) from error


class CliState:
    """What the root command learned (the --workspace option); opens the workspace on demand."""

    def __init__(self, workspace_option: Path | None) -> None:
        self.workspace_option = workspace_option
        self._workspace: Workspace | None = None

    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace.discover(self.workspace_option)
        return self._workspace


pass_state = click.make_pass_decorator(CliState)


def default_workers() -> int:
    """Processes for signing and verifying large datasets: one per core this process may use, at most 8."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(usable, 8))


@click.group(cls=ArcticCodexGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder (default: ARCTICCODEX_WORKSPACE, else the nearest folder upwards holding arcticcodex.toml).",
)
@click.version_option(__version__, "-V", "--version", prog_name="arcticcodex")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """ArcticCodex: turn documents and conversations into teacher-verified, signed fine-tuning datasets.

    \b
    Start with:
      arcticcodex init my-project && cd my-project
      arcticcodex keys new dataset
      arcticcodex forge --help
    """
    ctx.obj = CliState(workspace)
    # pypdf reports recoverable damage ("EOF marker not found") as warnings; a file it cannot read
    # raises and is reported by the import itself, so the warnings are only noise on the terminal.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


def _register_commands() -> None:
    from . import agent, dataset, distill, forge, gpu, keys, review, studio, teachers, vault, workspace

    cli.add_command(workspace.init)
    cli.add_command(forge.forge)
    cli.add_command(keys.keys)
    cli.add_command(dataset.dataset)
    cli.add_command(distill.distill)
    cli.add_command(vault.vault)
    cli.add_command(teachers.teachers)
    cli.add_command(teachers.refine)
    cli.add_command(gpu.gpu)
    cli.add_command(agent.ask)
    cli.add_command(agent.chat)
    cli.add_command(review.review)
    cli.add_command(studio.studio)


_register_commands()


def main() -> None:
    """Console-script entry point for ``arcticcodex`` and ``acx``."""
    sys.exit(cli.main(prog_name=Path(sys.argv[0]).name or "arcticcodex"))
