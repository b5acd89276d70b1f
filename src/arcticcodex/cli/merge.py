"""``arcticcodex merge``: merge trained students with mergekit and keep the best candidate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UserError
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from . import CliState, pass_state


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The folder for the merged model.")
@click.option("--key", "key_name", help="The workspace key that signs the receipt (default: [signing] key).")
@click.option("--allow-untrusted", is_flag=True, help="Merge models whose receipts' signer you do not trust.")
@click.option("--keep-candidates", is_flag=True, help="Keep every candidate (in --out/work), not only the best.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def merge(
    state: CliState,
    config: Path,
    out: Path,
    key_name: str | None,
    allow_untrusted: bool,
    keep_candidates: bool,
    as_json: bool,
) -> None:
    """Merge the models CONFIG names with each method it lists; keep the one with the lowest held-out loss.

    CONFIG is TOML:

    \b
      models = ["models/v1", "models/v2"]     # folders from `arcticcodex train` (adapters or full)
      methods = ["linear", "ties", "slerp"]    # also dare_ties; slerp takes exactly two models
      heldout = "datasets/v1"                  # its validation split scores every candidate
      weights = [0.6, 0.4]                     # optional (default equal)
      density = 0.5                            # optional (ties, dare_ties)

    Each model's receipt is checked first.  mergekit runs as a subprocess
    (pip install 'arcticcodex[merge]').  --out gets `model/` and a signed `receipt.json` naming
    the parents by their receipts' digests, the method chosen, and every candidate's score.

    \b
    Example:
      arcticcodex merge merge.toml --out models/merged
      arcticcodex receipt verify models/merged
    """
    from ..training.merging import merge_models

    workspace = state.workspace()
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    try:
        result = merge_models(
            workspace,
            config,
            out,
            keyring=keyring,
            key=key_name,
            allow_untrusted=allow_untrusted,
            keep_candidates=keep_candidates,
            report=None if as_json else lambda line: click.echo(line, err=True),
        )
    except ImportError as exc:  # peft or transformers missing: the [train] extra
        raise UserError(f"merging needs the extra: pip install 'arcticcodex[train,merge]' ({exc})") from exc
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    for name, loss in sorted(result.scores.items(), key=lambda item: item[1]):
        chosen = "  ← kept" if name == result.best else ""
        click.echo(f"{loss:8.4f}  {name}{chosen}")
    click.echo(f"model: {result.model}  (held-out loss per assistant token; lower is better)")
    click.echo(f"receipt: {result.out / 'receipt.json'} (check it: arcticcodex receipt verify {result.out})")
