"""``arcticcodex keys``: create, list, show and export signing keys; trust the keys of others.

Thin commands over :class:`~arcticcodex.provenance.KeyStore` (the workspace's keys) and
:class:`~arcticcodex.provenance.trust.TrustedKeys` (the user's trusted signers, outside any
workspace).  Nothing here ever prints a secret: output is names, algorithms, key ids, dates, file
paths and public keys only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from ..errors import ConfigError
from ..fileio import read_plain_file
from ..provenance import ALGORITHMS, ED25519, KeyInfo, KeyStore, check_key_name
from ..provenance.ownkeys import create_trusted_key, free_trust_name
from ..provenance.signing import MAX_PUBLIC_KEY_BYTES
from ..provenance.trust import TrustedKeys
from ..terminal import escape_controls
from . import CliState, pass_state


def _store(state: CliState) -> KeyStore:
    return KeyStore(state.workspace().keys_dir)


@click.group()
def keys() -> None:
    """Create, list, show and export signing keys; trust other people's public keys.

    Keys live in the workspace's keys/ folder (mode 0700); private key files are mode 0600 and are
    never printed, copied into a dataset or logged.  Ed25519 is the default: its public key lets
    anyone verify a dataset without being able to forge one.  HMAC-SHA256 keys are shared secrets,
    for local integrity checks only.

    Trust is yours, not a folder's: `dataset verify` trusts a signer only if the key was made here
    (`keys new` records it) or you added it with `keys trust`.  The list lives in your config folder
    (ARCTICCODEX_CONFIG_DIR, else ~/.config/arcticcodex), never in a workspace or dataset.
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
      arcticcodex keys new release-2027
      arcticcodex keys new local-cache --algorithm hmac-sha256
    """
    store = _store(state)
    trusted = TrustedKeys.for_user()
    origin = f"created by `keys new` in {state.workspace().root}"
    info, _ = create_trusted_key(store, name, algorithm=algorithm, origin=origin, trusted=trusted)
    click.echo(f"Created {info.algorithm} key {info.name!r}")
    click.echo(f"  key id       {info.key_id}")
    click.echo(f"  private key  {store.private_key_path(info.name)}  (mode 0600; keep it secret)")
    if info.public_key_path is not None:
        click.echo(f"  public key   {info.public_key_path}")
    click.echo(f"  metadata     {store.metadata_path(info.name)}")
    click.echo(f"  trusted      yes: datasets it signs verify as trusted here ({trusted.path})")
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
    _echo_table(rows + [(info.name, info.algorithm, info.key_id, info.created_at) for info in infos])


def _echo_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Rows in aligned columns (the last one as it is, since it may be long)."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        click.echo("  ".join([*cells, row[-1]]))


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


@keys.command("trust")
@click.argument("public_key", metavar="FILE", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_name", help="Trust this workspace key instead (Ed25519 or HMAC), by name.")
@click.option("--name", help="What to call the signer (default: the file's or the key's name).")
@pass_state
def trust(state: CliState, public_key: Path | None, key_name: str | None, name: str | None) -> None:
    """Trust the Ed25519 public key in FILE (or the workspace key --key NAME): what it signs then verifies as trusted.

    Check first, out of band (from the signer, not from the dataset), that the key id printed here is
    theirs: a dataset folder can ship any key, and `keys trust` makes it count.  The list is yours
    (your config folder), so no workspace or dataset can add to it.  `keys new` trusts the keys it
    makes; --key is for keys made before ArcticCodex recorded trust, and for HMAC keys, whose secret
    never leaves the workspace (only its key id is recorded).

    \b
    Example:
      arcticcodex keys trust alice.pub --name alice
      arcticcodex keys trust datasets/from-alice/keys/3fa2….pub --name alice
      arcticcodex keys trust --key dataset
    """
    if public_key is not None and key_name is not None:
        raise click.UsageError("give the public key FILE or --key NAME, not both")
    trusted = TrustedKeys.for_user()
    if key_name is not None:
        store = _store(state)
        info = store.info(key_name)
        origin = f"`keys trust --key` in {state.workspace().root}"
        label = check_key_name(name) if name else free_trust_name(trusted, info.name, info.key_id)
        entry = trusted.trust_key(store.verifier(info.name), name=label, origin=origin)
    elif public_key is not None:
        pem = read_plain_file(public_key, limit=MAX_PUBLIC_KEY_BYTES, what="public key file")
        label = check_key_name(name) if name else _name_from_file(public_key)
        entry = trusted.trust_public_pem(pem, name=label, origin=f"`keys trust {public_key.resolve()}`")
    else:
        raise click.UsageError("give the public key FILE to trust, or --key NAME for a workspace key")
    click.echo(f"Trusted {entry.algorithm} key {entry.name!r}")
    click.echo(f"  key id  {entry.key_id}")
    click.echo("What it signs now verifies as trusted; `arcticcodex keys untrust` takes it back.")


@keys.command("untrust")
@click.argument("name")
def untrust(name: str) -> None:
    """Stop trusting the key called NAME (or whose key id starts with NAME, 8+ hex digits).

    \b
    Example:
      arcticcodex keys untrust alice
      arcticcodex keys untrust 3fa2c1d9
    """
    entry = TrustedKeys.for_user().remove(name)
    click.echo(f"No longer trusted: {entry.name!r} ({entry.algorithm}, key id {entry.key_id})")


@keys.command("trusted")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def trusted_keys(as_json: bool) -> None:
    """List the keys you trust: name, algorithm, key id, when and how each was added.

    \b
    Example:
      arcticcodex keys trusted
    """
    store = TrustedKeys.for_user()
    entries = store.list()
    if as_json:
        click.echo(json.dumps([entry.to_json() for entry in entries], indent=2))
        return
    if not entries:
        click.echo(f"No trusted keys in {store.path}; `keys new` and `keys trust FILE` add them")
        return
    rows = [("NAME", "ALGORITHM", "KEY ID", "ADDED", "HOW")]
    _echo_table(rows + [(e.name, e.algorithm, e.key_id, e.added_at, escape_controls(e.origin)) for e in entries])


def _name_from_file(path: Path) -> str:
    """The file's name without ``.pub`` when it makes a key name, else a plain one."""
    try:
        return check_key_name(path.name.removesuffix(".pub")[:64])
    except ConfigError:
        return "trusted-key"
