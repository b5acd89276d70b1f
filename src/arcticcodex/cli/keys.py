"""``arcticcodex keys``: signing keys (placeholder until the provenance commands land)."""

from __future__ import annotations

import click


@click.group()
def keys() -> None:
    """Create, list, show and export signing keys."""
