"""``arcticcodex init``: create a workspace."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import CONFIG_NAME
from ..workspace import Workspace


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", default=".arcticcodex", show_default=True, help="Data folder name, inside DIRECTORY.")
@click.pass_context
def init(ctx: click.Context, directory: Path | None, data_dir: str) -> None:
    """Create a workspace in DIRECTORY (default: --workspace, else the current folder).

    Writes arcticcodex.toml and a data folder holding the SQLite database, keys/ and runs/.  Running
    it again on an existing workspace changes no configuration; it only completes the layout and
    migrates the database.

    \b
    Example:
      arcticcodex init my-project
    """
    if directory is None:
        directory = ctx.find_root().params.get("workspace") or Path(".")
    workspace, created = Workspace.init(directory, data_dir=data_dir)
    if created:
        click.echo(f"Created workspace {workspace.root}")
    else:
        click.echo(f"Workspace {workspace.root} already exists; layout and database are up to date")
    click.echo(f"  config    {workspace.root / CONFIG_NAME}")
    click.echo(f"  database  {workspace.database_path}")
    click.echo(f"  keys      {workspace.keys_dir}")
    click.echo(f"  runs      {workspace.runs_dir}")
