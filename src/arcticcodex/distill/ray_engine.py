"""A run's shards as Ray tasks: one machine's run spread over a cluster, exactly once, resumable.

Why Ray, and why not Ray's own checkpointing: Ray is the engine the peers use (distilabel, NeMo
Curator, datatrove) and it already schedules, retries and moves work between machines; but its data
checkpointing re-called every row after a crash when we measured it, and a teacher call is money.  So
each shard (:mod:`.shards`) is a Ray task running today's async worker loop against the shard's own
journal and request cache: Ray retries a shard whose worker died (``max_retries``), and the retry
skips what the shard had finished and answers what it had paid for from its cache.  The driver
(the ``distill`` process) waits, shows per-shard and total progress read from the shard journals,
merges them into the run's journal and publishes in task order, as a single-process run does.  Kill
the driver and run the same command again: finished shards are skipped, the others resume.

``address=None`` starts a Ray on this machine for the run, on 127.0.0.1 only, with no dashboard;
an address joins a cluster the user runs (whose workers need arcticcodex installed and the API keys
in their environment: keys are never shipped through Ray's object store).

What shards share (:mod:`.ray_actors`): each API teacher endpoint is governed by one Ray actor for
the whole run (an adaptive limit of at most the teacher's ``concurrency`` in flight, backing off on
429 and ``Retry-After``), and a run with a budget has one budget actor that every shard's ledger
consults before each call, so the run exceeds its budget by at most the calls in flight; a shard
that is refused stops as a run does, and ``--resume`` with a larger budget goes on.  The actors
end with the run; what each endpoint sustained is written to ``runs/RUN/shards/endpoints.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._sync import run_sync
from ..errors import ArcticCodexError, UserError
from ..workspace import Workspace
from .journal import RunJournal, RunRecord
from .ray_actors import RunShare, endpoint_limits, hand_budget, start_actors, stop_actors
from .settings import RunSettings
from .shards import ShardPlan, merge_shards, plan_shards, shard_counts

if TYPE_CHECKING:
    from .run import Distiller

__all__ = ["ShardProgress", "check_ray", "ray_module", "run_shard", "work_on_ray"]

SHARD_RETRIES = 3  # a shard whose worker process died is run again this many times
POLL_SECONDS = 0.5

ShardProgress = Callable[[list[dict[str, int]]], None]
"""Called as shards advance with each shard's counts (pending/accepted/rejected/failed)."""


def ray_module() -> Any:
    """Ray, imported; or the error that says how to install it."""
    try:
        import ray
    except ImportError:
        # from None: the ImportError adds nothing the message does not already say
        raise UserError(
            "engine 'ray' needs Ray, which is not installed: pip install 'arcticcodex[ray]'",
            parameters=["engine"],
        ) from None
    return ray


def check_ray(address: str | None) -> Any:
    """Ray, imported, when this run may use it: a local Ray only with its token authentication on.

    Ray's own servers listen on every network interface whatever the node's address (seen with Ray
    2.60); its token is what keeps another machine from running code here, so a local cluster is
    refused when the environment turns the token off."""
    ray = ray_module()
    if address is None and os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        raise UserError(
            "a local Ray's servers listen on every network interface, and RAY_AUTH_MODE=disabled in the "
            "environment turns off the token that keeps other machines out; unset RAY_AUTH_MODE to run on Ray",
            parameters=["engine"],
        )
    return ray


def _start(ray: Any, address: str | None) -> bool:
    """Connect to ``address``, or start a Ray on loopback for this run; True when this process started it."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:  # this machine only: the node's address pinned to loopback, no dashboard
        check_ray(address)
        ray.init(
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    return True


def run_shard(
    root: str, run_id: str, folder: str, shards: int, spent_before: float, index: int, share: RunShare | None = None
) -> dict[str, Any]:
    """One shard's pending tasks, in a Ray worker: today's worker loop on the shard's journal and cache."""
    from .run import Distiller  # the worker imports the whole pipeline; the driver's module does not need to

    main = Workspace.open(root)
    plan = ShardPlan(Path(folder), shards, spent_before)
    with (
        _held(plan.database(index).with_suffix(".lock")),
        Distiller(plan.workspace(main, index), vault_workspace=main) as distiller,
    ):
        shared = share.join(f"shard-{index}") if share is not None else None  # the run's governors, budget
        distiller.share = shared
        note = run_sync(distiller.work(run_id))
        if shared is not None:
            shared.close()
        counts = distiller.journal.counts(run_id)
    return {"index": index, "note": note, "counts": counts, "pid": os.getpid()}


@contextlib.contextmanager
def _held(lock: Path) -> Iterator[None]:
    """One runner per shard at a time: a worker of a driver killed a moment ago may still be finishing
    its calls, and a shard run twice at once would ask its teachers twice.  The lock is the kernel's
    (``flock``), so it is released when its holder dies, however it dies."""
    import fcntl  # POSIX: Ray's workers run on Linux and macOS

    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def work_on_ray(
    distiller: Distiller,
    record: RunRecord,
    settings: RunSettings,
    *,
    address: str | None = None,
    on_shards: ShardProgress | None = None,
) -> str | None:
    """Run every unfinished shard of the run on Ray, then merge them; return why the run stopped early, or None."""
    ray = ray_module()
    workspace, journal = distiller.workspace, distiller.journal
    plan = plan_shards(workspace, journal, record.id, settings.shards)
    unfinished = [index for index in range(plan.shards) if _unfinished(workspace, plan, record.id, index)]
    spent = hand_budget(workspace, plan, record.id, settings, unfinished)
    started = _start(ray, address)
    actors = None
    try:
        limits = endpoint_limits(record.id, distiller.teacher_configs(), settings)
        actors = start_actors(ray, record.id, limits, settings.budget_usd, spent)
        remote = ray.remote(max_retries=SHARD_RETRIES, num_cpus=1)(run_shard)
        waiting = {
            remote.remote(
                str(workspace.root), record.id, str(plan.folder), plan.shards, plan.spent_before, index, actors.share
            ): index
            for index in unfinished
        }
        notes: list[str] = []
        while waiting:
            done, _ = await asyncio.to_thread(ray.wait, list(waiting), num_returns=1, timeout=POLL_SECONDS)
            for ref in done:
                waiting.pop(ref)
                result = _result(ray, ref)
                if result["note"]:
                    notes.append(result["note"])
            if on_shards is not None:
                on_shards([shard_counts(workspace, plan, record.id, index) for index in range(plan.shards)])
    finally:
        if actors is not None:
            stop_actors(ray, actors, plan.folder / "endpoints.json")
        if started:
            ray.shutdown()
    merge_shards(workspace, journal, plan, record.id)
    return notes[0] if notes else None


def _result(ray: Any, ref: Any) -> dict[str, Any]:
    """A shard's result; a shard that failed for good raises the project's error it raised, if it was one."""
    try:
        result: dict[str, Any] = ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, ArcticCodexError):
            raise cause from None  # the worker's own message, not Ray's wrapping of it
        raise
    return result


def _unfinished(workspace: Workspace, plan: ShardPlan, run_id: str, index: int) -> bool:
    with RunJournal(plan.workspace(workspace, index)) as shard:
        return bool(shard.counts(run_id)["pending"] or shard.retryable_failures(run_id))
