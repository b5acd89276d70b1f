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
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Another name or address the Studio answers to (repeatable); any other Host gets 421.",
)
@pass_state
def studio(state: CliState, host: str, port: int, allow_hosts: tuple[str, ...]) -> None:
    """Serve the Studio: chat, vault explorer, review queue, datasets, runs and GPUs.

    Beyond loopback it needs a token in ARCTICCODEX_STUDIO_TOKEN; open the page once with ?token=….
    It answers only to localhost, 127.0.0.1, [::1], the --host address and the --allow-host names
    (against DNS rebinding), and acts only on requests from its own pages.

    \b
    Example:
      arcticcodex studio --port 8765
      arcticcodex studio --host 0.0.0.0 --allow-host 192.168.1.20   # with ARCTICCODEX_STUDIO_TOKEN set
    """
    import uvicorn

    token = os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < 16:
        raise ConfigError(f"{TOKEN_ENV} is too short to protect anything; use 16 or more random characters")
    app = create_app(state.workspace(), host=host, token=token, allowed_hosts=allow_hosts)
    shown = host if is_loopback(host) else f"{host} (token required)"
    click.echo(f"Studio on http://{shown}:{port}/ — Ctrl-C stops it")
    # No proxy is supported: X-Forwarded-* from a client must not change the scheme the Studio sees.
    # graceful shutdown waits at most 5 s for open live feeds, then the lifespan stops the Studio's runs
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
