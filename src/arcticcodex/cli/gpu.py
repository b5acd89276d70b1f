"""``arcticcodex gpu``: rent Vast.ai GPUs running vLLM as teachers, within a budget, and tear them down.

Twelve commands, each a thin layer over :class:`~arcticcodex.gpu.VastInstanceManager` with its help,
example and ``--json``; the length is their options and help text.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, TunnelError
from ..gpu import GpuBudget, OfferQuery, VastInstanceManager, VllmProvisioner, VllmSpec
from ..gpu.budget import save_budget
from ..gpu.manager import provisioner_for
from ..gpu.offers import Offer
from ..gpu.provisioner import DEFAULT_IMAGE, DEFAULT_MODEL
from . import CliState, pass_state

_DURATION = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType[float]):
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` → seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = _DURATION.match(str(value))
        if not match or float(match.group(1)) <= 0:
            self.fail(f"{value!r} is not a duration such as 90s, 30m, 2h or 1d", param, ctx)
        return float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]


def _search_options(command: Any) -> Any:
    options = [
        click.option(
            "--min-vram-gb", type=click.FloatRange(min=1), default=16.0, show_default=True, help="GPU memory per GPU."
        ),
        click.option("--gpu", "gpus", multiple=True, help='GPU model, e.g. "RTX 4090" or "H100 SXM" (repeatable).'),
        click.option("--max-price", type=click.FloatRange(min=0.001), help="Most dollars per hour, storage included."),
        click.option(
            "--min-reliability",
            type=click.FloatRange(0, 1),
            default=0.98,
            show_default=True,
            help="Host reliability Vast measures (0-1).",
        ),
        click.option("--num-gpus", type=click.IntRange(min=1), default=1, show_default=True, help="GPUs per instance."),
        click.option(
            "--disk-gb",
            type=click.FloatRange(min=8),
            default=60.0,
            show_default=True,
            help="Disk for the image and the weights (priced in).",
        ),
        click.option("--region", "regions", multiple=True, help="Two-letter country code (repeatable)."),
        click.option(
            "--order",
            type=click.Choice(["price", "flops_per_dollar", "reliability"]),
            default="price",
            show_default=True,
            help="Cheapest first, most TFLOPS per dollar, or most reliable.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _query(options: dict[str, Any], limit: int = 20) -> OfferQuery:
    return OfferQuery(
        min_vram_gb=options["min_vram_gb"],
        gpu_names=tuple(options["gpus"]),
        max_price=options["max_price"],
        min_reliability=options["min_reliability"],
        num_gpus=options["num_gpus"],
        disk_gb=options["disk_gb"],
        regions=tuple(r.upper() for r in options["regions"]),
        order_by=options["order"],
        limit=limit,
    )


def _manager(
    state: CliState, *, budget_usd: float | None = None, run_budget_usd: float | None = None
) -> VastInstanceManager:
    """The workspace's manager, as the library makes it from ``[gpu]``; --budget-usd/--run-budget-usd win."""
    workspace = state.workspace()
    settings = workspace.config.gpu
    budget = GpuBudget(
        budget_usd if budget_usd is not None else settings.budget_usd,
        run_budget_usd if run_budget_usd is not None else settings.run_budget_usd,
    )
    manager = VastInstanceManager(workspace, budget=budget)
    click.get_current_context().call_on_close(manager.close)
    return manager


def _provisioner(state: CliState) -> VllmProvisioner:
    provisioner = provisioner_for(state.workspace())
    click.get_current_context().call_on_close(provisioner.close)
    return provisioner


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2))


@click.group()
def gpu() -> None:
    """Rent GPUs on Vast.ai that serve a model with vLLM as a teacher (VAST_API_KEY from the environment).

    \b
    Example:
      export VAST_API_KEY=...
      arcticcodex gpu search --min-vram-gb 24 --max-price 0.6
      arcticcodex gpu up --model Qwen/Qwen2.5-7B-Instruct --max-price 0.6 --ttl 4h --budget-usd 5
      arcticcodex distill --prompts prompts.jsonl --out datasets/v1 --teachers gpu
      arcticcodex gpu down --all
    """


