"""The GPUs a workspace rents: launch within budget, serve as teachers, account, enforce, tear down.

:class:`VastInstanceManager` is the one place that decides when money is spent:

* **launch** refuses an instance the budget cannot pay for (``hours`` of it, on top of what is spent
  and what running instances will burn meanwhile) — per run and in total; the row (with the label Vast
  will carry) is written before the rental, and from Vast's answer on, any failure — recording the id
  included, Ctrl-C included — destroys the instance by its id, or leaves it recorded for the reaper;
* **enforce** (run by ``gpu ls`` and ``gpu reap``, and every ``poll_interval`` by ``gpu watch`` and
  ``gpu tunnel --watch``) reconciles with Vast, destroys instances past their TTL, stops idle ones,
  destroys half-launched instances whose launching process died, and destroys everything of a budget
  group *before* its spend could pass the budget by the next check (:mod:`.budget`);  a TTL is also
  armed inside the instance itself, so it ends even if no ArcticCodex process ever runs again;
* **reap** (part of every enforce) destroys instances that carry this workspace's label prefix but are
  not tracked, and finds rentals whose answer was lost;
* **teachers**: ready instances are registered in ``arcticcodex.toml`` as one ``vllm`` teacher per
  name, their tunnels as replicas, the shared vLLM key in a 0600 file — so ``distill --teachers gpu``
  uses them, spreading calls over all of them (:mod:`.registration`).

It is longer than most modules because an instance's whole lifetime — launch, tunnel, stop, start,
destroy, reap — is one state machine over one table, and splitting it would spread its transitions.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from ..errors import (
    ArcticCodexError,
    ConfigError,
    GpuError,
    InstanceFailedError,
    TunnelError,
    VastApiError,
    VastUnavailableError,
)
from ..workspace import Workspace
from .budget import GpuBudget
from .offers import Offer, OfferQuery
from .provisioner import VllmProvisioner, VllmSpec
from .registration import check_teacher_name, register_teachers, vllm_key
from .state import InstanceRecord, InstanceStore
from .tunnel import SSHTunnel, free_local_port, pid_alive, terminate
from .usage import requests_served

LABEL_PREFIX = "arcticcodex-"
UNSEEN_GRACE_S = 30 * 60  # how long a rental whose answer was lost is looked for before it is given up


def provisioner_for(workspace: Workspace) -> VllmProvisioner:
    """A provisioner keeping its state in the workspace and waiting as its ``[gpu]`` table says."""
    settings = workspace.config.gpu
    return VllmProvisioner(
        state_dir=workspace.data_dir / "gpu",
        poll_interval=settings.poll_interval_s,
        boot_deadline=settings.boot_timeout_s,
        vllm_deadline=settings.vllm_timeout_s,
    )


class VastInstanceManager:
    """Every GPU instance of one workspace (see the module docstring)."""

    def __init__(
        self,
        workspace: Workspace,
        provisioner: VllmProvisioner | None = None,
        *,
        budget: GpuBudget | None = None,
        poll_interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """What is not given comes from the workspace's ``[gpu]`` table, as for ``arcticcodex gpu``.

        The provisioner waits ``boot_timeout_s`` and ``vllm_timeout_s``, polling every ``poll_interval_s``;
        the budget is ``budget_usd`` and ``run_budget_usd``; enforcement assumes a check every
        ``poll_interval_s`` (``poll_interval``).
        """
        self.workspace = workspace
        self.store = InstanceStore(workspace)
        settings = workspace.config.gpu
        self.provisioner = provisioner or provisioner_for(workspace)
        if provisioner is not None and provisioner.state_dir != self.store.folder:
            self.provisioner.state_dir = self.store.folder
        self.budget = budget or GpuBudget(settings.budget_usd, settings.run_budget_usd)
        self.poll_interval = poll_interval if poll_interval is not None else settings.poll_interval_s
        self._clock = clock
        self.label_prefix = LABEL_PREFIX + workspace.meta()["workspace_id"].replace("-", "")[:12] + "-"

    def close(self) -> None:
        self.provisioner.close()

    def __enter__(self) -> VastInstanceManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- launching ------------------------------------------------------------------------------------

    def check_budget(self, rate: float, hours: float, *, run: str) -> None:
        """Raise GpuBudgetError when ``hours`` at ``rate`` $/h, plus what is committed, would pass a budget."""
        self.budget.check_launch(self.store.all(), rate=rate, hours=hours, run=run, now=self._clock())

    def up(
        self,
        offer: Offer,
        spec: VllmSpec,
        *,
        run: str = "default",
        teacher: str | None = "gpu",
        hours: float | None = None,
        ttl_s: float | None = None,
        idle_s: float | None = None,
        local_port: int | None = None,
    ) -> InstanceRecord:
        """Rent ``offer``, wait for vLLM through a tunnel, register it as ``teacher``; destroy it on any failure.

        The one launch sequence: budget → record (before renting) → rent → wait → tunnel → vLLM → ready,
        with teardown guaranteed from the moment Vast may have created the instance.
        """
        hours = self._billed_hours(hours, ttl_s)
        self.check_budget(offer.dph_total, hours, run=run)
        spec = _fitted(spec, offer, ttl_s)
        if teacher:
            check_teacher_name(self.workspace, self.store, teacher)
        record = self._new_record(offer, spec, run=run, teacher=teacher, ttl_s=ttl_s, idle_s=idle_s)
        key = vllm_key(self.store, teacher or record.label)  # made first: nothing is rented if it cannot be
        # before renting, a crash from here on leaves a trace to clean up (the label Vast will carry); the budget
        # is checked in the same transaction, so two launches at once cannot both spend the same room
        self.store.insert(
            record,
            check=lambda records: self.budget.check_launch(
                records, rate=offer.dph_total, hours=hours, run=run, now=record.created_at
            ),
        )
        instance_id = self._rent(record, offer, spec, key)
        # From here on Vast bills an instance whose id we hold: whatever fails (recording the id included, or
        # Ctrl-C) destroys it by that id before the error goes on; the label stays the reaper's fallback.
        try:
            self._bring_up(record, instance_id, offer, spec, key, local_port)
        except BaseException as error:
            self._abandon_launch(record, instance_id, error)
            if isinstance(error, Exception) and not isinstance(error, ArcticCodexError):  # e.g. the database's
                raise GpuError(
                    f"the launch of instance {instance_id} failed ({_reason(error)}); it was destroyed, so it "
                    "bills nothing more — fix the cause, then run `arcticcodex gpu up` again"
                ) from error
            raise
        return record

    def _billed_hours(self, hours: float | None, ttl_s: float | None) -> float:
        """The hours the budget must cover: asked for (or the TTL, else one), and at least the deadlines.

        Booting and loading bill too, and nothing can stop them early.
        """
        wanted = hours if hours is not None else (ttl_s / 3600 if ttl_s else 1.0)
        return max(wanted, (self.provisioner.boot_deadline + self.provisioner.vllm_deadline) / 3600)

    def _new_record(
        self,
        offer: Offer,
        spec: VllmSpec,
        *,
        run: str,
        teacher: str | None,
        ttl_s: float | None,
        idle_s: float | None,
    ) -> InstanceRecord:
        now = self._clock()
        return InstanceRecord(
            label=self.label_prefix + uuid.uuid4().hex[:8],
            instance_id=None,
            offer_id=offer.id,
            machine_id=offer.machine_id,
            gpu_name=offer.gpu_name,
            num_gpus=offer.num_gpus,
            model=spec.model,
            served_model=spec.served_name,
            status="launching",
            reason="",
            owner_pid=os.getpid(),
            run=run,
            teacher=teacher,
            running_rate=offer.dph_total,
            storage_rate=offer.storage_usd_per_hour(spec.disk_gb),
            rate=offer.dph_total,  # charged from the request on: storage bills from creation, GPU soon after
            rate_since=now,
            accrued_usd=0.0,
            created_at=now,
            ready_at=None,
            destroyed_at=None,
            ttl_s=ttl_s,
            idle_s=idle_s,
            last_used_at=now,
            requests_seen=None,
            local_port=None,
            tunnel_pid=None,
        )

    def _rent(self, record: InstanceRecord, offer: Offer, spec: VllmSpec, key: str) -> int:
        """Ask Vast for the instance; when its answer (and so the id) never arrives, look for the label."""
        try:
            return self.provisioner.launch(offer.id, spec, label=record.label, vllm_api_key=key)
        except BaseException as error:
            outcome = self._forget_failed_launch(record, error) or (
                "Vast may still have created the instance: `arcticcodex gpu ls` and `gpu reap` look for it and "
                "destroy it"
            )
            if isinstance(error, GpuError):  # the same error (type, status), saying what became of the money
                error.args = (f"{error} — {outcome}",)
            raise

    def _bring_up(
        self, record: InstanceRecord, instance_id: int, offer: Offer, spec: VllmSpec, key: str, local_port: int | None
    ) -> None:
        """Record the id, wait until it runs, tunnel to it, wait for vLLM, mark it ready and register it."""
        record.instance_id = instance_id
        self.store.update(record.label, instance_id=instance_id, status="booting")
        record.status = "booting"
        self.store.log("launched", record, offer_id=offer.id, model=spec.served_name)
        running = self.provisioner.wait_until_running(instance_id)
        if running.dph_total and running.dph_total != record.running_rate:
            self.store.set_rate(record, running.dph_total, self._clock(), running_rate=running.dph_total)
        base_url = None
        if spec.serve:  # an instance used over SSH only (``serve=False``, e.g. training) is ready once it runs
            tunnel = self._open_tunnel(record, local_port)
            self.provisioner.wait_for_vllm(tunnel.url, spec.served_name, api_key=key, instance_id=instance_id)
            base_url = tunnel.url
        now = self._clock()
        self.store.update(record.label, status="ready", ready_at=now, owner_pid=None, last_used_at=now)
        record.status, record.ready_at, record.owner_pid = "ready", now, None
        self.store.log("ready", record, base_url=base_url)
        if record.teacher:
            self.register_teachers()

    def provision_teacher_pool(
        self,
        gpu_types: list[str] | None = None,
        pool_size: int = 1,
        model: str = "Qwen/Qwen2.5-7B-Instruct",
        *,
        min_vram: float = 24,
        max_price: float | None = 1.0,
        teacher: str = "gpu",
        run: str = "default",
        hours: float | None = None,
        ttl_s: float | None = None,
        idle_s: float | None = None,
    ) -> list[InstanceRecord]:
        """Rent ``pool_size`` of the cheapest matching offers (one per machine) serving ``model`` as ``teacher``."""
        offers = self.provisioner.search_instances(min_vram=min_vram, gpu_types=gpu_types, max_price=max_price)
        chosen: list[Offer] = []
        for offer in offers:
            if offer.machine_id not in {c.machine_id for c in chosen}:
                chosen.append(offer)
        if len(chosen) < pool_size:
            raise GpuError(
                f"only {len(chosen)} matching offer(s) on distinct machines for a pool of {pool_size}; "
                "widen gpu_types / min_vram / max_price",
                parameters=["gpu_types", "min_vram", "max_price"],
            )
        launched: list[InstanceRecord] = []
        try:
            for offer in chosen[:pool_size]:
                launched.append(
                    self.up(
                        offer, VllmSpec(model=model), run=run, teacher=teacher, hours=hours, ttl_s=ttl_s, idle_s=idle_s
                    )
                )
        except BaseException:
            for record in launched:  # a pool is all or nothing: no half-pool left running by accident
                if record.instance_id is not None:
                    self.down(record.instance_id, reason="pool launch failed")
            raise
        return launched

    # -- tunnels --------------------------------------------------------------------------------------

    def _open_tunnel(self, record: InstanceRecord, local_port: int | None) -> SSHTunnel:
        if record.instance_id is None:
            raise TunnelError(f"{record.label} has no instance yet")
        instance = self.provisioner.client.show_instance(record.instance_id)
        if instance is None or instance.state != "running":
            raise TunnelError(
                f"instance {record.instance_id} is not running; `arcticcodex gpu start {record.instance_id}` starts it"
            )
        port = local_port or record.local_port or free_local_port()
        tunnel = self.provisioner.tunnel_for(instance, local_port=port)
        tunnel.pid = record.tunnel_pid
        reopened = tunnel.ensure()
        record.local_port, record.tunnel_pid = port, tunnel.pid  # first: a failed write still closes this tunnel
        self.store.update(record.label, local_port=port, tunnel_pid=tunnel.pid)
        if reopened:
            self.store.log("tunnel_opened", record, local_port=port)
        return tunnel

    def tunnel(self, instance_id: int, *, local_port: int | None = None) -> SSHTunnel:
        """The instance's tunnel, reopened if it died."""
        return self._open_tunnel(self._record(instance_id), local_port)

    # -- teardown -------------------------------------------------------------------------------------

    def down(self, instance_id: int, *, reason: str = "requested") -> bool:
        """Close the tunnel and destroy the instance; False when Vast no longer had it."""
        return self._destroy(self._record(instance_id), instance_id, reason=reason)

    def _destroy(self, record: InstanceRecord, instance_id: int, *, reason: str) -> bool:
        """Destroy ``instance_id`` first, then note it in ``record`` (which may not hold the id yet)."""
        terminate(record.tunnel_pid)
        existed = self.provisioner.destroy_instance(instance_id)
        self._note_destroyed(record, instance_id, reason=reason, existed=existed)
        return existed

    def _note_destroyed(self, record: InstanceRecord, instance_id: int, *, reason: str, existed: bool) -> None:
        now = self._clock()
        self.store.set_rate(
            record,
            0.0,
            now,
            status="destroyed",
            reason=reason,
            destroyed_at=now,
            tunnel_pid=None,
            instance_id=instance_id,
        )
        self.store.log("destroyed", record, reason=reason, cost_usd=round(record.accrued_usd, 6), existed=existed)
        if record.teacher:
            self.register_teachers()
        else:  # an instance of its own had a key of its own: it goes with it
            self.store.key_path(record.label).unlink(missing_ok=True)

    def stop(self, instance_id: int, *, reason: str = "requested") -> None:
        record = self._record(instance_id)
        terminate(record.tunnel_pid)
        self.provisioner.stop_instance(instance_id)
        self.store.set_rate(
            record, record.storage_rate, self._clock(), status="stopped", reason=reason, tunnel_pid=None
        )
        self.store.log("stopped", record, reason=reason)
        if record.teacher:
            self.register_teachers()

    def start(self, instance_id: int) -> InstanceRecord:
        """Start a stopped instance, wait for it and for vLLM, reopen its tunnel; stop it again on failure."""
        record = self._record(instance_id)
        if record.status != "stopped":
            raise ConfigError(f"instance {instance_id} is {record.status}, not stopped; nothing to start")
        self.check_budget(record.running_rate, 1.0, run=record.run)
        self.provisioner.start_instance(instance_id)
        self.store.set_rate(
            record, record.running_rate, self._clock(), status="booting", reason="", owner_pid=os.getpid()
        )
        self.store.log("started", record)
        try:
            self.provisioner.wait_until_running(instance_id)
            tunnel = self._open_tunnel(record, record.local_port)
            key = vllm_key(self.store, record.teacher or record.label)
            self.provisioner.wait_for_vllm(tunnel.url, record.served_model, api_key=key, instance_id=instance_id)
        except BaseException as error:
            self.stop(instance_id, reason=f"start failed: {_reason(error)}")
            raise
        now = self._clock()
        self.store.update(record.label, status="ready", last_used_at=now, owner_pid=None)
        record.status, record.last_used_at, record.owner_pid = "ready", now, None
        if record.teacher:
            self.register_teachers()
        return record

    def cleanup_all(self) -> int:
        """Destroy every live instance of the workspace and reap lost ones; returns how many were destroyed.

        One failure does not stop the rest: every instance is tried, then the first error is raised.
        """
        count, errors = 0, []
        for record in self.store.live():
            try:
                if record.instance_id is not None:
                    self.down(record.instance_id, reason="cleanup")
                    count += 1
                else:
                    self._forget_failed_launch(record, None)
            except GpuError as error:
                errors.append(error)
        try:
            count += len(self.reap())
        except GpuError as error:
            errors.append(error)
        if errors:
            raise errors[0]
        return count

    def reap(self) -> list[int]:
        """Destroy labelled instances of this workspace that it does not track as live."""
        tracked = {r.instance_id for r in self.store.live()}
        reaped = []
        for instance in self.provisioner.client.list_instances(label_prefix=self.label_prefix):
            if instance.id in tracked:
                continue
            record = self.store.get(instance.label)
            if record is not None and record.instance_id is None:  # rented, then the process died before noting it
                tracked.add(instance.id)
                self._destroy(record, instance.id, reason="reaped: its launch was interrupted")
            else:
                self.provisioner.destroy_instance(instance.id)
                self.store.log("reaped", None, instance_id=instance.id, label=instance.label, rate=instance.dph_total)
            reaped.append(instance.id)
        return reaped

    # -- enforcement ----------------------------------------------------------------------------------

    def enforce(self) -> list[str]:
        """Reconcile with Vast and apply TTLs, idle stops and budgets; returns what was done, in words."""
        done: list[str] = []
        now = self._clock()
        for record in self.store.live():
            if record.instance_id is None:
                if not pid_alive(record.owner_pid) and self._forget_failed_launch(record, None):
                    done.append(f"{record.label}: an interrupted launch was cleaned up")
                continue
            if record.status == "booting" and pid_alive(record.owner_pid):
                continue  # its launching process is still at work (and Vast's reads may lag its writes)
            if self._vanished(record.instance_id):
                self.store.set_rate(record, 0.0, now, status="destroyed", reason="gone from Vast", destroyed_at=now)
                self.store.log("vanished", record)
                done.append(f"{record.instance_id}: gone from Vast (destroyed elsewhere)")
                continue
            if record.status == "booting" and not pid_alive(record.owner_pid):
                self.down(record.instance_id, reason="its launching process died")
                done.append(f"{record.instance_id}: destroyed (its launch was interrupted)")
            elif record.ttl_s is not None and now - record.created_at >= record.ttl_s:
                self.down(record.instance_id, reason=f"TTL of {record.ttl_s:g} s reached")
                done.append(f"{record.instance_id}: destroyed (TTL reached)")
            elif record.status == "ready" and self._idle(record, now):
                self.stop(record.instance_id, reason=f"idle for {record.idle_s:g} s")
                done.append(f"{record.instance_id}: stopped (idle)")
        done.extend(self._enforce_budgets())
        with contextlib.suppress(VastApiError):
            done.extend(f"{instance_id}: destroyed (labelled as ours, but untracked)" for instance_id in self.reap())
        return done

    def _enforce_budgets(self) -> list[str]:
        done = []
        overrun = list(self.budget.overrun(self.store.all(), interval_s=self.poll_interval, now=self._clock()))
        for scope, limit, record in overrun:
            current = self.store.get(record.label)
            if current is not None and current.live and record.instance_id is not None:  # in two groups: once
                self.down(record.instance_id, reason=f"{scope} of ${limit:.2f} reached")
                done.append(f"{record.instance_id}: destroyed ({scope} reached)")
        return done

    def _idle(self, record: InstanceRecord, now: float) -> bool:
        """Idle when vLLM's request counter (read through the tunnel) has not moved for ``idle_s``."""
        if record.idle_s is None or not record.local_port:
            return False
        seen = requests_served(record.local_port)
        if seen is not None and seen != record.requests_seen:
            self.store.update(record.label, requests_seen=seen, last_used_at=now)
            record.requests_seen, record.last_used_at = seen, now
        return now - record.last_used_at >= record.idle_s

    # -- reports --------------------------------------------------------------------------------------

    def instances(self, *, include_destroyed: bool = False) -> list[InstanceRecord]:
        return self.store.all() if include_destroyed else self.store.live()

    def get_total_cost(self) -> float:
        """Dollars spent on GPUs by this workspace, from real elapsed time and each instance's rate."""
        now = self._clock()
        return sum(record.cost(now) for record in self.store.all())

    def balance(self) -> float:
        return self.provisioner.get_account_balance()

    def search(self, query: OfferQuery) -> list[Offer]:
        return self.provisioner.client.search_offers(query)

    # -- teachers -------------------------------------------------------------------------------------

    def register_teachers(self) -> None:
        """Write the ready instances into arcticcodex.toml as ``vllm`` teachers (see :mod:`.registration`)."""
        register_teachers(self.workspace, self.store)

    # -- helpers --------------------------------------------------------------------------------------

    def _record(self, instance_id: int) -> InstanceRecord:
        record = self.store.by_instance(instance_id)
        if record is None:
            raise ConfigError(
                f"instance {instance_id} is not one of this workspace's; `arcticcodex gpu ls` lists them "
                "(`arcticcodex gpu reap` destroys labelled instances it lost track of)"
            )
        return record

    def _vanished(self, instance_id: int) -> bool:
        """Vast says it does not have the instance (a busy Vast says nothing: check again next time)."""
        try:
            return self.provisioner.client.show_instance(instance_id) is None
        except VastApiError:
            return False

    def _abandon_launch(self, record: InstanceRecord, instance_id: int, error: BaseException) -> None:
        """Destroy the instance of a launch that failed after Vast created it, by its id (no lookup needed).

        When Vast will not destroy it either, the record is left live with the id and no owner, so that the
        next ``gpu ls``/``gpu reap`` (any ``enforce``) destroys it, and the error says so.
        """
        reason = f"launch failed: {_reason(error)}"
        terminate(record.tunnel_pid)
        try:
            existed = self.provisioner.destroy_instance(instance_id)
        except Exception as failure:
            with contextlib.suppress(Exception):
                self.store.update(
                    record.label, instance_id=instance_id, status="booting", owner_pid=None, reason=reason
                )
            raise GpuError(
                f"the launch of instance {instance_id} failed ({_reason(error)}) and destroying it failed too "
                f"({failure}); it may still be running and billing: `arcticcodex gpu down {instance_id}` or "
                "`arcticcodex gpu reap` destroys it"
            ) from error
        # It is gone: nothing bills.  Noting that may fail too (often the very database that failed the launch);
        # the record then stays live until an enforce closes it (gone from Vast, or nothing under its label), and
        # the launch's own error is the one shown.
        with contextlib.suppress(Exception):
            self._note_destroyed(record, instance_id, reason=reason, existed=existed)

    def _forget_failed_launch(self, record: InstanceRecord, error: BaseException | None) -> str | None:
        """A launch with no instance id yet: destroy what carries its label, or let it go once that is safe.

        Vast may have created the instance although its answer was lost (a timeout, a dropped connection)
        or unreadable (a 200 without an id), and it may show up in the list only later.  Only a definite
        refusal (an HTTP error answer) or :data:`UNSEEN_GRACE_S` without a sighting lets the record go;
        until then it stays live, and charged, and every ``enforce`` looks for it again.  Returns what
        became of it, in words, when the record was let go; None while it is still looked for.
        """
        destroyed: list[int] = []
        with contextlib.suppress(VastApiError):  # a failed look (or destroy) leaves the record live: tried again
            for instance in self.provisioner.client.list_instances(label_prefix=record.label):
                self._destroy(record, instance.id, reason=f"launch failed: {_reason(error)}")
                destroyed.append(instance.id)
        if destroyed:
            return f"the instance Vast created anyway ({', '.join(map(str, destroyed))}) was found and destroyed"
        now = self._clock()
        # only an HTTP error answer is a refusal: a 200 Vast sent with no readable id may have rented it
        refused = (
            isinstance(error, VastApiError) and not isinstance(error, VastUnavailableError) and error.status >= 400
        )
        if refused or now - record.created_at >= UNSEEN_GRACE_S:
            self.store.set_rate(record, 0.0, now, status="destroyed", reason=_reason(error), destroyed_at=now)
            self.store.log("launch_failed", record, reason=_reason(error))
            return "nothing was rented" if refused else "nothing carrying its label was seen in 30 minutes"
        self.store.update(record.label, owner_pid=None, reason=f"launch answer lost: {_reason(error)}")
        self.store.log("launch_uncertain", record, reason=_reason(error))
        return None


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "its launching process died before Vast answered"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, InstanceFailedError | GpuError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _fitted(spec: VllmSpec, offer: Offer, ttl_s: float | None) -> VllmSpec:
    """The spec as launched: the TTL as the instance's own dead man's switch, and every GPU paid for used."""
    if ttl_s and not spec.ttl_s:
        spec = replace(spec, ttl_s=ttl_s)  # besides our own enforcement
    if offer.num_gpus > 1 and spec.tensor_parallel_size == 1:
        spec = replace(spec, tensor_parallel_size=offer.num_gpus)
    return spec
