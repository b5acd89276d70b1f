"""What Vast.ai says about offers and instances, typed, and the search a user asks for.

Vast's JSON is loose (fields go missing, ``HostPort`` is a string, ``local_ipaddrs`` a space-separated
string, ``cpu_cores`` sometimes null), so every field is read defensively here, once, and the rest of
the package works with these types.  Units are converted at this edge: the API's ``gpu_ram`` is MB,
ours is GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError

OrderBy = Literal["price", "flops_per_dollar", "reliability"]
InstanceState = Literal["pending", "running", "stopped", "failed", "gone"]

# How the actual_status values of a Vast instance are treated (reference §4.4, SkyPilot and dstack).
_FAILED = frozenset({"unknown", "offline"})
_STOPPED = frozenset({"stopped", "frozen"})
FATAL_STATUS_MESSAGES = ("OCI runtime create failed", "Error response from daemon")


def _float(raw: Any, default: float = 0.0) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def _int(raw: Any, default: int = 0) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


def _str(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


@dataclass(frozen=True, slots=True)
class Offer:
    """One rentable machine configuration (an "ask"), priced for the disk asked for."""

    id: int
    machine_id: int
    gpu_name: str
    num_gpus: int
    gpu_ram_gb: float  # per GPU
    dph_total: float  # $/hour while running, storage included
    storage_cost: float  # $/GB/month, billed while the instance exists (also when stopped)
    reliability: float
    total_flops: float
    cuda_max_good: float
    disk_space_gb: float
    inet_down_mbps: float
    geolocation: str
    verified: bool
    direct_port_count: int

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Offer:
        return cls(
            id=_int(raw.get("id", raw.get("ask_contract_id"))),
            machine_id=_int(raw.get("machine_id")),
            gpu_name=_str(raw.get("gpu_name")),
            num_gpus=_int(raw.get("num_gpus"), 1),
            gpu_ram_gb=round(_float(raw.get("gpu_ram")) / 1000, 1),
            dph_total=_float(raw.get("dph_total")),
            storage_cost=_float(raw.get("storage_cost")),
            reliability=_float(raw.get("reliability", raw.get("reliability2"))),
            total_flops=_float(raw.get("total_flops")),
            cuda_max_good=_float(raw.get("cuda_max_good")),
            disk_space_gb=_float(raw.get("disk_space")),
            inet_down_mbps=_float(raw.get("inet_down")),
            geolocation=_str(raw.get("geolocation")),
            verified=raw.get("verification") == "verified" or raw.get("verified") is True,
            direct_port_count=_int(raw.get("direct_port_count")),
        )

    def storage_usd_per_hour(self, disk_gb: float) -> float:
        """What a stopped instance with ``disk_gb`` of disk still costs an hour."""
        return self.storage_cost * disk_gb / 30 / 24

    @property
    def dollars_per_tflop_hour(self) -> float:
        return self.dph_total / self.total_flops if self.total_flops > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "machine_id": self.machine_id,
            "gpu_name": self.gpu_name,
            "num_gpus": self.num_gpus,
            "gpu_ram_gb": self.gpu_ram_gb,
            "dph_total": self.dph_total,
            "reliability": self.reliability,
            "total_flops": self.total_flops,
            "cuda_max_good": self.cuda_max_good,
            "disk_space_gb": self.disk_space_gb,
            "inet_down_mbps": self.inet_down_mbps,
            "geolocation": self.geolocation,
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class OfferQuery:
    """A search in the user's units (GB, $/h), turned into Vast's query language by :meth:`to_api`."""

    min_vram_gb: float = 16.0
    gpu_names: tuple[str, ...] = ()
    max_price: float | None = None
    min_reliability: float = 0.98
    num_gpus: int = 1
    disk_gb: float = 60.0
    regions: tuple[str, ...] = ()  # two-letter country codes
    min_cuda: float = 12.1  # what current vLLM images need
    min_inet_down_mbps: float = 200.0  # images and weights are tens of GB
    order_by: OrderBy = "price"
    limit: int = 20

    def __post_init__(self) -> None:
        if self.min_vram_gb <= 0:
            raise ConfigError(f"the minimum VRAM must be a positive number of GB, not {self.min_vram_gb}")
        if self.max_price is not None and self.max_price <= 0:
            raise ConfigError(f"the maximum price must be positive dollars per hour, not {self.max_price}")
        if not 0 <= self.min_reliability <= 1:
            raise ConfigError(f"reliability is between 0 and 1, not {self.min_reliability}")
        if self.num_gpus < 1 or self.limit < 1:
            raise ConfigError("the GPU count and the number of offers must be at least 1")
        if self.order_by not in ("price", "flops_per_dollar", "reliability"):
            raise ConfigError(f"order offers by price, flops_per_dollar or reliability, not {self.order_by!r}")
        bad = [region for region in self.regions if len(region) != 2 or not region.isalpha()]
        if bad:
            raise ConfigError(f"regions are two-letter country codes such as US or DE, not {bad}")

    def to_api(self) -> dict[str, Any]:
        """The body of ``POST /api/v0/bundles/`` (units: gpu_ram in MB, disk in GB, prices in $/h)."""
        query: dict[str, Any] = {
            "verified": {"eq": True},
            "external": {"eq": False},
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "num_gpus": {"eq": self.num_gpus},
            # Vast's gpu_ram is MB; a "24 GB" card reports ~24,000-24,576, so ask for 93 % of the GB (as gpuhunt does)
            "gpu_ram": {"gte": math.floor(self.min_vram_gb * 1000 * 0.93)},
            "reliability": {"gte": self.min_reliability},
            "direct_port_count": {"gte": 1},
            "cuda_max_good": {"gte": self.min_cuda},
            "inet_down": {"gte": self.min_inet_down_mbps},
            "order": [_ORDER[self.order_by]],
            "type": "on-demand",
            "allocated_storage": self.disk_gb,
            "limit": self.limit,
        }
        if self.gpu_names:
            query["gpu_name"] = {"in": gpu_name_variants(self.gpu_names)}
        if self.max_price is not None:
            query["dph_total"] = {"lte": self.max_price}
        if self.regions:
            query["geolocation"] = {"in": [region.upper() for region in self.regions]}
        return query


# Vast names GPUs by model *and* form factor; a user asking for "A100" means any of them.
GPU_FAMILIES: dict[str, tuple[str, ...]] = {
    "A100": ("A100 SXM4", "A100 PCIE", "A100X"),
    "H100": ("H100 SXM", "H100 PCIE", "H100 NVL"),
    "H200": ("H200", "H200 NVL"),
    "A6000": ("RTX A6000",),
    "4090": ("RTX 4090",),
    "3090": ("RTX 3090",),
    "5090": ("RTX 5090",),
    "L40": ("L40", "L40S"),
    "T4": ("Tesla T4",),
    "V100": ("Tesla V100",),
}


def gpu_name_variants(names: tuple[str, ...] | list[str]) -> list[str]:
    """Vast's GPU names for what a user typed: spaces for underscores, families expanded, order kept."""
    found: list[str] = []
    for name in names:
        spaced = name.replace("_", " ").strip()
        for variant in (spaced, *GPU_FAMILIES.get(spaced.upper().removeprefix("RTX ").strip(), ())):
            if variant not in found:
                found.append(variant)
    return found


