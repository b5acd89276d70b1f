"""``arcticcodex teachers`` and ``arcticcodex refine``: configure and trust teachers, run the loop on a text."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from .. import configfile
from .._sync import run_sync
from ..configteachers import RESPONSE_FORMATS
from ..errors import ConfigError, UserError
from ..refine import TeacherRouter
from ..teachers.entries import (
    KEYLESS_PRESETS,
    PRESETS,
    TeacherConfig,
    check_teacher_name,
    load_teachers,
    teacher_from_entry,
)
from ..teachers.factory import build_pool
from ..teachers.ping import ping_teachers
from ..teachers.results import ROLES, EvidenceItem
from ..teachers.trust import TrustedTeachers
from ..terminal import escape_controls
from ..vault.embeddings import backend_named
from . import CliState, pass_state


@click.group()
def teachers() -> None:
    """Configure the models that critique, verify and rewrite (any OpenAI-compatible endpoint).

    An entry receives prompts and its API key only once you trusted it: `teachers add` trusts what it
    writes; an entry written by hand, or in a folder you cloned, waits for `teachers trust NAME`
    (a cloned arcticcodex.toml could otherwise send $GITHUB_TOKEN to a server of its choosing).
    """


@teachers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: CliState, as_json: bool) -> None:
    """List configured teachers (the offline local judge is used when there are none).

    \b
    Example:
      arcticcodex teachers list --json
    """
    workspace = state.workspace()
    configs, pool = load_teachers(workspace.config)
    rows: list[dict[str, Any]] = [
        {
            "name": c.name,
            "preset": c.preset,
            "model": c.model,
            "base_url": c.base_url,
            "api_key_env": None if c.api_key_file else c.api_key_env,
            "api_key_file": c.api_key_file,
            "key_set": bool(
                Path(c.api_key_file).is_file() if c.api_key_file else c.api_key_env and os.environ.get(c.api_key_env)
            ),
            "key_needed": c.preset not in KEYLESS_PRESETS,
            "replicas": list(c.replicas),
            "roles": list(c.roles),
            "trusted": c.trusted,
            "concurrency": c.concurrency,
            "response_format": c.response_format,
            "prices_per_million": [c.price_input, c.price_cached_input, c.price_output],
        }
        for c in configs
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "teachers": rows,
                    "critics": list(pool.critics),
                    "aggregate": pool.aggregate,
                    "budget_usd": pool.budget_usd,
                },
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("No teachers configured: the offline local judge (no LLM) reviews texts.")
        click.echo("Add one with: arcticcodex teachers add NAME --preset deepseek")
    for row in rows:
        key = "" if not row["api_key_env"] else f"  key {row['api_key_env']} {'set' if row['key_set'] else 'NOT SET'}"
        if row["api_key_file"]:
            key = f"  key file {'present' if row['key_set'] else 'MISSING'}"
        elif not row["key_needed"] and not row["key_set"] and row["preset"] != "local":
            key = f"  no key needed (a local {row['preset']} server)"
        if row["replicas"]:
            key += f"  +{len(row['replicas'])} replica(s)"
        roles = ",".join(row["roles"])
        trust = "" if row["trusted"] else f"  NOT TRUSTED (run `arcticcodex teachers trust {row['name']}`)"
        line = f"{row['name']:16} {row['preset']:9} {row['model']:24} {row['base_url']}  roles {roles}{key}{trust}"
        click.echo(escape_controls(line))  # every field came from a file someone may have handed over


@teachers.command()
@click.argument("name")
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    required=True,
    help="Fills URL, key variable, prices (vllm, ollama: local servers, no API key needed).",
)
@click.option("--base-url", help="Endpoint, e.g. http://127.0.0.1:8000/v1 for vLLM.")
@click.option("--model", help="Model name the endpoint serves.")
@click.option("--api-key-env", help="Environment variable holding the API key (never the key itself).")
@click.option("--roles", default=",".join(ROLES), show_default=True, help="Comma-separated roles.")
@click.option("--concurrency", type=int, help="Requests in flight at once to this endpoint.")
@click.option(
    "--response-format",
    type=click.Choice(RESPONSE_FORMATS),
    help="How replies are constrained: json_schema (the server decodes to each reply's JSON schema: "
    "OpenAI, vLLM, Ollama), json_object (JSON mode plus one re-ask: DeepSeek) or none.  Default: the preset's.",
)
@pass_state
def add(
    state: CliState,
    name: str,
    preset: str,
    base_url: str | None,
    model: str | None,
    api_key_env: str | None,
    roles: str,
    concurrency: int | None,
    response_format: str | None,
) -> None:
    """Add a teacher to arcticcodex.toml (and trust it: you wrote it).

    NAME is 1-64 letters, digits, '.', '_' or '-'; --base-url an http:// or https:// URL.  The API
    key is read from the environment variable the preset names (or --api-key-env) when the teacher is
    used; the local-server presets vllm and ollama need none.

    \b
    Example:
      arcticcodex teachers add gpu --preset vllm --base-url http://127.0.0.1:8000/v1 --model qwen2.5-7b
      arcticcodex teachers add ds --preset deepseek --roles critic,verifier
      arcticcodex teachers add old --preset vllm --model qwen2.5-7b --response-format json_object
    """
    workspace = state.workspace()
    check_teacher_name(name)
    entry: dict[str, object] = {
        "name": name,
        "preset": preset,
        "roles": [r.strip() for r in roles.split(",") if r.strip()],
    }
    for key, value in (
        ("base_url", base_url),
        ("model", model),
        ("api_key_env", api_key_env),
        ("concurrency", concurrency),
        ("response_format", response_format),
    ):
        if value is not None:
            entry[key] = value
    config = teacher_from_entry(entry, where=f"teachers add {name}")  # validates before anything is written
    workspace.config = configfile.add_teacher(workspace.config.path, config.to_toml())
    _trust(state, name, origin="`teachers add`")
    click.echo(f"added teacher {name} ({config.preset}, {config.model} at {config.base_url or 'local'}); trusted")
    if config.preset in KEYLESS_PRESETS - {"local"}:  # the local judge is no server: nothing to say
        optional = ""
        if config.api_key_env and not os.environ.get(config.api_key_env):
            optional = f" (if yours was started with --api-key, set {config.api_key_env} to that key)"
        click.echo(f"no API key needed: a local {config.preset} server takes none{optional}")
    elif config.preset not in KEYLESS_PRESETS and config.api_key_env and not os.environ.get(config.api_key_env):
        click.echo(f"note: set {config.api_key_env} in the environment before using it", err=True)


@teachers.command()
@click.argument("name")
@pass_state
def remove(state: CliState, name: str) -> None:
    """Remove a teacher from arcticcodex.toml.

    \b
    Example:
      arcticcodex teachers remove gpu
    """
    workspace = state.workspace()
    workspace.config = configfile.remove_teacher(workspace.config.path, name)
    click.echo(f"removed teacher {name}")


@teachers.command("trust")
@click.argument("name")
@pass_state
def trust(state: CliState, name: str) -> None:
    """Trust the teacher entry NAME as arcticcodex.toml has it now: its URL(s) and key source.

    Read the entry first: it decides where your prompts, your vault's evidence and the API key go.
    Editing its base_url, replicas or key source later needs a new `teachers trust`.

    \b
    Example:
      arcticcodex teachers trust deepseek
    """
    config = _entry(state, name)
    entry = _trust(state, name, origin="`teachers trust`")
    urls = [entry["base_url"], *entry["replicas"]]
    click.echo(f"trusted teacher {escape_controls(name)!r}: requests go to")
    for url in urls:
        click.echo(f"  {escape_controls(url)}   (host {escape_controls(urlsplit(url).hostname or '?')})")
    click.echo(f"  key from    {escape_controls(entry['key_source'])}")
    click.echo(f"  recorded in {TrustedTeachers.for_user().path}")
    plain = [url for url in urls if url.startswith("http://")]
    if plain and not all(_loopback_url(url) for url in plain):
        click.echo(
            "note: plain http:// beyond this machine: prompts and the key cross the network unencrypted", err=True
        )
    root = state.workspace().root.resolve()
    if config.api_key_file and not Path(config.api_key_file).is_relative_to(root):
        click.echo(f"note: the key file lies outside this workspace ({root}); check that it is the one you meant")


@teachers.command("untrust")
@click.argument("name")
@pass_state
def untrust(state: CliState, name: str) -> None:
    """Stop trusting the teacher entry NAME (it stays in arcticcodex.toml, unused until trusted again).

    \b
    Example:
      arcticcodex teachers untrust deepseek
    """
    config = _entry(state, name)
    if not TrustedTeachers.for_user().untrust(config):
        raise ConfigError(f"teacher {name!r} (as arcticcodex.toml has it now) was not trusted")
    click.echo(f"teacher {name!r} is no longer trusted")


def _entry(state: CliState, name: str) -> TeacherConfig:
    workspace = state.workspace()
    configs, _ = load_teachers(workspace.config)
    for config in configs:
        if config.name == name:
            if config.preset == "local":
                raise ConfigError(f"teacher {name!r} is the offline local judge: it sends nothing anywhere")
            return config
    known = ", ".join(config.name for config in configs) or "none"
    raise ConfigError(f"no teacher named {name!r} in {workspace.config.path}; teachers there: {known}")


def _trust(state: CliState, name: str, *, origin: str) -> dict[str, Any]:
    config = _entry(state, name)
    return TrustedTeachers.for_user().trust(config, workspace=state.workspace().root, origin=origin)


def _loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # 127.evil.example is a name, not 127.0.0.0/8
    except ValueError:
        return False


@teachers.command()
@click.argument("names", nargs=-1)
@pass_state
def ping(state: CliState, names: tuple[str, ...]) -> None:
    """Check that teachers answer: list the models each endpoint serves, and what is wrong with each that does not.

    Every teacher is asked (each replica too), whatever the others answer.  Exit status 0 when all
    answered, 1 when one failed, 2 when none failed but one is not trusted yet (it is asked nothing).

    \b
    Example:
      arcticcodex teachers ping
      arcticcodex teachers ping deepseek gpu
    """
    workspace = state.workspace()
    configs, _ = load_teachers(workspace.config)
    unknown = [name for name in names if name not in {c.name for c in configs}]
    if unknown or not configs:
        known = ", ".join(c.name for c in configs) or "none (add one with `arcticcodex teachers add`)"
        what = f"no teacher named {', '.join(map(repr, unknown))}" if unknown else "no teachers configured"
        raise ConfigError(f"{what} in {workspace.config.path}; teachers there: {known}")
    selected = [c for c in configs if not names or c.name in names]
    results = run_sync(ping_teachers(selected))
    for result in results:
        outcome = {"ok": "", "failed": "FAILED: ", "untrusted": "NOT TRUSTED: "}[result.status] + result.outcome
        where = f" {result.url}" if result.url else ""
        click.echo(escape_controls(f"{result.teacher}:{where}: {outcome}"))  # names and URLs come from the file
        if result.hint:
            click.echo(escape_controls(f"  hint: {result.hint}"))
    statuses = {result.status for result in results}
    if "failed" in statuses:
        raise click.exceptions.Exit(1)
    if "untrusted" in statuses:
        raise click.exceptions.Exit(2)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--evidence",
    "evidence_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Evidence file (repeatable); each becomes one numbered item.",
)
@click.option("--instruction", default="", help="What the text answers (the critic checks it is answered).")
@click.option(
    "--threshold", type=click.FloatRange(0, 1), default=0.8, show_default=True, help="Score needed to accept."
)
@click.option(
    "--max-rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Critiques at most (rewrites: one fewer).",
)
@click.option("--teachers", "only", help="Comma-separated teacher names to use (default: all configured).")
@click.option("--budget-usd", type=float, help="Stop making calls once this much is spent.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@pass_state
def refine(
    state: CliState,
    file: Path,
    evidence_files: tuple[Path, ...],
    instruction: str,
    threshold: float,
    max_rounds: int,
    only: str | None,
    budget_usd: float | None,
    as_json: bool,
) -> None:
    """Run the draft → critique → verify → rewrite loop on the text in FILE.

    --json prints {"accepted", "score", "final_text", "rounds", "failure", …}.  Exit status 1 when the
    loop failed (a teacher could not answer), 0 otherwise (accepted or not).

    \b
    Example:
      arcticcodex refine answer.txt --evidence notes.md --evidence faq.md --json
    """
    workspace = state.workspace()
    draft = _read_text(file)
    evidence = [
        EvidenceItem(number=n, text=_read_text(path), source=str(path)) for n, path in enumerate(evidence_files, 1)
    ]
    names = [name.strip() for name in only.split(",")] if only else None
    model = workspace.config.vault.embedding_model
    pool = build_pool(workspace, budget_usd=budget_usd, only=names, local_embedder=backend_named(model))
    router = TeacherRouter(pool, threshold=threshold, max_rounds=max_rounds)
    result = router.refine_sync(draft, evidence, instruction=instruction)
    if as_json:
        click.echo(json.dumps({**result.to_json(), "ledger": pool.ledger.to_json()}, indent=2, ensure_ascii=False))
    else:
        for r in result.rounds:
            click.echo(
                f"round {r.number}: score {r.score if r.score is not None else '—'}"
                + (f"  ({r.failure})" if r.failure else "")
            )
        click.echo(f"{result.status.upper()}  score {result.score}  cost ${result.cost_usd:.4f}")
        click.echo(result.final_text)
    if result.status == "failed":
        if not as_json:
            click.echo(f"failure: {result.failure}", err=True)
        raise click.exceptions.Exit(1)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        # from None: the UnicodeDecodeError adds nothing the message does not already say
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); convert it, e.g. iconv -t utf-8") from None
