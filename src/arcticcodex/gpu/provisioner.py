"""Rent a Vast.ai GPU that serves a model with vLLM: search, launch, wait, tunnel, check, tear down.

The steps, and the guarantees each gives (``shared/reference/vast-vllm-deepseek.md`` §7):

1. **search** in the user's units (:class:`~arcticcodex.gpu.offers.OfferQuery`: GB, $/h);
2. **launch** the vLLM image *as the instance image* (no Docker inside the instance), vLLM started by
   ``onstart`` with the model, served name, context length and an API key, listening on the container's
   127.0.0.1 only (no public port: every call comes through the SSH tunnel), SSH direct + proxy, and a
   deterministic label that says which workspace owns it;
3. **wait until running** polling every ``poll_interval`` seconds up to a deadline, failing fast on
   states that never recover (``exited`` while booting, ``unknown``, ``offline``, an OCI error) —
   and destroying the instance whenever the wait fails, so a failed launch costs nothing more;
4. **tunnel** to the container's 127.0.0.1:8000 with the system ``ssh`` (:mod:`.tunnel`);
5. **wait for vLLM**: ``GET /v1/models`` through the tunnel answers with the served model (vLLM only
   listens once the weights are loaded, so until then the tunnel's connections are reset);
6. stop, start and **destroy** (an instance that is already gone counts as destroyed).

These are the steps; :class:`~.manager.VastInstanceManager` runs them in order for a workspace, recording
each instance before it is rented, and keeps the books (what a workspace owns, cost, budgets).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

from ..errors import ConfigError, GpuError, InstanceFailedError, TunnelError, VastApiError
from .offers import Instance, Offer, OfferQuery, OrderBy
from .sshkeys import ensure_ssh_key
from .tunnel import VLLM_HOST, VLLM_PORT, SSHTunnel
from .vast import VastClient

DEFAULT_IMAGE = "vllm/vllm-openai:latest"
DEFAULT_MODEL = "Qwen/Qwen2.5-7B-Instruct"


@dataclass(frozen=True, slots=True)
class VllmSpec:
    """What the instance serves, and how."""

    model: str = DEFAULT_MODEL
    served_model_name: str = ""  # the id clients send; default: the model name
    max_model_len: int | None = None
    image: str = DEFAULT_IMAGE
    disk_gb: float = 60.0
    gpu_memory_utilization: float = 0.90
    tensor_parallel_size: int = 1  # GPUs the model is split over (the offer's GPU count)
    extra_args: tuple[str, ...] = ()
    hf_token: str | None = field(default=None, repr=False)  # gated models; passed to the instance, never logged
    ttl_s: float | None = None  # the instance destroys itself after this long, whatever happens here
    serve: bool = True  # False: start no vLLM (the instance is used over SSH, e.g. to train); only the TTL arms

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.model

    def onstart(self) -> str:
        """The shell line Vast runs in the instance: vLLM in the background, logging to a file."""
        args = [
            "vllm",
            "serve",
            self.model,
            "--host",
            VLLM_HOST,  # loopback only: reached through the SSH tunnel, never from the internet
            "--port",
            str(VLLM_PORT),
            "--served-model-name",
            self.served_name,
            "--gpu-memory-utilization",
            str(self.gpu_memory_utilization),
            *(["--max-model-len", str(self.max_model_len)] if self.max_model_len else []),
            *(["--tensor-parallel-size", str(self.tensor_parallel_size)] if self.tensor_parallel_size > 1 else []),
            *self.extra_args,
        ]
        # the key comes from the environment Vast sets (VLLM_API_KEY), so it is not in the command line
        line = f"nohup {shlex.join(args)} > /var/log/vllm.log 2>&1 &" if self.serve else "true"
        if self.ttl_s:
            # A dead man's switch inside the instance: Vast gives every container its own id and a key that
            # can destroy only that container, so even if no ArcticCodex process ever runs again, it ends.
            line = (
                f'(sleep {int(self.ttl_s)} && curl -fsS -X DELETE -H "Authorization: Bearer $CONTAINER_API_KEY" '
                f'"https://console.vast.ai/api/v0/instances/$CONTAINER_ID/" -d "{{}}") > /var/log/ttl.log 2>&1 &\n'
                + line
            )
        return line

    def create_body(self, *, label: str, vllm_api_key: str) -> dict[str, Any]:
        """The rental request.  No ``-p 8000:8000`` in ``env``: Vast would publish vLLM on the host's public
        address, and a key is then all that stands between the internet and a GPU billed by the hour."""
        env = {"VLLM_API_KEY": vllm_api_key}
        if self.hf_token:
            env["HF_TOKEN"] = self.hf_token
        return {
            "image": self.image,
            "disk": self.disk_gb,
            "label": label,
            "runtype": "ssh_direc ssh_proxy",  # the spelling the official CLI sends for --ssh --direct
            "env": env,
            "onstart": self.onstart(),
            "target_state": "running",
            "cancel_unavail": True,  # fail now rather than create a stopped instance that bills storage
        }


class VllmProvisioner:
    """Search, rent, reach and release Vast.ai GPUs running vLLM (see the module docstring)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
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
        self.client = client or VastClient(api_key, base_url=base_url, environ=environ)
        self._owns_client = client is None
        self.state_dir = Path(state_dir) if state_dir else Path.home() / ".arcticcodex-gpu"
        self.poll_interval = poll_interval
        self.boot_deadline = boot_deadline
        self.vllm_deadline = vllm_deadline
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        """Close the HTTP connections (a client passed in belongs to the caller)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> VllmProvisioner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        try:
            query = OfferQuery(
                min_vram_gb=min_vram,
                gpu_names=tuple(gpu_types or ()),
                max_price=max_price,
                order_by=sort_by,
                **more,
            )
        except TypeError as error:
            # from None: the TypeError adds nothing the message does not already say
            raise ConfigError(f"unknown search option: {error}") from None
        return self.client.search_offers(query)

    # -- launch and wait ------------------------------------------------------------------------------

    def launch(self, offer_id: int, spec: VllmSpec, *, label: str, vllm_api_key: str) -> int:
        """Rent ``offer_id`` running ``spec``; returns the instance id as soon as Vast accepts."""
        self.client.add_ssh_key(self.public_key())
        return self.client.create_instance(offer_id, spec.create_body(label=label, vllm_api_key=vllm_api_key))

    def wait_until_running(self, instance_id: int, *, deadline: float | None = None) -> Instance:
        """Poll until the instance runs with an SSH endpoint; InstanceFailedError on a fatal state or the deadline.

        The caller destroys the instance when this raises (:meth:`.VastInstanceManager.up` does).  A missing instance
        right after creation is tolerated for a few polls (Vast's reads lag its writes).
        """
        limit = self.boot_deadline if deadline is None else deadline
        started = self._clock()
        unseen = polls = 0
        last = "not visible yet"
        while True:
            try:
                instance = self.client.show_instance(instance_id)
            except VastApiError as error:
                if error.status not in (429, 502, 503, 504):
                    raise
                instance, last = None, f"Vast.ai busy (HTTP {error.status})"  # skip this poll, as dstack does
            else:
                if instance is None:  # Vast's reads lag its writes right after a create; later it means gone
                    unseen += 1
                    if unseen > 3 and self._clock() - started > 3 * self.poll_interval:
                        raise InstanceFailedError(
                            f"instance {instance_id} disappeared while booting (destroyed elsewhere?)",
                            instance_id=instance_id,
                        )
            if instance is not None:
                state = instance.state
                last = instance.actual_status or "provisioning"
                if instance.status_msg:
                    last += f": {instance.status_msg}"
                if state == "running":
                    return instance
                if state in ("failed", "stopped"):
                    raise InstanceFailedError(
                        f"instance {instance_id} failed while booting ({last}); it will be destroyed",
                        instance_id=instance_id,
                    )
            if self._clock() - started >= limit:
                raise InstanceFailedError(
                    f"instance {instance_id} was not running after {limit:.0f} s (last status: {last}); "
                    "it will be destroyed — try another offer, or raise [gpu] boot_timeout_s in arcticcodex.toml",
                    instance_id=instance_id,
                )
            self._sleep(self._backoff(polls := polls + 1))

    def wait_for_vllm(
        self,
        base_url: str,
        served_model: str,
        *,
        api_key: str,
        deadline: float | None = None,
        instance_id: int | None = None,
    ) -> None:
        """Poll ``GET {base_url}/models`` until vLLM lists ``served_model``.

        With ``instance_id``, the instance is looked at every few polls too, so one that dies while vLLM
        loads (a bad model name, out of memory) fails now rather than at the deadline.
        """
        limit = self.vllm_deadline if deadline is None else deadline
        started = self._clock()
        polls = 0
        last = "no answer yet"
        with httpx.Client(timeout=10.0) as http:
            while True:
                try:
                    response = http.get(f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"})
                    if response.status_code == 200:
                        served = [m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)]
                        if served_model in served:
                            return
                        raise GpuError(f"vLLM at {base_url} serves {served}, not {served_model!r}")
                    last = f"HTTP {response.status_code}"
                    if response.status_code == 401:
                        raise GpuError(f"vLLM at {base_url} refused the instance's API key (HTTP 401)")
                except (httpx.TransportError, ValueError) as error:
                    last = type(error).__name__  # loading: the tunnel resets connections until vLLM listens
                if instance_id is not None and polls % 3 == 2:
                    instance = self.client.show_instance(instance_id)
                    if instance is None or instance.state in ("failed", "stopped"):
                        status = "gone" if instance is None else instance.actual_status
                        raise InstanceFailedError(
                            f"instance {instance_id} stopped while vLLM was loading ({status}); "
                            f"`arcticcodex gpu logs {instance_id}` may say why",
                            instance_id=instance_id,
                        )
                if self._clock() - started >= limit:
                    raise InstanceFailedError(
                        f"vLLM did not answer at {base_url} within {limit:.0f} s (last: {last}); "
                        "large models take long to download — raise [gpu] vllm_timeout_s in arcticcodex.toml"
                    )
                self._sleep(min(self._backoff(polls := polls + 1), 5.0))

    def _backoff(self, polls: int) -> float:
        """1 s, 2 s, 4 s … up to ``poll_interval``: a quick boot is seen quickly, a slow one is not hammered."""
        return min(self.poll_interval, 2.0 ** (polls - 1))

    # -- SSH ------------------------------------------------------------------------------------------

    def key_path(self) -> Path:
        return ensure_ssh_key(self.state_dir / "ssh" / "id_ed25519")

    def public_key(self) -> str:
        return self.key_path().with_suffix(".pub").read_text().strip()

    def tunnel_for(self, instance: Instance, *, local_port: int) -> SSHTunnel:
        endpoint = instance.ssh_endpoint()
        if endpoint is None:
            raise TunnelError(f"instance {instance.id} has no SSH endpoint yet (status {instance.actual_status})")
        host, port = endpoint
        return SSHTunnel(
            host=host,
            port=port,
            key_path=self.key_path(),
            known_hosts=self.state_dir / "ssh" / f"known_hosts-{instance.id}",
            local_port=local_port,
        )

    # -- lifecycle ------------------------------------------------------------------------------------

    def stop_instance(self, instance_id: int) -> None:
        self.client.set_state(instance_id, "stopped")

    def start_instance(self, instance_id: int) -> None:
        """Start a stopped instance.  Its container starts afresh, with a fresh SSH host key (as a new one):
        the key pinned for it before is forgotten, so the first key seen is pinned again — kept, a
        restarted container answering on the port it had before would be refused as "changed"."""
        self.client.set_state(instance_id, "running")
        (self.state_dir / "ssh" / f"known_hosts-{instance_id}").unlink(missing_ok=True)

    def destroy_instance(self, instance_id: int) -> bool:
        """Destroy; False when it was already gone.  Retries a few times, because leaving it running costs money."""
        for attempt in range(4):
            try:
                return self.client.destroy_instance(instance_id)
            except VastApiError:
                if attempt == 3:
                    raise
                self._sleep(1.0 + attempt)
        return False  # pragma: no cover - the loop returns or raises

    def get_account_balance(self) -> float:
        return self.client.balance()
