"""The GPUs a workspace rents: launch within budget, serve as teachers, account, enforce, tear down.

:class:`VastInstanceManager` is the one place that decides when money is spent:

* **launch** refuses an instance the budget cannot pay for (``hours`` of it, on top of what is spent
  and what running instances will burn meanwhile) — per run and in total;
* **enforce** (run by every ``gpu`` command, and every ``poll_interval`` by ``gpu watch`` and
  ``gpu tunnel``) reconciles with Vast, destroys instances past their TTL, stops idle ones, destroys
  half-launched instances whose launching process died, and destroys everything of a budget group
  *before* its spend could pass the budget by the next check — so the spend never exceeds a budget by
  more than one polling interval of the running instances' rates, even if a check comes late;
* **reap** destroys instances that carry this workspace's label prefix but are not tracked (a crash
  between renting and recording);
* **teachers**: ready instances are registered in ``arcticcodex.toml`` as one ``vllm`` teacher per
  name, their tunnels as replicas, the shared vLLM key in a 0600 file — so ``distill --teachers gpu``
  uses them, spreading calls over all of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx2 as httpx
import tomlkit

from ..errors import ConfigError, GpuBudgetError, GpuError, InstanceFailedError, TunnelError, VastApiError
from ..fileio import write_atomically
from ..workspace import Workspace
from .models import Offer, OfferQuery
from .provisioner import VastProvisioner, VllmSpec
from .state import InstanceRecord, InstanceStore
from .tunnel import SSHTunnel, free_local_port, pid_alive, terminate

LABEL_PREFIX = "arcticcodex-"


@dataclass(frozen=True, slots=True)
class GpuBudget:
    """Dollar limits: over the workspace's whole GPU spend, and per run (a group of instances)."""

    total_usd: float | None = None
    run_usd: float | None = None

    def __post_init__(self) -> None:
        for name in ("total_usd", "run_usd"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"a GPU budget is a non-negative number of dollars, not {value}")


