"""``arcticcodex keys``: create, list, show and export signing keys.

Thin commands over :class:`~arcticcodex.provenance.KeyStore`.  Nothing here ever prints a secret:
output is names, algorithms, key ids, dates, file paths and public keys only.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..provenance import ALGORITHMS, ED25519, KeyInfo, KeyStore
from . import CliState, pass_state


def _store(state: CliState) -> KeyStore:
    return KeyStore(state.workspace().keys_dir)


@click.group()
def keys() -> None:
    """Create, list, show and export signing keys.

    Keys live in the workspace's keys/ folder (mode 0700); private key files are mode 0600 and are
    never printed, copied into a dataset or logged.  Ed25519 is the default: its public key lets
    anyone verify a dataset without being able to forge one.  HMAC-SHA256 keys are shared secrets,
    for local integrity checks only.
    """


@keys.command("new")
@click.argument("name")
@click.option(
    "--algorithm",
    "-a",
    type=click.Choice(ALGORITHMS),
    default=ED25519,
    show_default=True,
    help="ed25519 for signatures others verify; hmac-sha256 for a shared secret.",
)
@pass_state
def new(state: CliState, name: str, algorithm: str) -> None:
    """Create a new key called NAME (an existing key is never overwritten).

    \b
    Example:
      arcticcodex keys new dataset
      arcticcodex keys new local-cache --algorithm hmac-sha256
    """
    store = _store(state)
    info = store.create(name, algorithm)
    click.echo(f"Created {info.algorithm} key {info.name!r}")
    click.echo(f"  key id       {info.key_id}")
    click.echo(f"  private key  {store.private_key_path(info.name)}  (mode 0600; keep it secret)")
    if info.public_key_path is not None:
        click.echo(f"  public key   {info.public_key_path}")
    click.echo(f"  metadata     {store.metadata_path(info.name)}")
    click.echo(f'Sign datasets with it: set key = "{info.name}" under [signing] in arcticcodex.toml')


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@pass_state
def list_keys(state: CliState, as_json: bool) -> None:
    """List the workspace's keys: name, algorithm, key id and creation time.

    \b
    Example:
      arcticcodex keys list
      arcticcodex keys list --json
    """
    store = _store(state)
    infos = store.list()
    if as_json:
        click.echo(json.dumps([info.to_json() for info in infos], indent=2))
        return
    if not infos:
        click.echo(f"No keys in {store.keys_dir}; create one with `arcticcodex keys new NAME`")
        return
    rows = [("NAME", "ALGORITHM", "KEY ID", "CREATED")]
    rows += [(info.name, info.algorithm, info.key_id, info.created_at) for info in infos]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        click.echo("  ".join([*cells, row[3]]))


@keys.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_state
def show(state: CliState, name: str, as_json: bool) -> None:
    """Show one key's metadata and, for Ed25519, its public key.

    NAME is a key's name or the first 8 or more hex digits of its key id.

    \b
    Example:
      arcticcodex keys show dataset
      arcticcodex keys show 3fa2c1d9 --json
    """
    store = _store(state)
    info = store.info(name)
    public = store.public_pem(info.name).decode("ascii") if info.public_key_path is not None else None
    if as_json:
        click.echo(json.dumps(_show_json(store, info, public), indent=2))
        return
    click.echo(f"name         {info.name}")
    click.echo(f"algorithm    {info.algorithm}")
    click.echo(f"key id       {info.key_id}")
    click.echo(f"created      {info.created_at}")
    click.echo(f"private key  {store.private_key_path(info.name)}")
    if public is None:
        click.echo("public key   none: an HMAC key is a shared secret; share it out of band")
    else:
        click.echo(f"public key   {info.public_key_path}")
        click.echo(public, nl=False)


def _show_json(store: KeyStore, info: KeyInfo, public: str | None) -> dict[str, str | None]:
    return {
        **info.to_json(),
        "private_key_path": str(store.private_key_path(info.name)),
        "public_key_path": str(info.public_key_path) if info.public_key_path else None,
        "public_key_pem": public,
    }


@keys.command("export-public")
@click.argument("name")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the PEM to this file (atomically) instead of standard output.",
)
@pass_state
def export_public(state: CliState, name: str, output: Path | None) -> None:
    """Print (or write) the public key of Ed25519 key NAME as PEM, to ship beside a dataset.

    HMAC keys have no public part and are refused.

    \b
    Example:
      arcticcodex keys export-public dataset > dataset.pub
      arcticcodex keys export-public dataset -o my-dataset/keys/dataset.pub
    """
    store = _store(state)
    if output is None:
        click.echo(store.public_pem(name).decode("ascii"), nl=False)
        return
    info = store.info(name)
    store.export_public(info.name, output)
    click.echo(f"Wrote the public key of {info.name!r} (key id {info.key_id}) to {output}", err=True)
