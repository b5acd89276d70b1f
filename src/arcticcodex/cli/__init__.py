"""The ``arcticcodex`` (alias ``acx``) command line.

One module per command group; each command is a thin layer over the library, and each module is
imported only when its command runs (:class:`LazyCommands`): ``arcticcodex --version`` and ``--help``
load click and nothing of the library's weight (NumPy, the ``openai`` SDK, torch, the Studio's web
stack).  Errors are translated here, once: an :class:`~arcticcodex.errors.ArcticCodexError` is printed
as its message (no traceback; the parameters it names written as the options that set them, see
:mod:`.messages`) and the command exits with status 1 — or 2 for a
:class:`~arcticcodex.errors.TrustError` (intact but untrusted, as `dataset verify` says it).  Set
``ARCTICCODEX_RAISE_ERRORS=1`` to get the original exception and traceback instead, for debugging.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from ..errors import ArcticCodexError, TrustError
from ..terminal import escape_controls

if TYPE_CHECKING:
    from ..workspace import Workspace

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
RAISE_ERRORS_ENV = "ARCTICCODEX_RAISE_ERRORS"
_ARGS_RUN = "arcticcodex.args"

# command -> (module of this package, attribute, the first paragraph of its help for `arcticcodex --help`);
# tests/test_cli_startup.py checks the summaries against the commands' own help
COMMANDS: dict[str, tuple[str, str, str]] = {
    "ask": ("agent", "ask", "Answer QUESTION from the vault, citing the chunks it rests on."),
    "chat": ("agent", "chat", "Ask one question after another in one conversation (an empty line or Ctrl-D ends it)."),
    "dataset": (
        "dataset",
        "dataset",
        "Check, summarise, export and publish signed datasets (folders written by `arcticcodex distill`).",
    ),
    "distill": (
        "distill",
        "distill",
        "Draft, critique, verify and rewrite answers, and write the accepted ones as a signed dataset.",
    ),
    "eval": ("eval", "eval_", "Measure a student against its teacher on the held-out questions of a signed dataset."),
    "forge": ("forge", "forge", "Work with ForgeNumerics-S tokens, frames and .fn documents (one frame per line)."),
    "gpu": (
        "gpu",
        "gpu",
        "Rent GPUs on Vast.ai that serve a model with vLLM as a teacher (VAST_API_KEY from the environment).",
    ),
    "init": ("workspace", "init", "Create a workspace in DIRECTORY (default: --workspace, else the current folder)."),
    "keys": ("keys", "keys", "Create, list, show and export signing keys; trust other people's public keys."),
    "loop": (
        "loop",
        "loop",
        "Distil with the student as the drafter, train it on what the teachers made of its drafts, measure it.",
    ),
    "models": (
        "models",
        "models",
        "List the models this workspace trained: each run's status, data, method and receipt verdicts.",
    ),
    "refine": ("teachers", "refine", "Run the draft → critique → verify → rewrite loop on the text in FILE."),
    "merge": (
        "merge",
        "merge",
        "Merge the models CONFIG names with each method it lists; keep the one with the lowest held-out loss.",
    ),
    "receipt": ("train", "receipt", "Check the signed receipts `arcticcodex train` writes beside every model."),
    "review": (
        "review",
        "review",
        "Approve, edit or reject what waits for a person: facts and summaries the agent proposed for memory "
        "(nothing enters it unapproved), and the accepted pairs of runs made with `distill --review`.",
    ),
    "runs": ("runs", "runs", "List and inspect distillation runs: status, counts, spend, output and failures."),
    "studio": ("studio", "studio", "Serve the Studio: chat, vault explorer, review queue, datasets, runs and GPUs."),
    "teachers": (
        "teachers",
        "teachers",
        "Configure the models that critique, verify and rewrite (any OpenAI-compatible endpoint).",
    ),
    "train": (
        "train",
        "train",
        "Train a student on the signed dataset in DATASET (SFT, DPO or both; LoRA or every weight).",
    ),
    "vault": ("vault", "vault", "The knowledge store: documents, chunks, vectors, facts and conversations."),
}


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, each imported from its module the first time it is looked up.

    Listing names, testing membership and ``--help``'s summaries import nothing; ``commands[name]``
    (which is how click finds the command to run) imports that one module.  Anything that walks all
    the items (a test of every command's help) gets them all, as from a plain dict.
    """

    def __init__(self, table: Mapping[str, tuple[str, str, str]]) -> None:
        self._table = dict(table)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        command = self._loaded.get(name)
        if command is None:
            module, attribute, _ = self._table[name]  # KeyError for an unknown name, as a dict's
            command = getattr(importlib.import_module(f".{module}", __name__), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{__name__}.{module}.{attribute} is not a click command")
            self._loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._table.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._table, *self._loaded]))

    def __len__(self) -> int:
        return len(self._table.keys() | self._loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._table or name in self._loaded

    def loaded(self, name: str) -> click.Command | None:
        """The command if its module was imported already, else None (nothing is imported)."""
        return self._loaded.get(name)

    def summary(self, name: str) -> str:
        """The first paragraph of a command's help, without importing it."""
        return self._table[name][2]


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

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        ctx.meta[_ARGS_RUN] = list(args)  # to find the command that ran, should an error need its options
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArcticCodexError as error:
            if os.environ.get(RAISE_ERRORS_ENV, "").strip().lower() not in ("", "0", "false", "no", "off"):
                raise
            from .messages import commands_run, worded_for_cli

            message = worded_for_cli(error, commands_run(self, ctx, ctx.meta.get(_ARGS_RUN, [])))
            raise (UntrustedCliError if isinstance(error, TrustError) else CliError)(message) from error

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, from the summaries for commands not imported yet (see LazyCommands)."""
        commands = self.commands
        if not isinstance(commands, LazyCommands):
            super().format_commands(ctx, formatter)
            return
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = commands.loaded(name) or click.Command(name, help=commands.summary(name))
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])


class CliState:
    """What the root command learned (the --workspace option); opens the workspace on demand."""

    def __init__(self, workspace_option: Path | None) -> None:
        self.workspace_option = workspace_option
        self._workspace: Workspace | None = None

    def workspace(self) -> Workspace:
        if self._workspace is None:
            from ..workspace import Workspace  # here, not at the top: --version and --help need no workspace

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
      arcticcodex init my-project && cd my-project     # also makes the signing key "dataset"
      arcticcodex vault import ~/docs
      arcticcodex distill --from-vault --out datasets/v1
    """
    ctx.obj = CliState(workspace)
    # pypdf reports recoverable damage ("EOF marker not found") as warnings; a file it cannot read
    # raises and is reported by the import itself, so the warnings are only noise on the terminal.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


cli.commands = LazyCommands(COMMANDS)  # a new command: one line in COMMANDS


def main() -> None:
    """Console-script entry point for ``arcticcodex`` and ``acx``."""
    sys.exit(cli.main(prog_name=Path(sys.argv[0]).name or "arcticcodex"))