class VastInstanceManager:
    """Every GPU instance of one workspace (see the module docstring)."""

    def __init__(
        self,
        workspace: Workspace,
        provisioner: VastProvisioner | None = None,
        *,
        budget: GpuBudget | None = None,
        poll_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.workspace = workspace
        self.store = InstanceStore(workspace)
        self.provisioner = provisioner or VastProvisioner(state_dir=self.store.folder)
        if provisioner is not None and provisioner.state_dir != self.store.folder:
            self.provisioner.state_dir = self.store.folder
        settings = workspace.config.raw.get("gpu", {})
        self.budget = budget or GpuBudget(settings.get("budget_usd"), settings.get("run_budget_usd"))
        self.poll_interval = poll_interval
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
        now = self._clock()
        records = self.store.all()
        for limit, scope, members in (
            (self.budget.total_usd, "the total GPU budget", records),
            (self.budget.run_usd, f"the budget of run {run!r}", [r for r in records if r.run == run]),
        ):
            if limit is None:
                continue
            spent = sum(r.cost(now) for r in members)
            burning = sum(r.rate for r in members if r.live) * hours
            needed = rate * hours
            if spent + burning + needed > limit + 1e-9:
                raise GpuBudgetError(
                    f"renting at ${rate:.3f}/h for {hours:g} h needs ${needed:.2f}, but {scope} is ${limit:.2f} "
                    f"with ${spent:.2f} spent and ${burning:.2f} committed to running instances; "
                    "raise the budget ([gpu] budget_usd / --budget-usd), shorten --hours, or choose a cheaper offer"
                )

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
        """Rent ``offer``, wait for vLLM through a tunnel, register it as ``teacher``; destroy it on any failure."""
        hours = hours if hours is not None else (ttl_s / 3600 if ttl_s else 1.0)
        self.check_budget(offer.dph_total, hours, run=run)
        now = self._clock()
        record = InstanceRecord(
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
        self.store.insert(record)  # before renting: a crash from here on leaves a trace to clean up
        key = self._vllm_key(teacher or record.label)
        try:
            instance_id = self.provisioner.launch(offer.id, spec, label=record.label, vllm_api_key=key)
        except BaseException as error:
            self._forget_failed_launch(record, error)
            raise
        record.instance_id = instance_id
        self.store.update(record.label, instance_id=instance_id, status="booting")
        record.status = "booting"
        self.store.log("launched", record, offer_id=offer.id, model=spec.served_name)
        try:
            running = self.provisioner.wait_until_running(instance_id)
            if running.dph_total and running.dph_total != record.running_rate:
                self.store.set_rate(record, running.dph_total, self._clock(), running_rate=running.dph_total)
            tunnel = self._open_tunnel(record, local_port)
            self.provisioner.wait_for_vllm(tunnel.url, spec.served_name, api_key=key)
        except BaseException as error:
            self.down(instance_id, reason=f"launch failed: {_reason(error)}")
            raise
        now = self._clock()
        self.store.update(record.label, status="ready", ready_at=now, owner_pid=None, last_used_at=now)
        record.status, record.ready_at, record.owner_pid = "ready", now, None
        self.store.log("ready", record, base_url=tunnel.url)
        if teacher:
            self.register_teachers()
        return record

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
                "widen --gpu / --min-vram-gb / --max-price"
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
            raise TunnelError(f"instance {record.instance_id} is not running; start it with `arcticcodex gpu start`")
        port = local_port or record.local_port or free_local_port()
        tunnel = self.provisioner.tunnel_for(instance, local_port=port)
        tunnel.pid = record.tunnel_pid
        reopened = tunnel.ensure()
        self.store.update(record.label, local_port=port, tunnel_pid=tunnel.pid)
        record.local_port, record.tunnel_pid = port, tunnel.pid
        if reopened:
            self.store.log("tunnel_opened", record, local_port=port)
        return tunnel

    def tunnel(self, instance_id: int, *, local_port: int | None = None) -> SSHTunnel:
        """The instance's tunnel, reopened if it died."""
        return self._open_tunnel(self._record(instance_id), local_port)

    # -- teardown -------------------------------------------------------------------------------------

    def down(self, instance_id: int, *, reason: str = "requested") -> bool:
        """Close the tunnel and destroy the instance; False when Vast no longer had it."""
        record = self._record(instance_id)
        terminate(record.tunnel_pid)
        existed = self.provisioner.destroy_instance(instance_id)
        self.store.set_rate(
            record, 0.0, self._clock(), status="destroyed", reason=reason, destroyed_at=self._clock(), tunnel_pid=None
        )
        self.store.log("destroyed", record, reason=reason, cost_usd=round(record.accrued_usd, 6), existed=existed)
        if record.teacher:
            self.register_teachers()
        else:  # an instance of its own had a key of its own: it goes with it
            self.store.key_path(record.label).unlink(missing_ok=True)
        return existed

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

    def cleanup_all(self) -> int:
        """Destroy every live instance of the workspace; returns how many were destroyed."""
        count = 0
        for record in self.store.live():
            if record.instance_id is not None:
                self.down(record.instance_id, reason="cleanup")
                count += 1
            else:
                self._forget_failed_launch(record, None)
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
                self.store.update(record.label, instance_id=instance.id, status="booting")
                tracked.add(instance.id)
                self.down(instance.id, reason="reaped: its launch was interrupted")
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
                if not pid_alive(record.owner_pid):
                    self._forget_failed_launch(record, None)
                continue
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
        return done

    def _enforce_budgets(self) -> list[str]:
        done = []
        now = self._clock()
        records = self.store.all()
        groups: list[tuple[float | None, str, list[InstanceRecord]]] = [(self.budget.total_usd, "total", records)]
        for run in sorted({r.run for r in records}):
            groups.append((self.budget.run_usd, f"run {run}", [r for r in records if r.run == run]))
        for limit, scope, members in groups:
            if limit is None:
                continue
            spent = sum(r.cost(now) for r in members)
            burn = sum(r.rate for r in members if r.live)
            # destroy now if the spend would pass the limit before the next check
            if burn > 0 and spent + burn * self.poll_interval / 3600 >= limit:
                for record in members:
                    if record.live and record.instance_id is not None:
                        self.down(record.instance_id, reason=f"{scope} budget of ${limit:.2f} reached")
                        done.append(f"{record.instance_id}: destroyed ({scope} budget reached)")
        return done

    def _idle(self, record: InstanceRecord, now: float) -> bool:
        """Look at vLLM's request counter through the tunnel; idle when it has not moved for ``idle_s``."""
        if record.idle_s is None or not record.local_port:
            return False
        seen = self._requests_served(record)
        if seen is not None and seen != record.requests_seen:
            self.store.update(record.label, requests_seen=seen, last_used_at=now)
            record.requests_seen, record.last_used_at = seen, now
        return now - record.last_used_at >= record.idle_s

    @staticmethod
    def _requests_served(record: InstanceRecord) -> float | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{record.local_port}/metrics", timeout=5.0)
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        total = 0.0
        for line in response.text.splitlines():
            if line.startswith("vllm:request_success_total"):
                with contextlib.suppress(ValueError, IndexError):
                    total += float(line.rsplit(" ", 1)[1])
        return total

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
        """Write one ``vllm`` teacher per name in arcticcodex.toml, with every ready tunnel as a replica."""
        ready: dict[str, list[InstanceRecord]] = {}
        for record in self.store.live():
            if record.teacher and record.status == "ready" and record.local_port:
                ready.setdefault(record.teacher, []).append(record)
        names = {r.teacher for r in self.store.all() if r.teacher}
        path = self.workspace.config.path
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
        existing = document.get("teachers", tomlkit.aot())
        kept = tomlkit.aot()
        managed_keys = str(self.store.key_path("x").parent.relative_to(self.workspace.root))
        for table in existing:
            if table.get("name") not in names:
                kept.append(table)
            elif not str(table.get("api_key_file", "")).startswith(managed_keys):
                raise ConfigError(
                    f"{path}: teacher {table.get('name')!r} exists and is not a GPU teacher; choose another --teacher"
                )
        for name, records in sorted(ready.items()):
            urls = [f"http://127.0.0.1:{r.local_port}/v1" for r in records]
            table = tomlkit.table()
            table["name"] = name
            table["preset"] = "vllm"
            table["model"] = records[0].served_model
            table["base_url"] = urls[0]
            if urls[1:]:
                table["replicas"] = urls[1:]
            table["api_key_file"] = str(self.store.key_path(name).relative_to(self.workspace.root))
            kept.append(table)
        document["teachers"] = kept
        write_atomically(path, tomlkit.dumps(document).encode("utf-8"))
        self.workspace.config = type(self.workspace.config).load(path)

    def _vllm_key(self, name: str) -> str:
        path = self.store.key_path(name)
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        path.parent.mkdir(mode=0o700, exist_ok=True)
        key = secrets.token_urlsafe(32)
        write_atomically(path, key.encode() + b"\n", mode=0o600)
        return key

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

    def _forget_failed_launch(self, record: InstanceRecord, error: BaseException | None) -> None:
        """A launch that never got an instance id: find it by label (the request may have arrived), or drop it."""
        with contextlib.suppress(VastApiError):
            for instance in self.provisioner.client.list_instances(label_prefix=record.label):
                self.provisioner.destroy_instance(instance.id)
        now = self._clock()
        self.store.set_rate(record, 0.0, now, status="destroyed", reason=_reason(error), destroyed_at=now)
        self.store.log("launch_failed", record, reason=_reason(error))


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "its launching process died before Vast answered"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, InstanceFailedError | GpuError):
        return str(error)
    return f"{type(error).__name__}: {error}"
