"""``arcticcodex forge``: encode, decode, validate, canonicalize and diff ForgeNumerics-S."""

from __future__ import annotations

import click


@click.group()
def forge() -> None:
    """Work with ForgeNumerics-S tokens, frames and .fn documents."""
