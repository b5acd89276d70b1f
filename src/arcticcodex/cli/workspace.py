"""``arcticcodex init``: create a workspace, ready to distil: its signing key and a .gitignore included."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import CONFIG_NAME
from ..errors import ConfigError
from ..provenance import KeyStore, check_key_name
from ..provenance.ownkeys import create_trusted_key
from ..workspace import Workspace

DEFAULT_SIGNING_KEY = "dataset"


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", default=".arcticcodex", show_default=True, help="Data folder name, inside DIRECTORY.")
@click.pass_context
def init(ctx: click.Context, directory: Path | None, data_dir: str) -> None:
    """Create a workspace in DIRECTORY (default: --workspace, else the current folder).

    Writes arcticcodex.toml, a data folder holding the SQLite database, keys/ and runs/, the Ed25519
    signing key "dataset" (trusted, as `keys new` makes it) and a .gitignore line that keeps the data
    folder out of git (an existing .gitignore is only appended to).  Running it again on an existing
    workspace changes no configuration; it only completes the layout, makes the signing key named
    under [signing] if it is missing, and migrates the database.

    \b
    Example:
      arcticcodex init my-project
    """
    if directory is None:
        directory = ctx.find_root().params.get("workspace") or Path(".")
    workspace, created = Workspace.init(directory, data_dir=data_dir)
    ignored = workspace.ensure_gitignore()  # first: the private key is made in a folder git already ignores
    key = _signing_key(workspace)
    if created:
        click.echo(f"Created workspace {workspace.root}")
    else:
        click.echo(f"Workspace {workspace.root} already exists; layout and database are up to date")
    click.echo(f"  config       {workspace.root / CONFIG_NAME}")
    click.echo(f"  database     {workspace.database_path}")
    click.echo(f"  keys         {workspace.keys_dir}")
    click.echo(f"  signing key  {key}")
    click.echo(f"  runs         {workspace.runs_dir}")
    click.echo(f"  .gitignore   {ignored}")


def _signing_key(workspace: Workspace) -> str:
    """Make the key [signing] names (``dataset`` when it names none) unless it exists; say which it is."""
    name = workspace.config.signing_key or DEFAULT_SIGNING_KEY
    store = KeyStore(workspace.keys_dir)
    try:
        check_key_name(name)
    except ConfigError as exc:
        raise ConfigError(f"{workspace.config.path}: [signing] key: {exc}") from exc
    if store.metadata_path(name).exists() or store.private_key_path(name).exists():
        return f"{name} (already there)"
    info, _ = create_trusted_key(store, name, origin=f"created by `init` in {workspace.root}")
    return f"{name}: new {info.algorithm} key, key id {info.key_id[:16]}…, trusted (datasets it signs verify as yours)"
