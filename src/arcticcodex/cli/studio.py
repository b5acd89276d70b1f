"""``arcticcodex studio``: serve the web UI for this workspace."""

from __future__ import annotations

import os

import click

from ..errors import ConfigError
from ..studio import create_app, is_loopback
from . import CliState, pass_state

TOKEN_ENV = "ARCTICCODEX_STUDIO_TOKEN"  # noqa: S105 - the name of the variable, not a token


@click.command("studio")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="Port to listen on.")
@pass_state
def studio(state: CliState, host: str, port: int) -> None:
    """Serve the Studio: chat, vault explorer, review queue, datasets, runs and GPUs.

    Beyond loopback it needs a token in ARCTICCODEX_STUDIO_TOKEN; open the page once with ?token=….

    \b
    Example:
      arcticcodex studio --port 8765
    """
    import uvicorn

    token = os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < 16:
        raise ConfigError(f"{TOKEN_ENV} is too short to protect anything; use 16 or more random characters")
    app = create_app(state.workspace(), host=host, token=token)
    shown = host if is_loopback(host) else f"{host} (token required)"
    click.echo(f"Studio on http://{shown}:{port}/ — Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")