@gpu.command("search")
@_search_options
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Most offers to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the offers as a JSON list.")
@pass_state
def search(state: CliState, /, limit: int, as_json: bool, **options: Any) -> None:
    """Search rentable offers (verified hosts, direct ports, recent CUDA), cheapest first.

    \b
    Example:
      arcticcodex gpu search --min-vram-gb 40 --max-price 1.0 --gpu "A100 SXM4" --gpu "H100 SXM" --json
    """
    provisioner = _provisioner(state)
    offers = provisioner.client.search_offers(_query(options, limit))
    if as_json:
        _echo_json([offer.as_dict() for offer in offers])
        return
    if not offers:
        click.echo("no offers match; relax --min-vram-gb, --max-price, --gpu or --min-reliability")
        return
    table = Table("offer", "gpu", "GB", "$/h", "$/TF·h", "rel.", "location", "machine")
    for column in table.columns[:6]:
        column.no_wrap = True  # ids and numbers are never cut; a long location wraps instead
    for offer in offers:
        table.add_row(
            str(offer.id),
            f"{offer.num_gpus}× {offer.gpu_name}",
            f"{offer.gpu_ram_gb:g}",
            f"{offer.dph_total:.3f}",
            f"{offer.dollars_per_tflop_hour:.4f}" if offer.total_flops else "—",
            f"{offer.reliability:.3f}",
            offer.geolocation,
            str(offer.machine_id),
        )
    Console().print(table)