_ORDER: dict[str, list[str]] = {
    "price": ["dph_total", "asc"],
    "flops_per_dollar": ["flops_per_dphtotal", "desc"],
    "reliability": ["reliability", "desc"],
}


@dataclass(frozen=True, slots=True)
class Instance:
    """One rented instance as ``GET /instances/{id}/`` shows it."""

    id: int
    label: str
    actual_status: str | None
    intended_status: str
    status_msg: str
    gpu_name: str
    num_gpus: int
    machine_id: int
    dph_total: float
    start_date: float
    public_ipaddr: str
    ssh_host: str
    ssh_port: int
    image_runtype: str
    ports: dict[str, int] = field(default_factory=dict)  # "8000/tcp" -> host port

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Instance:
        ports: dict[str, int] = {}
        for key, bindings in (raw.get("ports") or {}).items():
            if isinstance(bindings, list) and bindings and isinstance(bindings[0], dict):
                port = _int(bindings[0].get("HostPort"), -1)
                if port > 0:
                    ports[str(key)] = port
        return cls(
            id=_int(raw.get("id")),
            label=_str(raw.get("label")),
            actual_status=raw.get("actual_status") if isinstance(raw.get("actual_status"), str) else None,
            intended_status=_str(raw.get("intended_status")) or "running",
            status_msg=_str(raw.get("status_msg")),
            gpu_name=_str(raw.get("gpu_name")),
            num_gpus=_int(raw.get("num_gpus"), 1),
            machine_id=_int(raw.get("machine_id")),
            dph_total=_float(raw.get("dph_total")),
            start_date=_float(raw.get("start_date")),
            public_ipaddr=_str(raw.get("public_ipaddr")),
            ssh_host=_str(raw.get("ssh_host")),
            ssh_port=_int(raw.get("ssh_port")),
            image_runtype=_str(raw.get("image_runtype")),
            ports=ports,
        )

    @property
    def state(self) -> InstanceState:
        """pending, running, stopped or failed — what a waiter acts on."""
        status = self.actual_status
        if status == "created" and any(marker in self.status_msg for marker in FATAL_STATUS_MESSAGES):
            return "failed"
        if status in _FAILED:
            return "failed"
        if status in _STOPPED or (status == "exited" and self.intended_status == "stopped"):
            return "stopped"
        if status == "exited":  # the container's process ended without being asked to stop: it crashed
            return "failed"
        if status == "running":
            return "running" if self.ssh_endpoint() is not None else "pending"
        return "pending"  # null, created, loading, rebooting … and any status Vast adds later

    def ssh_endpoint(self) -> tuple[str, int] | None:
        """Where ``ssh`` connects: the direct port 22 mapping when there is one, else Vast's SSH proxy.

        The same rule as the official CLI's ``ssh-url``; None while the instance has no SSH endpoint yet.
        """
        direct = self.ports.get("22/tcp")
        if direct and self.public_ipaddr:
            return self.public_ipaddr, direct
        if self.ssh_host and self.ssh_port > 0:
            port = self.ssh_port + 1 if "jupyter" in self.image_runtype else self.ssh_port
            return self.ssh_host, port
        return None
