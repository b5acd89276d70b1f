"""``VastProvisioner``: the first API's GPU calls, each going through the workspace's instance manager.

::

    provisioner = VastProvisioner(api_key=os.environ["VAST_API_KEY"], workspace=workspace)
    offers = provisioner.search_instances(min_vram=40, gpu_types=["A100"], max_price=0.50)
    instance = provisioner.provision(machine_id=offers[0].machine_id, vllm_model="Qwen/Qwen2.5-7B-Instruct")
    tunnel = provisioner.setup_ssh_tunnel(instance)
    provisioner.destroy_instance(instance.instance_id)

:meth:`VastProvisioner.provision` is :meth:`~arcticcodex.gpu.VastInstanceManager.up`, the path
``arcticcodex gpu up`` takes: the instance is recorded in the workspace before it is rented (so
``gpu ls`` and ``gpu reap`` find one a crash left behind), the workspace's ``[gpu]`` budget is checked,
and any failure after the rental destroys it.  Stopping and destroying an instance the workspace
owns go through the manager too, so its records and costs stay true; an instance of another
workspace (or none) is stopped or destroyed by id, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TunnelError, WorkspaceNotFoundError
from ..gpu.manager import VastInstanceManager
from ..gpu.offers import Instance, Offer, OfferQuery, OrderBy
from ..gpu.provisioner import DEFAULT_MODEL, VllmProvisioner, VllmSpec
from ..gpu.registration import vllm_key
from ..gpu.state import InstanceRecord
from ..gpu.tunnel import SSHTunnel
from ..gpu.vast import VastClient
from ..workspace import Workspace

__all__ = ["VastInstance", "VastProvisioner"]

DEFAULT_LOCAL_PORT = 8000


@dataclass
class VastInstance:
    """A rented instance as the first API described it, kept up to date by :class:`VastProvisioner`."""

    instance_id: int
    machine_id: int = 0
    gpu_type: str = ""
    hourly_rate: float = 0.0
    label: str = ""
    served_model: str = ""
    ssh_host: str = ""
    ssh_port: int = 0
    ssh_user: str = "root"
    status: str = "pending"
    created_at: float = field(default_factory=time.time)
    local_port: int = DEFAULT_LOCAL_PORT
    ssh_tunnel_pid: int | None = None
    tunnel: SSHTunnel | None = None
    api_key: str = field(default="", repr=False)  # vLLM's --api-key for this instance: a secret

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}/v1"


class VastProvisioner:
    """Search, rent, reach and release Vast.ai GPUs running vLLM (see the module docstring).

    ``workspace`` is where rentals are recorded; without one, the workspace is found as the command
    line finds it (``ARCTICCODEX_WORKSPACE``, or upwards from the current folder) when first needed.
    The other arguments are :class:`~arcticcodex.gpu.VllmProvisioner`'s.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        workspace: Workspace | None = None,
        client: VastClient | None = None,
        base_url: str | None = None,
        state_dir: Path | str | None = None,
        environ: Mapping[str, str] | None = None,
        poll_interval: float = 10.0,
        boot_deadline: float = 20 * 60,
        vllm_deadline: float = 30 * 60,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provisioner = VllmProvisioner(
            api_key,
            client=client,
            base_url=base_url,
            state_dir=state_dir,
            environ=environ,
            poll_interval=poll_interval,
            boot_deadline=boot_deadline,
            vllm_deadline=vllm_deadline,
            sleep=sleep,
            clock=clock,
        )
        self.workspace = workspace
        self._manager: VastInstanceManager | None = None

    @property
    def client(self) -> VastClient:
        return self.provisioner.client

    def close(self) -> None:
        """Close the HTTP connections (a client passed in belongs to the caller)."""
        self.provisioner.close()

    def __enter__(self) -> VastProvisioner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def manager(self) -> VastInstanceManager:
        """The instance manager of the workspace rentals are recorded in (found on first use)."""
        if self._manager is None:
            if self.workspace is None:
                try:
                    self.workspace = Workspace.discover()
                except WorkspaceNotFoundError as error:
                    raise WorkspaceNotFoundError(
                        "VastProvisioner records every instance in a workspace before renting it (so that "
                        f"`arcticcodex gpu ls` and `gpu reap` find it), and found none: {error}; or pass "
                        "VastProvisioner(workspace=Workspace.open(DIR))"
                    ) from error
            self._manager = VastInstanceManager(self.workspace, self.provisioner)
        return self._manager

    # -- search ---------------------------------------------------------------------------------------

    def search_instances(
        self,
        min_vram: float = 40,
        gpu_types: list[str] | tuple[str, ...] | None = None,
        max_price: float | None = 1.0,
        sort_by: OrderBy = "price",
        **more: Any,
    ) -> list[Offer]:
        """Offers with at least ``min_vram`` GB per GPU, of ``gpu_types``, at most ``max_price`` $/h."""
        return self.provisioner.search_instances(min_vram, gpu_types, max_price, sort_by, **more)

    # -- rent -----------------------------------------------------------------------------------------

    def provision(
        self,
        machine_id: int | None = None,
        *,
        offer_id: int | None = None,
        vllm_model: str = DEFAULT_MODEL,
        spec: VllmSpec | None = None,
        local_port: int | None = None,
    ) -> VastInstance:
        """Rent an offer (by id, or the cheapest on ``machine_id``), wait for vLLM, tunnel to it.

        It is recorded in the workspace before it is rented, and anything that goes wrong after the
        rental destroys it before the error propagates (:meth:`~arcticcodex.gpu.VastInstanceManager.up`).
        """
        spec = spec or VllmSpec(model=vllm_model)
        offer = self._pick_offer(machine_id, offer_id)
        manager = self.manager
        record = manager.up(offer, spec, teacher=None, local_port=local_port or DEFAULT_LOCAL_PORT)
        return self._instance(record, offer)

    def _instance(self, record: InstanceRecord, offer: Offer) -> VastInstance:
        if record.instance_id is None or record.local_port is None:  # pragma: no cover - up() sets both
            raise TunnelError(f"{record.label} was launched without an instance id or a tunnel")
        tunnel = self.manager.tunnel(record.instance_id, local_port=record.local_port)
        return VastInstance(
            instance_id=record.instance_id,
            machine_id=offer.machine_id,
            gpu_type=offer.gpu_name,
            hourly_rate=record.running_rate,
            label=record.label,
            served_model=record.served_model,
            ssh_host=tunnel.host,
            ssh_port=tunnel.port,
            status="running",
            created_at=record.created_at,
            local_port=tunnel.local_port,
            ssh_tunnel_pid=tunnel.pid,
            tunnel=tunnel,
            api_key=vllm_key(self.manager.store, record.label),
        )

    def _pick_offer(self, machine_id: int | None, offer_id: int | None) -> Offer:
        if (machine_id is None) == (offer_id is None):
            raise ConfigError("name exactly one of an offer id or a machine id to rent")
        query = OfferQuery(min_vram_gb=1, min_reliability=0, limit=50).to_api()
        del query["num_gpus"]  # an offer named by id (or machine) may have any number of GPUs
        if offer_id is not None:
            query["id"] = {"eq": int(offer_id)}
        else:
            query["machine_id"] = {"eq": int(machine_id or 0)}
        offers = self.client.search_offers(query)
        if not offers:
            which = f"offer {offer_id}" if offer_id is not None else f"machine {machine_id}"
            raise ConfigError(f"{which} has no rentable offer now; run `arcticcodex gpu search` for current offers")
        return offers[0]

    # -- tunnels --------------------------------------------------------------------------------------

    def setup_ssh_tunnel(self, instance: VastInstance | Instance, local_port: int = DEFAULT_LOCAL_PORT) -> SSHTunnel:
        """Open a tunnel from ``127.0.0.1:local_port`` to the instance's vLLM port (the open one, if it is there)."""
        instance_id = instance.instance_id if isinstance(instance, VastInstance) else instance.id
        if isinstance(instance, VastInstance) and instance.tunnel is not None:
            if instance.tunnel.local_port == local_port and instance.tunnel.alive():
                return instance.tunnel
            self.close_ssh_tunnel(instance)
        if self._owned(instance_id) is not None:
            tunnel = self.manager.tunnel(instance_id, local_port=local_port)
        else:
            current = self.client.show_instance(instance_id)
            if current is None or current.state != "running":
                raise TunnelError(f"instance {instance_id} is not running; nothing to tunnel to")
            tunnel = self.provisioner.tunnel_for(current, local_port=local_port).open()
        if isinstance(instance, VastInstance):
            instance.tunnel, instance.ssh_tunnel_pid, instance.local_port = tunnel, tunnel.pid, local_port
        return tunnel

    def close_ssh_tunnel(self, instance: VastInstance) -> None:
        if instance.tunnel is not None:
            instance.tunnel.close()
        record = self._owned(instance.instance_id)
        if record is not None:
            self.manager.store.update(record.label, tunnel_pid=None)
        instance.tunnel, instance.ssh_tunnel_pid = None, None

    # -- lifecycle ------------------------------------------------------------------------------------

    def stop_instance(self, instance_id: int) -> None:
        if self._owned(instance_id) is not None:
            self.manager.stop(instance_id)
        else:
            self.provisioner.stop_instance(instance_id)

    def start_instance(self, instance_id: int) -> None:
        if self._owned(instance_id) is not None:
            self.manager.start(instance_id)
        else:
            self.provisioner.start_instance(instance_id)

    def destroy_instance(self, instance_id: int) -> bool:
        """Destroy; False when it was already gone."""
        if self._owned(instance_id) is not None:
            return self.manager.down(instance_id)
        return self.provisioner.destroy_instance(instance_id)

    def get_instance_status(self, instance_id: int) -> str:
        instance = self.client.show_instance(instance_id)
        return "destroyed" if instance is None else instance.actual_status or "provisioning"

    def get_account_balance(self) -> float:
        return self.provisioner.get_account_balance()

    @staticmethod
    def estimate_cost(rate: float, hours: float) -> float:
        """Dollars for ``hours`` at ``rate`` $/h (storage is part of Vast's ``dph_total``)."""
        if rate < 0 or hours < 0:
            raise ConfigError("a rate and a duration are never negative")
        return round(rate * hours, 6)

    def _owned(self, instance_id: int) -> InstanceRecord | None:
        """The workspace's live record of ``instance_id``, or None (another workspace's, or nobody's)."""
        try:
            manager = self.manager
        except WorkspaceNotFoundError:
            return None  # no workspace to record anything in: the instance is nobody's
        record = manager.store.by_instance(instance_id)
        return record if record is not None and record.live else None