@gpu.command("up")
@click.option("--offer", "offer_id", type=int, help="Rent this offer (from `gpu search`); else the best match.")
@_search_options
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Hugging Face model vLLM serves.")
@click.option("--served-name", default="", help="Model id clients send (default: the model).")
@click.option("--max-model-len", type=click.IntRange(min=256), help="Cap the context so the KV cache fits.")
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="The vLLM image the instance runs.")
@click.option("--teacher", default="gpu", show_default=True, help="Register as this vllm teacher ('' for none).")
@click.option("--run", default="default", show_default=True, help="Budget group for --run-budget-usd.")
@click.option("--hours", type=click.FloatRange(min=0.01), help="Runway the budget must cover (default: TTL or 1 h).")
@click.option("--ttl", type=Duration(), help="Destroy after this long, e.g. 4h.")
@click.option("--idle", type=Duration(), help="Stop after this long without requests, e.g. 30m.")
@click.option(
    "--budget-usd", type=click.FloatRange(min=0), help="Total GPU budget of the workspace (kept in [gpu] budget_usd)."
)
@click.option("--run-budget-usd", type=click.FloatRange(min=0), help="Budget of each run's instances (kept in [gpu]).")
@click.option("--local-port", type=click.IntRange(1, 65535), help="Local end of the tunnel (default: a free port).")
@click.option("--json", "as_json", is_flag=True, help="Print the instance as JSON.")
@pass_state
def up(
    state: CliState,
    /,
    offer_id: int | None,
    model: str,
    served_name: str,
    max_model_len: int | None,
    image: str,
    teacher: str,
    run: str,
    hours: float | None,
    ttl: float | None,
    idle: float | None,
    budget_usd: float | None,
    run_budget_usd: float | None,
    local_port: int | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Rent a GPU running vLLM, wait until it serves, tunnel to it and register it as a teacher.

    Any failure after the rental (boot deadline, crash while loading, vLLM never answering) destroys
    the instance before the error is shown.  The tunnel keeps running after this command returns;
    `gpu down` closes it.

    \b
    Example:
      arcticcodex gpu up --gpu "RTX 4090" --max-price 0.5 --model Qwen/Qwen2.5-7B-Instruct --ttl 3h --idle 30m
    """
    manager = _manager(state, budget_usd=budget_usd, run_budget_usd=run_budget_usd)
    if budget_usd is not None or run_budget_usd is not None:
        save_budget(manager.workspace, GpuBudget(budget_usd, run_budget_usd))  # later commands enforce it too
    offer = _choose_offer(manager, offer_id, options)
    spec = VllmSpec(
        model=model, served_model_name=served_name, max_model_len=max_model_len, image=image, disk_gb=options["disk_gb"]
    )
    console = Console(stderr=True)
    status = console.status(f"renting offer {offer.id}: {offer.num_gpus}× {offer.gpu_name} at ${offer.dph_total:.3f}/h")
    phases = {
        "launched": "instance {instance_id} rented; waiting for it to boot (the vLLM image is large: minutes)",
        "tunnel_opened": "SSH tunnel open on 127.0.0.1:{local_port}; waiting for vLLM to load {model}",
    }

    def show(event: dict[str, Any]) -> None:
        if event["event"] in phases:
            status.update(phases[event["event"]].format(**{"local_port": "?", **event, "model": spec.served_name}))

    manager.store.listeners.append(show)
    with status if not as_json else contextlib.nullcontext():
        record = manager.up(
            offer, spec, run=run, teacher=teacher or None, hours=hours, ttl_s=ttl, idle_s=idle, local_port=local_port
        )
    if as_json:
        _echo_json(record.as_json(time.time()))
        return
    click.echo(
        f"instance {record.instance_id} ready: {spec.served_name} at http://127.0.0.1:{record.local_port}/v1"
        + (f", registered as teacher {teacher!r}" if teacher else "")
    )


def _choose_offer(manager: VastInstanceManager, offer_id: int | None, options: dict[str, Any]) -> Offer:
    offers = manager.search(_query(options, 50))
    if offer_id is not None:
        for offer in offers:
            if offer.id == offer_id:
                return offer
        raise ConfigError(f"offer {offer_id} is not rentable with these filters; run `arcticcodex gpu search`")
    if not offers:
        raise ConfigError("no offer matches; relax --min-vram-gb, --max-price, --gpu or --min-reliability")
    return offers[0]


@gpu.command("ls")
@click.option("--all", "show_all", is_flag=True, help="Include destroyed instances.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def ls(state: CliState, show_all: bool, as_json: bool) -> None:
    """List this workspace's instances (after enforcing TTLs, idle stops and budgets).

    \b
    Example:
      arcticcodex gpu ls --json
    """
    manager = _manager(state)
    actions = manager.enforce()
    now = time.time()
    records = manager.instances(include_destroyed=show_all)
    if as_json:
        _echo_json({"instances": [r.as_json(now) for r in records], "actions": actions})
        return
    for action in actions:
        click.echo(action)
    if not records:
        click.echo("no instances" + ("" if show_all else " running (--all shows destroyed ones)"))
        return
    table = Table("instance", "status", "gpu", "model", "$/h", "cost $", "age", "tunnel")
    for index in (0, 4, 5, 7):
        table.columns[index].no_wrap = True
    for r in records:
        table.add_row(
            str(r.instance_id or "—"),
            r.status + (f" ({r.reason})" if r.reason and r.status == "destroyed" else ""),
            f"{r.num_gpus}× {r.gpu_name}",
            r.served_model,
            f"{r.running_rate:.3f}",
            f"{r.cost(now):.4f}",
            f"{(now - r.created_at) / 60:.0f} min",
            f"127.0.0.1:{r.local_port}" if r.local_port and r.status == "ready" else "—",
        )
    Console().print(table)


@gpu.command("tunnel")
@click.argument("instance_id", type=int)
@click.option("--local-port", type=click.IntRange(1, 65535), help="Local end of the tunnel.")
@click.option("--watch", is_flag=True, help="Stay: reopen the tunnel when it dies, enforce budgets, until Ctrl-C.")
@pass_state
def tunnel(state: CliState, instance_id: int, local_port: int | None, watch: bool) -> None:
    """Open (or reopen) the SSH tunnel to an instance's vLLM.

    \b
    Example:
      arcticcodex gpu tunnel 7835610 --watch
    """
    manager = _manager(state)
    opened = manager.tunnel(instance_id, local_port=local_port)
    click.echo(f"tunnel to instance {instance_id}: {opened.url}")
    while watch:
        time.sleep(manager.poll_interval)
        for action in manager.enforce():
            click.echo(action)
        record = manager.store.by_instance(instance_id)
        if record is None or record.status != "ready":
            click.echo(f"instance {instance_id} is {record.status if record else 'gone'}; stopping")
            return
        try:
            current = manager.tunnel(instance_id)
        except TunnelError as error:
            click.echo(f"tunnel down ({error}); retrying in {manager.poll_interval:g} s")
            continue
        if current.pid != opened.pid:
            opened = current
            click.echo(f"tunnel reopened: {opened.url}")


@gpu.command("watch")
@click.option("--interval", type=Duration(), help="Seconds between checks (default: [gpu] poll_interval_s).")
@pass_state
def watch(state: CliState, interval: float | None) -> None:
    """Stay and enforce: TTLs, idle stops, budgets, lost instances and dead tunnels, until Ctrl-C.

    Instances also destroy themselves when their --ttl passes, but budgets and idle stops need a
    process that looks: run this beside a long job (or from cron, `arcticcodex gpu ls` does one check).

    \b
    Example:
      arcticcodex gpu watch --interval 1m
    """
    manager = _manager(state)
    interval = interval or manager.poll_interval
    while True:
        for action in manager.enforce():
            click.echo(f"{time.strftime('%H:%M:%S')} {action}")
        for record in manager.instances():
            if record.status == "ready" and record.instance_id is not None:
                try:
                    if manager.tunnel(record.instance_id).pid != record.tunnel_pid:
                        click.echo(f"{time.strftime('%H:%M:%S')} {record.instance_id}: tunnel reopened")
                except TunnelError as error:
                    click.echo(f"{time.strftime('%H:%M:%S')} {record.instance_id}: {error}")
        time.sleep(interval)


@gpu.command("stop")
@click.argument("instance_id", type=int)
@pass_state
def stop(state: CliState, instance_id: int) -> None:
    """Stop an instance (its disk is kept and still billed; `gpu start` resumes it).

    \b
    Example:
      arcticcodex gpu stop 7835610
    """
    _manager(state).stop(instance_id)
    click.echo(f"instance {instance_id} stopped")


@gpu.command("start")
@click.argument("instance_id", type=int)
@pass_state
def start(state: CliState, instance_id: int) -> None:
    """Start a stopped instance again, wait for vLLM and reopen its tunnel.

    \b
    Example:
      arcticcodex gpu start 7835610
    """
    record = _manager(state).start(instance_id)
    click.echo(f"instance {instance_id} ready at http://127.0.0.1:{record.local_port}/v1")


@gpu.command("logs")
@click.argument("instance_id", type=int)
@click.option("--tail", type=click.IntRange(1, 10000), default=200, show_default=True, help="Lines to show.")
@pass_state
def logs(state: CliState, instance_id: int, tail: int) -> None:
    """The instance's container log (Vast's copy of it).

    \b
    Example:
      arcticcodex gpu logs 7835610 --tail 50
    """
    click.echo(_provisioner(state).client.request_logs(instance_id, tail=tail) or "(no log yet)")


@gpu.command("down")
@click.argument("instance_ids", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Destroy every instance of this workspace.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def down(state: CliState, instance_ids: tuple[int, ...], everything: bool, as_json: bool) -> None:
    """Close the tunnel and destroy instances (an instance already gone counts as destroyed).

    \b
    Example:
      arcticcodex gpu down 7835610
      arcticcodex gpu down --all
    """
    if not instance_ids and not everything:
        raise click.UsageError("name instance ids, or --all")
    manager = _manager(state)
    if everything:
        before = {r.instance_id for r in manager.instances() if r.instance_id}
        count = manager.cleanup_all()  # every tracked instance, interrupted launches, and untracked labelled ones
        if as_json:
            _echo_json({"destroyed": sorted(before), "count": count})
        else:
            click.echo(f"destroyed {count} instance(s)" if count else "nothing to destroy")
        return
    results = {instance_id: manager.down(instance_id) for instance_id in instance_ids}
    if as_json:
        _echo_json({"destroyed": list(results), "already_gone": [i for i, existed in results.items() if not existed]})
        return
    for instance_id, existed in results.items():
        click.echo(f"instance {instance_id} destroyed" + ("" if existed else " (it was already gone)"))


@gpu.command("cost")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def cost(state: CliState, as_json: bool) -> None:
    """What each instance has cost, from its rate and real elapsed time, and the total against the budget.

    \b
    Example:
      arcticcodex gpu cost --json
    """
    manager = _manager(state)
    now = time.time()
    records = manager.instances(include_destroyed=True)
    total = manager.get_total_cost()
    payload = {
        "instances": [r.as_json(now) for r in records],
        "total_usd": round(total, 6),
        "burn_usd_per_hour": round(sum(r.rate for r in records if r.live), 6),
        "budget_usd": manager.budget.total_usd,
        "run_budget_usd": manager.budget.run_usd,
    }
    if as_json:
        _echo_json(payload)
        return
    for r in records:
        click.echo(f"{r.instance_id or r.label}  {r.status:<9} {r.gpu_name:<12} ${r.cost(now):.4f}")
    budget = f" of ${manager.budget.total_usd:.2f}" if manager.budget.total_usd is not None else ""
    click.echo(f"total ${total:.4f}{budget}; burning ${payload['burn_usd_per_hour']:.3f}/h now")


@gpu.command("balance")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def balance(state: CliState, as_json: bool) -> None:
    """The Vast.ai account's credit in dollars.

    \b
    Example:
      arcticcodex gpu balance
    """
    credit = _provisioner(state).get_account_balance()
    if as_json:
        _echo_json({"credit_usd": credit})
    else:
        click.echo(f"${credit:.2f}")


@gpu.command("reap")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def reap(state: CliState, as_json: bool) -> None:
    """Destroy instances labelled as this workspace's that it lost track of, and enforce TTLs and budgets.

    \b
    Example:
      arcticcodex gpu reap
    """
    manager = _manager(state)
    actions = manager.enforce()
    reaped = manager.reap()
    if as_json:
        _echo_json({"reaped": reaped, "actions": actions})
        return
    for action in actions:
        click.echo(action)
    click.echo(f"reaped {len(reaped)} untracked instance(s)" + (f": {reaped}" if reaped else ""))
