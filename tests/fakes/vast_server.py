"""A stateful fake of the Vast.ai REST API on 127.0.0.1, for the GPU provisioner's offline tests.

Why a real server: the provisioner and the official ``vastai`` CLI (``VAST_URL=<fake url>``) run their real HTTP,
retry and parsing paths against it, and a test that passes here fails against Vast only where Vast differs from
the reference (``shared/reference/vast-vllm-deepseek.md``), never because an HTTP library was monkeypatched.

What it keeps: an offer catalogue (searched with the JSON query language: ops, virtual columns, units in MB),
instances with the real lifecycle (``null -> loading -> running``, stop, start, destroy) on a fake clock that
tests move with ``advance()``, an account balance debited lazily from that clock, SSH keys, charges, and a
request log.  Every running instance gets its own real sshd (``container_ssh``) whose ``-L`` tunnels to
container port 8000 reach the fake vLLM the test passes as ``vllm_port``.

Faults: ``inject()`` queues answers (429 flavours, 5xx, 410, a dropped connection, a slow answer) in front of
matching requests, which are then not processed; ``fail_next_instance()`` and ``set_status()`` steer the
lifecycle into the failures Vast really shows (stuck loading, OCI errors, exited, unknown, offline).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fnmatch
import functools
import itertools
import json
import operator
import re
import secrets
import shlex
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.container_ssh import ContainerSSH, key_identity

HOST = "127.0.0.1"
Response = tuple[int, list[tuple[str, str]], bytes]

_FAULTS = frozenset({"429", "429-json", "429-quota", "500", "502", "503", "504", "410", "drop"})
_SLOW = re.compile(r"slow:\d+(\.\d+)?")
_FAILURES = frozenset(
    {"never-running", "exit-while-loading", "oci-error", "unknown", "offline", "invisible-first-read"}
)
_OPS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "in", "notin"})
_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_SEARCH_KEYS = frozenset({"order", "limit", "type", "allocated_storage", "disable_bundling", "select_cols"})
_TYPES = {"on-demand": "on-demand", "ondemand": "on-demand", "reserved": "reserved", "bid": "bid"}
_ALIASES = {"reliability2": "reliability", "dphtotal": "dph_total", "gpu_totalram": "gpu_total_ram"}
_GB_FIELDS = {"gpu_ram_GB": "gpu_ram", "gpu_totalram_GB": "gpu_total_ram", "cpu_ram_GB": "cpu_ram"}  # GB -> MB
_STORED_COLUMNS = frozenset(
    "id label actual_status intended_status cur_state next_state status_msg gpu_name verification machine_id "
    "host_id image_uuid image_runtype start_date geolocation is_bid".split()
)
_HOURS_A_MONTH = 30 * 24
_OCI_MSG = (
    "Error response from daemon: failed to create task for container: failed to create shim task: "
    "OCI runtime create failed: runc create failed: unable to start container process: error during container "
    "init: error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as "
    "'legacy' nvidia-container-cli: initialization error: nvml error: driver/library version mismatch: unknown"
)
_EXIT_MSG = "Error: container exited with code 1 while loading: RuntimeError: CUDA error: no kernel image is available"
_NGINX = (
    "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center><hr><center>nginx</center></body></html>"
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it, with the status it answered; tests assert on what clients really sent."""

    method: str
    path: str
    query: dict[str, str]  # the last value of each name, URL-decoded; JSON-valued parameters stay JSON text
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when empty or not JSON
    status: int  # 0 when the connection was dropped without an answer
    fault: str | None
    timestamp: float


def check_fault(fault: str) -> str:
    """Reject unknown fault names when injected, so a typo fails the test instead of silently passing."""
    if fault in _FAULTS or _SLOW.fullmatch(fault):
        return fault
    raise ValueError(f"unknown fault {fault!r}; known: {sorted(_FAULTS)} and slow:SECONDS")


class ApiError(Exception):
    """An error answer in Vast's shape: ``{"success": false, "error": code, "msg": text, ...}``."""

    def __init__(self, status: int, code: str, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.status, self.body = status, {"success": False, "error": code, "msg": msg, **extra}


def _json(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return status, [("Content-Type", "application/json"), *(headers or [])], json.dumps(payload).encode()


def _text(status: int, text: str, kind: str = "text/plain") -> Response:
    return status, [("Content-Type", kind)], text.encode()


# -- offers ---------------------------------------------------------------------------------------------------

# The default catalogue: GPU RAM in MB per GPU, prices in $/hour, storage in $/GB/month, disk in GB, inet in Mb/s,
# compute capability x100; "_" stands for a space.  Unverified, unrentable and multi-GPU offers are there on purpose.
_CATALOGUE = """
#id      gpu       gpus MB    dph   bid   disk$ rel   where         ver rent disk inet  cuda cc  tflop dlp   ports dc
31001001 RTX_4090  1    24564 0.35  0.20  0.15  0.995 Oregon,_US    1   1    250  900   12.4 890 82.6  60.1  100   0
31001002 RTX_4090  1    24564 0.29  0.17  0.10  0.982 Quebec,_CA    1   1    120  500   12.2 890 82.6  58.7  20    0
31001003 RTX_4090  1    24564 0.22  0.12  0.08  0.970 Guangdong,_CN 0   1    200  300   12.4 890 82.6  57.9  0     0
31001004 RTX_3090  1    24576 0.16  0.09  0.10  0.991 Ohio,_US      1   1    180  700   12.1 860 35.6  31.2  50    0
31001005 RTX_3090  2    24576 0.30  0.18  0.10  0.987 Bavaria,_DE   1   1    400  1000  12.2 860 71.2  60.3  40    0
31001006 A100_SXM4 1    40960 0.75  0.45  0.20  0.998 Texas,_US     1   1    500  2000  12.4 800 19.5  52.4  200   1
31001007 A100_SXM4 1    81920 1.10  0.70  0.20  0.997 Utah,_US      1   1    800  5000  12.6 800 19.5  55.0  500   1
31001008 H100_SXM  1    81559 2.10  1.40  0.25  0.999 Stockholm,_SE 1   1    1000 10000 12.8 900 66.9  118.0 500   1
31001009 H100_SXM  8    81559 16.00 11.00 0.25  0.999 Virginia,_US  1   1    4000 10000 12.8 900 535.2 940.0 500   1
31001010 L40S      1    46068 0.85  0.50  0.18  0.993 Taipei,_TW    1   1    600  2500  12.4 890 91.6  70.2  100   1
31001011 RTX_A6000 1    49140 0.45  0.28  0.12  0.989 Ontario,_CA   1   1    300  800   12.2 860 38.7  36.5  30    0
31001012 Tesla_T4  1    15360 0.12  0.06  0.05  0.950 Hanoi,_VN     0   1    100  200   12.0 750 8.1   7.9   0     0
31001013 RTX_4090  4    24564 1.40  0.80  0.15  0.994 Oregon,_US    1   0    1000 900   12.4 890 330.4 240.0 100   0
"""
_OFFER_KEYS = (
    "id gpu_name num_gpus gpu_ram dph_base min_bid storage_cost reliability geolocation verified rentable "
    "disk_space inet_down cuda_max_good compute_cap total_flops dlperf direct_port_count datacenter"
).split()
_BOOL_KEYS = frozenset({"verified", "rentable", "datacenter"})
_TEXT_KEYS = frozenset({"gpu_name", "geolocation"})


def make_offer(**fields: Any) -> dict[str, Any]:
    """A complete offer (every field of §2.4) from a few: the rest get believable RTX 4090 defaults."""
    gpus = int(fields.get("num_gpus", 1))
    ram = int(fields.get("gpu_ram", 24_564))
    machine = int(fields.get("machine_id", 40_000 + int(fields.get("id", 1)) % 10_000))
    end_date = float(int(time.time()) + 30 * 86_400)
    # fmt: off
    offer: dict[str, Any] = {
        "id": 1, "ask_contract_id": None, "bundle_id": None, "machine_id": machine, "host_id": 90_000 + machine % 9_000,
        "gpu_name": "RTX 4090", "num_gpus": gpus, "gpu_ram": ram, "gpu_total_ram": ram * gpus, "gpu_frac": 1.0,
        "gpu_arch": "nvidia", "gpu_mem_bw": 900.0, "gpu_max_power": 450.0, "gpu_max_temp": 83.0,
        "gpu_display_active": False, "bw_nvlink": 0.0, "compute_cap": 890, "cuda_max_good": 12.4,
        "driver_version": "550.54.14", "driver_vers": 550_054_014, "cpu_name": "AMD EPYC 7543 32-Core Processor",
        "cpu_arch": "amd64", "cpu_cores": 32 * gpus, "cpu_cores_effective": 8.0 * gpus, "cpu_ghz": 3.7,
        "cpu_ram": 64_300 * gpus, "has_avx": 1, "mobo_name": "ROMED8-2T", "pci_gen": 4.0, "pcie_bw": 24.5,
        "disk_space": 250.0, "disk_bw": 1800.0, "disk_name": "Samsung SSD 980 PRO", "inet_down": 900.0,
        "inet_up": 800.0, "inet_down_cost": 0.005, "inet_up_cost": 0.005, "direct_port_count": 100,
        "static_ip": True, "public_ipaddr": f"203.0.113.{machine % 250 + 1}", "dph_base": 0.35, "dph_total": 0.35,
        "min_bid": 0.2, "storage_cost": 0.15, "reliability": 0.99, "reliability2": 0.99, "score": 0.0,
        "dlperf": 60.0, "dlperf_per_dphtotal": 0.0, "total_flops": 82.6, "flops_per_dphtotal": 0.0,
        "rentable": True, "rented": False, "is_bid": False, "verification": "verified", "vericode": 1,
        "external": False, "hosting_type": 0, "geolocation": "Oregon, US", "geolocode": None, "os_version": "22.04",
        "ubuntu_version": "22.04", "vms_enabled": False, "cluster_id": None, "duration": end_date - time.time(),
        "end_date": end_date, "start_date": None, "discount_rate": 0.0, "discounted_dph_total": 0.35,
    }
    # fmt: on
    verified = fields.pop("verified", None)
    datacenter = fields.pop("datacenter", None)
    offer.update(fields)
    if verified is not None:
        offer["verification"], offer["vericode"] = ("verified", 1) if verified else ("unverified", 0)
    if datacenter is not None:
        offer["hosting_type"] = 1 if datacenter else 0
    offer["ask_contract_id"] = offer["ask_contract_id"] or offer["id"]
    offer["bundle_id"] = offer["bundle_id"] or 900_000_000 + offer["id"] % 100_000_000
    offer["reliability2"] = fields.get("reliability2", offer["reliability"])
    offer["gpu_total_ram"] = fields.get("gpu_total_ram", offer["gpu_ram"] * offer["num_gpus"])
    if "score" not in fields:
        offer["score"] = round(offer["dlperf"] / offer["dph_base"] * offer["reliability"] ** 4, 3)
    return _priced(offer, 5.0, "on-demand", time.time())


def default_offers() -> list[dict[str, Any]]:
    """The default catalogue: 13 offers across 7 GPU models, prices, countries, reliabilities and states."""
    offers = []
    for row in _CATALOGUE.strip().splitlines()[1:]:
        fields: dict[str, Any] = {}
        for key, cell in zip(_OFFER_KEYS, row.split(), strict=True):
            text = cell.replace("_", " ")
            fields[key] = text if key in _TEXT_KEYS else cell == "1" if key in _BOOL_KEYS else json.loads(cell)
        fields["inet_up"] = fields["inet_down"] * 0.8
        offers.append(make_offer(**fields))
    return offers


def _price_block(gpu: float, disk: float) -> dict[str, float]:
    total = gpu + disk
    return {
        "gpuCostPerHour": round(gpu, 6),
        "diskHour": round(disk, 6),
        "totalHour": round(total, 6),
        "discountTotalHour": 0.0,
        "discountedTotalPerHour": round(total, 6),
    }


def _priced(offer: dict[str, Any], storage_gb: float, kind: str, now: float) -> dict[str, Any]:
    """The offer as a search prices it: dph_total = GPU price (min_bid for bids) + storage for the disk asked for."""
    priced = copy.deepcopy(offer)
    gpu = float(offer["min_bid"] if kind == "bid" else offer["dph_base"])
    disk = float(offer["storage_cost"]) * storage_gb / _HOURS_A_MONTH
    total = gpu + disk
    priced.update(dph_total=round(total, 6), discounted_dph_total=round(total, 6), is_bid=kind == "bid")
    priced["dlperf_per_dphtotal"] = round(float(offer["dlperf"]) / total, 3) if total else 0.0
    priced["flops_per_dphtotal"] = round(float(offer["total_flops"]) / total, 3) if total else 0.0
    priced["duration"] = max(0.0, float(offer["end_date"]) - now)
    priced["search"], priced["instance"] = _price_block(gpu, disk), _price_block(gpu, disk)
    return priced


def _column(offer: dict[str, Any], name: str) -> tuple[bool, Any, Callable[[Any], Any]]:
    """(known, value, how to read query values) for a filter field, virtual columns and aliases included."""
    same: Callable[[Any], Any] = lambda value: value  # noqa: E731
    name = _ALIASES.get(name, name)
    if name in _GB_FIELDS:
        return True, offer.get(_GB_FIELDS[name]), lambda value: float(value) * 1000
    if name == "verified":
        return True, offer.get("verification") == "verified", same
    if name == "datacenter":
        return True, offer.get("hosting_type") == 1, same
    if name == "geolocation":
        place = str(offer.get("geolocation") or "")
        return True, place.rsplit(",", 1)[-1].strip().upper(), lambda value: str(value).strip().upper()
    if name == "gpu_name":
        return True, offer.get("gpu_name"), lambda value: str(value).replace("_", " ")
    if name == "driver_version":
        return True, offer.get("driver_vers"), same
    return name in offer, offer.get(name), same


def _coerce(actual: Any, wanted: Any) -> Any:
    """A query value in the type of the column: the CLI sends numbers as strings ("num_gpus": {"eq": "1"})."""
    if isinstance(actual, bool):
        if isinstance(wanted, str) and wanted.lower() in ("true", "false"):
            return wanted.lower() == "true"
        return bool(wanted) if isinstance(wanted, int | float) else wanted
    if isinstance(actual, int | float) and isinstance(wanted, str):
        with contextlib.suppress(ValueError):
            return float(wanted)
    return wanted


def _holds(actual: Any, op: str, wanted: Any) -> bool:
    if op in ("in", "notin"):
        if not isinstance(wanted, list):
            raise ApiError(400, "invalid_request", f"operator {op!r} takes a list")
        found = any(actual == _coerce(actual, item) for item in wanted)
        return found if op == "in" else not found
    wanted = _coerce(actual, wanted)
    if op == "eq":
        return bool(actual == wanted)
    if op == "neq":
        return bool(actual != wanted)
    try:
        return bool(_ORDERINGS[op](actual, wanted))
    except TypeError:  # None, or a number against a string: no match, as SQL's NULL comparisons
        return False


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool | int | float):
        return (0, float(value))
    return (1, str(value)) if value is not None else (2, "")


def _offer_sort_key(name: str, offer: dict[str, Any]) -> tuple[int, Any]:
    return _sort_key(_column(offer, name)[1])


def search_offers(offers: list[dict[str, Any]], query: Any, now: float) -> list[dict[str, Any]]:
    """Apply a §2.2 query to the catalogue: filters, virtual columns, pricing by type and storage, order, limit."""
    if not isinstance(query, dict):
        raise ApiError(400, "invalid_request", "Invalid json body")
    kind = _TYPES.get(str(query.get("type", "on-demand")))
    if kind is None:
        raise ApiError(400, "invalid_args", f"unknown offer type {query.get('type')!r}: on-demand, bid or reserved")
    try:
        storage = float(query.get("allocated_storage", 5.0))
        limit = int(query["limit"]) if query.get("limit") is not None else 64
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_request", "allocated_storage and limit must be numbers") from None
    filters = {name: ops for name, ops in query.items() if name not in _SEARCH_KEYS}
    for name, ops in filters.items():
        if not isinstance(ops, dict) or not set(ops) <= _OPS:
            raise ApiError(400, "invalid_request", f"filter {name!r} must be an object of {sorted(_OPS)}")
    chosen = []
    for offer in offers:
        if offer.get("rented") and "rented" not in filters:
            continue  # a rented offer leaves the market
        priced = _priced(offer, storage, kind, now)
        if "allocated_storage" in query and float(priced["disk_space"]) < storage:
            continue
        keep = True
        for name, ops in filters.items():
            known, actual, read = _column(priced, name)
            if known:  # unknown fields are ignored, as Vast does (the CLI only warns about them)
                keep = keep and all(_holds(actual, op, _read_all(read, wanted)) for op, wanted in ops.items())
        if keep:
            chosen.append(priced)
    order = query.get("order", [["score", "desc"]])
    if not isinstance(order, list) or not all(isinstance(o, list | tuple) and len(o) in (1, 2) for o in order):
        raise ApiError(400, "invalid_request", "order must be a list of [field, 'asc'|'desc'] pairs")
    for entry in reversed(order):
        name = _ALIASES.get(str(entry[0]), str(entry[0]))
        descending = len(entry) == 2 and str(entry[1]).lower() == "desc"
        chosen.sort(key=functools.partial(_offer_sort_key, name), reverse=descending)
    return chosen[: max(0, limit)]


def _read_all(read: Callable[[Any], Any], wanted: Any) -> Any:
    try:
        return [read(item) for item in wanted] if isinstance(wanted, list) else read(wanted)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_request", f"bad filter value {wanted!r}") from None


# -- instances ------------------------------------------------------------------------------------------------


def parse_env(env: Any) -> dict[str, str]:
    """``env`` as Vast stores it: a dict, or a Docker flag string (``-e K=V -p 8000:8000 -h host``) made into one."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(key): "" if value is None else str(value) for key, value in env.items()}
    if not isinstance(env, str):
        raise ApiError(400, "invalid_args", "env must be an object (or a docker flag string)")
    result: dict[str, str] = {}
    words = shlex.split(env)
    for flag, value in itertools.pairwise(words):
        if flag == "-e" and "=" in value:
            name, _, text = value.partition("=")
            result[name] = text
        elif flag in ("-p", "-v", "-n"):
            result[f"{flag} {value}"] = "1"
        elif flag == "-h":
            result[flag] = value
    return result


def _port_keys(env: dict[str, str]) -> list[tuple[int, str]]:
    """(container port, protocol) for every ``-p HOST:CONTAINER[/proto]`` key of the env."""
    ports = []
    for key in env:
        match = re.fullmatch(r"-p\s+(?:\d+:)?(\d+)(?:/(tcp|udp))?", key.strip())
        if match:
            ports.append((int(match.group(1)), match.group(2) or "tcp"))
    return ports


@dataclass
class _Instance:
    """One contract: what was asked for, where it is in its lifecycle, and what it has cost."""

    id: int
    offer: dict[str, Any]
    body: dict[str, Any]
    env: dict[str, str]
    runtype: str
    disk: float
    label: str | None
    bid: float | None
    api_key: str
    created: float
    keys: set[str]
    failure: str | None
    intended: str = "running"
    phase: str = "boot"  # boot (created or started: null -> loading -> running) | stopped | forced (set_status)
    phase_start: float = 0.0
    forced: tuple[str | None, str | None] = (None, None)
    stop_msg: str | None = None
    hide_next_read: bool = False
    destroyed_at: float | None = None
    gpu_seconds: float = 0.0
    gpu_cost: float = 0.0
    disk_seconds: float = 0.0
    disk_cost: float = 0.0

    @property
    def gpu_rate(self) -> float:
        return float(self.bid if self.bid is not None else self.offer["dph_base"])

    @property
    def disk_rate(self) -> float:
        return float(self.offer["storage_cost"]) * self.disk / _HOURS_A_MONTH

    @property
    def wants_ssh(self) -> bool:
        return "ssh" in self.runtype

    @property
    def direct(self) -> bool:
        return "direc" in self.runtype or "args" in self.runtype

    def status(self, t: float, boot: tuple[float, float]) -> tuple[str | None, str | None]:
        """(actual_status, status_msg) at fake time t."""
        if self.phase == "forced":
            return self.forced
        if self.phase == "stopped":
            return "exited", self.stop_msg
        elapsed, image = t - self.phase_start, self.body["image"]
        if elapsed < boot[0]:
            return None, None
        if self.failure == "oci-error":
            return "created", _OCI_MSG
        if elapsed < boot[1] or self.failure == "never-running":
            return "loading", f"Pulling image {image}: downloading layers"
        if self.failure == "exit-while-loading":
            return "exited", _EXIT_MSG
        if self.failure in ("unknown", "offline"):
            return self.failure, "no heartbeat from the host" if self.failure == "unknown" else "host is offline"
        return "running", f"success, running {image}/ssh"

    def breakpoints(self, boot: tuple[float, float]) -> tuple[float, ...]:
        return (self.phase_start + boot[0], self.phase_start + boot[1]) if self.phase == "boot" else ()

    def running_since(self, boot: tuple[float, float]) -> float:
        return self.phase_start + (boot[1] if self.phase == "boot" else 0.0)


# -- the server -----------------------------------------------------------------------------------------------


def _view_sort_key(col: str, view: dict[str, Any]) -> tuple[int, Any]:
    return _sort_key(view.get(col))


class _Request:
    """What a route handler reads of a request: its query parameters and its body, parsed on demand."""

    def __init__(self, query: dict[str, str], raw: bytes) -> None:
        self.query, self.raw = query, raw

    def body(self) -> dict[str, Any]:
        """The JSON object body, or a 400 ``invalid_request`` the way Vast answers garbage."""
        try:
            body = json.loads(self.raw) if self.raw.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "Invalid json body")
        return body

    def json_param(self, name: str, default: Any) -> Any:
        text = self.query.get(name)
        if text is None or text == "":
            return default
        try:
            return json.loads(text)
        except ValueError:
            raise ApiError(400, "invalid_args", f"{name} must be JSON") from None


class FakeVastServer:
    """The fake Vast API and its steering methods; every method is safe to call from any thread."""

    def __init__(
        self,
        *,
        api_key: str = "vast-test-key",
        balance: float = 50.0,
        boot_seconds: tuple[float, float] = (0.2, 0.6),
        vllm_port: int | None = None,
        ssh: bool = True,
        offers: list[dict[str, Any]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.boot_seconds = (float(boot_seconds[0]), float(boot_seconds[1]))
        self.vllm_port = vllm_port  # read when a tunnel opens, so it may be set after start()
        self.ssh_enabled = ssh
        self.offers: list[dict[str, Any]] = (
            [make_offer(**o) for o in offers] if offers is not None else default_offers()
        )
        self.ssh_keys: list[dict[str, Any]] = []
        self._balance = float(balance)
        self._offset = 0.0
        self._billed_until = time.time()
        self._lock = threading.RLock()
        self._records: dict[int, _Instance] = {}
        self._log: list[RecordedRequest] = []
        self._faults: deque[list[Any]] = deque()
        self._failures: deque[str] = deque()
        self._log_files: dict[str, str] = {}
        self._instance_ids = itertools.count(7_835_610)
        self._key_ids = itertools.count(5_001)
        self._ssh = ContainerSSH()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifetime ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``VAST_URL`` is set to (clients add ``/api/v0/...``)."""
        if self._httpd is None:
            raise RuntimeError("the server is not listening yet: call start()")
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    def start(self) -> FakeVastServer:
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        if self.ssh_enabled:
            self._ssh.start()
        self._httpd = _HTTPServer((HOST, 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-vast-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open keep-alive connections, close every instance's sshd."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        for sock in list(httpd.open_sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        thread.join(timeout=10)
        self._ssh.stop()
        self._httpd = self._thread = None

    def __enter__(self) -> FakeVastServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- steering and inspection ------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake clock: wall time plus every ``advance()``."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward: instances boot, money is spent, as if that time had passed."""
        with self._lock:
            self._offset += float(seconds)
            self._tick()

    def balance(self) -> float:
        with self._lock:
            self._tick()
            return self._balance

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def instances(self) -> dict[int, dict[str, Any]]:
        """A snapshot of every live instance as ``GET /instances/{id}/`` shows it."""
        with self._lock:
            self._tick()
            return {rid: self._view(record) for rid, record in self._records.items() if record.destroyed_at is None}

    @property
    def destroyed(self) -> set[int]:
        with self._lock:
            return {rid for rid, record in self._records.items() if record.destroyed_at is not None}

    def inject(self, fault: str, *, path: str | None = None, method: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``fault`` instead of processing them.

        ``path`` matches with or without the trailing slash, and may be an fnmatch pattern
        (``"/api/v0/instances/*"``); ``None`` matches every path (and method)."""
        check_fault(fault)
        with self._lock:
            self._faults.append([fault, path.rstrip("/") if path else None, method and method.upper(), int(times)])

    def fail_next_instance(self, how: str) -> None:
        """Make the next created instance fail this way (queued: two calls fail the next two instances)."""
        if how not in _FAILURES:
            raise ValueError(f"unknown failure {how!r}; known: {sorted(_FAILURES)}")
        with self._lock:
            self._failures.append(how)

    def set_status(self, instance_id: int, actual_status: str | None, status_msg: str | None = None) -> None:
        """Push an instance into a state (exited, unknown, offline, running...) until it is stopped or started."""
        with self._lock:
            self._tick()
            record = self._live(instance_id)
            record.phase, record.phase_start, record.forced = "forced", self.now(), (actual_status, status_msg)
            self._sync_ssh()

    def drop_ssh_connections(self, instance_id: int) -> int:
        """Kill the instance's live SSH connections but keep its sshd listening (a network blip)."""
        return self._ssh.drop(instance_id)

    def ssh_host_key(self, instance_id: int) -> str | None:
        """The running instance's SSH host key (``"ssh-ed25519 AAAA..."``), for strict known_hosts checks."""
        return self._ssh.host_public_key(instance_id)

    def ssh_connection_count(self, instance_id: int) -> int:
        return self._ssh.connection_count(instance_id)

    # -- the clock: lifecycle and money -----------------------------------------------------------------------

    def _live(self, instance_id: int) -> _Instance:
        record = self._records.get(instance_id)
        if record is None or record.destroyed_at is not None:
            raise KeyError(f"no live instance {instance_id}")
        return record

    def _tick(self) -> None:
        """Bill every segment of fake time since the last tick, then start or stop sshds to match the states.

        Segments end where a state can change (loading, running), so a running instance pays dph_total from
        the moment it runs; when the money runs out mid-segment, running instances stop at that moment."""
        now, boot = self.now(), self.boot_seconds
        t = self._billed_until
        while t < now:
            live = [r for r in self._records.values() if r.destroyed_at is None]
            end = min([now, *(p for r in live for p in r.breakpoints(boot) if p > t)])
            states = {r.id: r.status((t + end) / 2, boot)[0] for r in live}  # no state changes inside a segment
            running = [r for r in live if states[r.id] == "running"]
            rate = sum(r.gpu_rate for r in running) + sum(r.disk_rate for r in live if states[r.id] != "offline")
            exhausted = bool(running) and self._balance - rate * (end - t) / 3600 <= 0
            if exhausted:
                end = t + max(0.0, self._balance) * 3600 / rate
            for record in live:
                if states[record.id] == "running":
                    record.gpu_seconds += end - t
                    record.gpu_cost += record.gpu_rate * (end - t) / 3600
                if states[record.id] != "offline":
                    record.disk_seconds += end - t
                    record.disk_cost += record.disk_rate * (end - t) / 3600
            self._balance -= rate * (end - t) / 3600
            if exhausted:  # the next segment has nothing running, so the loop always moves on
                for record in running:
                    record.phase, record.phase_start, record.intended = "stopped", end, "stopped"
                    record.stop_msg = "Instance stopped: your credit balance is exhausted"
            t = end
        self._billed_until = max(self._billed_until, now)
        self._sync_ssh()

    def _sync_ssh(self) -> None:
        if not self.ssh_enabled:
            return
        now = self.now()
        for record in self._records.values():
            up = record.destroyed_at is None and record.wants_ssh
            if up and record.status(now, self.boot_seconds)[0] == "running":
                self._ssh.open(record.id, record.keys, lambda: self.vllm_port)
            elif self._ssh.port(record.id) is not None:
                self._ssh.close(record.id)

    # -- rendering --------------------------------------------------------------------------------------------

    def _view(self, record: _Instance) -> dict[str, Any]:
        """The instance object of §4.3, as ``GET /api/v0/instances/{id}/`` answers it now."""
        now = self.now()
        status, msg = record.status(now, self.boot_seconds)
        running = status == "running"
        base = 20_000 + (record.id % 400) * 100
        ssh_port = self._ssh.port(record.id) if running else None
        if running and ssh_port is None and record.wants_ssh:
            ssh_port = base + 99  # ssh=False: a port number, but nothing listens there
        ports: dict[str, list[dict[str, str]]] | None = None
        if running:
            ports = {}
            if record.direct and record.wants_ssh:
                ports["22/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": str(ssh_port)}]
            for index, (inner, proto) in enumerate(_port_keys(record.env)):
                host = ssh_port if inner == 22 else self.vllm_port if inner == 8000 and self.vllm_port else base + index
                ports[f"{inner}/{proto}"] = [{"HostIp": "0.0.0.0", "HostPort": str(host)}]
        offer, body = record.offer, record.body
        args = body.get("args")
        image_args = list(args) if isinstance(args, list) else shlex.split(str(body.get("args_str") or ""))
        total = record.gpu_rate + record.disk_rate
        # fmt: off
        return {
            "id": record.id, "machine_id": offer["machine_id"], "host_id": offer["host_id"],
            "bundle_id": offer["bundle_id"], "template_id": None, "template_hash_id": body.get("template_hash_id"),
            "actual_status": status, "intended_status": record.intended, "cur_state": record.intended,
            "next_state": record.intended, "status_msg": msg, "label": record.label,
            "image_uuid": body["image"], "image_args": image_args, "image_runtype": record.runtype,
            "onstart": body.get("onstart"), "extra_env": [[k, v] for k, v in record.env.items()],
            "start_date": record.created, "end_date": offer["end_date"],
            "uptime_mins": round((now - record.running_since(self.boot_seconds)) / 60, 3) if running else None,
            "gpu_name": offer["gpu_name"], "num_gpus": offer["num_gpus"], "gpu_ram": offer["gpu_ram"],
            "gpu_totalram": offer["gpu_total_ram"], "gpu_util": 0.0 if running else None, "gpu_temp": None,
            "cpu_ram": offer["cpu_ram"], "cpu_cores": offer["cpu_cores"],
            "cpu_cores_effective": offer["cpu_cores_effective"], "cpu_name": offer["cpu_name"],
            "disk_space": record.disk, "disk_usage": 0.0, "disk_util": 0.0, "mem_usage": None, "mem_limit": None,
            "inet_up": offer["inet_up"], "inet_down": offer["inet_down"], "cuda_max_good": offer["cuda_max_good"],
            "driver_version": offer["driver_version"], "compute_cap": offer["compute_cap"],
            "geolocation": offer["geolocation"], "reliability2": offer["reliability2"],
            "verification": offer["verification"], "hosting_type": offer["hosting_type"],
            "dph_base": offer["dph_base"], "dph_total": round(total, 6), "storage_cost": offer["storage_cost"],
            "storage_total_cost": round(record.disk_rate, 6), "inet_up_cost": offer["inet_up_cost"],
            "inet_down_cost": offer["inet_down_cost"], "min_bid": offer["min_bid"], "is_bid": record.bid is not None,
            "search": _price_block(record.gpu_rate, record.disk_rate),
            "instance": _price_block(record.gpu_rate if running else 0.0, record.disk_rate),
            "public_ipaddr": HOST, "ssh_host": HOST, "ssh_port": ssh_port, "ssh_idx": str(record.id % 10_000),
            "ports": ports, "direct_port_start": base if record.direct else -1,
            "direct_port_end": base + 99 if record.direct else -1, "local_ipaddrs": "10.2.202.31 172.17.0.1 \n",
            "machine_dir_ssh_port": None, "jupyter_token": None, "volume_info": None, "credit_balance": None,
            "credit_discount": None, "credit_discount_max": None, "time_remaining": "", "time_remaining_isbid": "",
        }
        # fmt: on

    # -- HTTP -------------------------------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> str | None:
        with self._lock:
            for entry in self._faults:
                fault, wanted_path, wanted_method, _ = entry
                if wanted_method and wanted_method != method:
                    continue
                if wanted_path and not fnmatch.fnmatchcase(path.rstrip("/") or "/", wanted_path):
                    continue
                entry[3] -= 1
                if entry[3] <= 0:
                    self._faults.remove(entry)
                return str(fault)
        return None

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response | None:
        """Answer one request (None: drop the connection) and log it."""
        split = urlsplit(target)
        path = split.path
        query = {name: values[-1] for name, values in parse_qs(split.query, keep_blank_values=True).items()}
        fault = self._take_fault(method, path)
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault[5:]))
        if fault and not fault.startswith("slow:"):
            response = self._fault_response(fault, path)
        else:
            try:
                with self._lock:
                    self._tick()
                    response = self._route(method, path, query, headers, raw)
            except ApiError as error:
                response = _json(error.status, error.body)
            except Exception as error:  # a bug in the fake: say so in the answer instead of hanging up
                response = _json(500, {"success": False, "error": "fake_server_bug", "msg": repr(error)})
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(method, path, query, headers, body, response[0] if response else 0, fault, time.time())
        with self._lock:
            self._log.append(record)
        return response

    def _fault_response(self, fault: str, path: str) -> Response | None:
        if fault == "drop":
            return None
        if fault == "429":
            return _text(429, "API requests too frequent")
        if fault == "429-json":
            return _json(429, {"detail": "API requests too frequent endpoint threshold=1.0"})
        if fault == "429-quota":
            today = datetime.fromtimestamp(self.now(), UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            reset = str(int((today + timedelta(days=1)).timestamp()))
            body = {"success": False, "error": "search_quota_exceeded", "msg": "Daily search quota exceeded"}
            return _json(429, body, [("X-RateLimit-Reset", reset)])
        if fault == "500":
            return _json(500, {"success": False, "error": "server_error", "msg": "Internal Server Error"})
        if fault == "410":
            if "/asks/" in path:
                msg = f"Offer {path.rstrip('/').rsplit('/', 1)[-1]} is no longer available: it has already been rented."
                return _json(410, {"success": False, "error": "no_such_ask", "msg": msg})
            return _json(410, {"success": False, "error": "gone", "msg": "Use /api/v1/instances/ instead"})
        status = int(fault)  # 502, 503, 504: the gateway's HTML page, not JSON
        return _text(status, _NGINX.format(f"{status} {HTTPStatus(status).phrase}"), "text/html")

    _ROUTES: tuple[tuple[str, str, str, str], ...] = (
        ("POST", r"/api/v0/bundles", "_search_post", "optional"),
        ("GET", r"/api/v0/bundles", "_search_get", "optional"),
        ("PUT", r"/api/v0/search/asks", "_search_new", "optional"),
        ("PUT", r"/api/v0/asks/(\d+)", "_create", "required"),
        ("GET", r"/api/v0/instances", "_list_v0", "required"),
        ("GET", r"/api/v1/instances", "_list_v1", "required"),
        ("GET", r"/api/v0/instances/filters", "_filters", "required"),
        ("PUT", r"/api/v0/instances/request_logs/(\d+)", "_request_logs", "required"),
        ("GET", r"/api/v0/instances/(\d+)", "_show", "required"),
        ("PUT", r"/api/v0/instances/(\d+)", "_manage", "required"),
        ("DELETE", r"/api/v0/instances/(\d+)", "_destroy", "required"),
        ("GET", r"/api/v0/instances/(\d+)/ssh", "_instance_keys", "required"),
        ("POST", r"/api/v0/instances/(\d+)/ssh", "_attach_key", "required"),
        ("DELETE", r"/api/v0/instances/(\d+)/ssh/(\d+)", "_detach_key", "required"),
        ("GET", r"/api/v0/ssh", "_account_keys", "required"),
        ("POST", r"/api/v0/ssh", "_add_key", "required"),
        ("DELETE", r"/api/v0/ssh/(\d+)", "_delete_key", "required"),
        ("GET", r"/api/v0/users/current", "_user", "required"),
        ("GET", r"/api/v0/charges", "_charges", "required"),
        ("GET", r"/api/v0/gpu_names/unique", "_gpu_names", "none"),
        ("GET", r"/_logs/([0-9a-f]+)\.log", "_log_file", "none"),
    )

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes) -> Response:
        normal = path.rstrip("/") or "/"
        matches = [(m, re.fullmatch(p, normal), name, auth) for m, p, name, auth in self._ROUTES]
        matches = [entry for entry in matches if entry[1] is not None]
        if not matches:
            raise ApiError(404, "not_found", f"no route for {path}")
        chosen = next((entry for entry in matches if entry[0] == method), None)
        if chosen is None:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        _, match, name, auth = chosen
        if auth != "none":
            self._authenticate(headers, query, required=auth == "required")
        assert match is not None
        result = getattr(self, name)(_Request(query, raw), *match.groups())
        return result if isinstance(result, tuple) else _json(200, result)

    def _authenticate(self, headers: dict[str, str], query: dict[str, str], *, required: bool) -> None:
        header = headers.get("authorization")
        if header is not None:
            scheme, _, key = header.partition(" ")
            sent: str | None = key.strip() if scheme.lower() == "bearer" else ""
        else:
            sent = query.get("api_key")
        if sent is None:
            if required:
                raise ApiError(403, "auth_error", "This action requires login.")
            return
        if not secrets.compare_digest(sent.encode(), self.api_key.encode()):
            raise ApiError(401, "auth_error", "Invalid user key")

    # -- offers -----------------------------------------------------------------------------------------------

    def _search_post(self, req: _Request) -> dict[str, Any]:
        return {"offers": search_offers(self.offers, req.body(), self.now())}

    def _gpu_names(self, req: _Request) -> dict[str, Any]:
        """The CLI fetches this (unauthenticated) for its GPU-name completion cache on every start."""
        return {"gpu_names": sorted({str(o["gpu_name"]) for o in self.offers})}

    def _search_get(self, req: _Request) -> dict[str, Any]:
        return {"offers": search_offers(self.offers, req.json_param("q", {}), self.now())}

    def _search_new(self, req: _Request) -> dict[str, Any]:
        return {"offers": search_offers(self.offers, req.body().get("q", {}), self.now())}

    # -- instances --------------------------------------------------------------------------------------------

    def _create(self, req: _Request, ask: str) -> dict[str, Any]:
        body, ask_id = req.body(), int(ask)
        image = body.get("image")
        if not image and body.get("template_hash_id"):
            raise ApiError(400, "invalid_args", "templates are not supported by the fake Vast: send an image")
        if not isinstance(image, str) or not image.strip() or len(image) > 1024:
            raise ApiError(400, "invalid_args", "image is required (a docker image name of at most 1024 characters)")
        offer = next((o for o in self.offers if o["id"] == ask_id), None)
        if offer is None:
            msg = f"error 404/3603: no_such_ask  Instance type by id {ask_id} is not available."
            raise ApiError(404, "no_such_ask", msg, ask_id=ask_id)
        if offer.get("rented") or not offer.get("rentable"):
            msg = f"error 410/3603: Offer {ask_id} is no longer available: it has already been rented."
            raise ApiError(410, "no_such_ask", msg, ask_id=ask_id)
        env = parse_env(body.get("env"))
        runtype = body.get("runtype") or ("args" if body.get("args") is not None or body.get("args_str") else "ssh")
        label = body.get("label")
        if not isinstance(runtype, str) or (label is not None and not isinstance(label, str)):
            raise ApiError(400, "invalid_args", "runtype and label must be strings")
        if label is not None and len(label) > 256:
            raise ApiError(400, "label_too_long", "label must be at most 256 characters")
        try:
            disk = float(body["disk"]) if body.get("disk") is not None else 8.0
            bid = None if body.get("price") is None else float(body["price"])
        except (TypeError, ValueError):
            raise ApiError(400, "invalid_args", "disk and price must be numbers") from None
        if not 0 < disk <= float(offer["disk_space"]):
            raise ApiError(400, "invalid_args", f"disk {disk} GB: the machine offers 0 < disk <= {offer['disk_space']}")
        if bid is not None and not 0.001 <= bid <= 128:
            raise ApiError(400, "invalid_price", f"price {bid} is outside 0.001..128 $/hour")
        hourly = (bid if bid is not None else float(offer["dph_base"])) + float(offer["storage_cost"]) * disk / 720
        if self._balance <= 0 or hourly > self._balance:
            msg = f"Your credit (${self._balance:.2f}) does not cover this instance (${hourly:.4f}/hr): add credit."
            raise ApiError(400, "insufficient_credit", msg)
        failure = self._failures.popleft() if self._failures else None
        now = self.now()
        record = _Instance(
            id=next(self._instance_ids),
            offer=copy.deepcopy(offer),
            body=body,
            env=env,
            runtype=runtype,
            disk=disk,
            label=label,
            bid=bid,
            api_key=secrets.token_hex(32),
            created=now,
            keys={k["key"] for k in self.ssh_keys},
            failure=None if failure == "invisible-first-read" else failure,
            phase_start=now,
            hide_next_read=failure == "invisible-first-read",
        )
        self._records[record.id] = record
        offer["rentable"], offer["rented"] = False, True
        answer = {"success": True, "new_contract": record.id, "instance_api_key": record.api_key}
        if body.get("target_state") == "stopped":
            record.phase, record.intended = "stopped", "stopped"
        if bid is not None and bid < float(offer["min_bid"]):  # Vast creates it stopped and still says no
            record.phase, record.intended = "stopped", "stopped"
            record.stop_msg = f"outbid: your bid ${bid}/hr is below the minimum ${offer['min_bid']}/hr"
            answer |= {"success": False, "error": "bid_too_low", "msg": record.stop_msg}
        return answer

    def _show(self, req: _Request, instance_id: str) -> dict[str, Any]:
        record = self._records.get(int(instance_id))
        if record is None or record.destroyed_at is not None:
            return {"instances": None}
        if record.hide_next_read:  # eventual consistency right after create
            record.hide_next_read = False
            return {"instances": None}
        return {"instances": self._view(record)}

    def _all_views(self) -> list[dict[str, Any]]:
        return [self._view(r) for r in sorted(self._records.values(), key=lambda r: r.id) if r.destroyed_at is None]

    def _list_v0(self, req: _Request) -> dict[str, Any]:
        views = self._all_views()
        return {"instances": views, "instances_found": len(views)}

    def _list_v1(self, req: _Request) -> dict[str, Any]:
        views = self._all_views()
        filters = req.json_param("select_filters", {})
        order = req.json_param("order_by", [{"col": "id", "dir": "asc"}])
        cols = req.json_param("select_cols", ["*"])
        try:
            limit = int(req.query.get("limit") or 25)
        except ValueError:
            raise ApiError(400, "invalid_args", "limit must be an integer") from None
        try:
            token = req.query.get("after_token")
            offset = int(json.loads(base64.urlsafe_b64decode(token))["offset"]) if token else 0
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "invalid_token", "Invalid after_token") from None
        limit = 5 if limit <= 0 else min(limit, 25)
        if not isinstance(filters, dict) or not isinstance(order, list) or not isinstance(cols, list):
            raise ApiError(400, "invalid_args", "select_filters is an object, order_by and select_cols are lists")
        for name, ops in filters.items():
            if name not in _STORED_COLUMNS:
                raise ApiError(400, "invalid_args", f"cannot filter on {name!r}: not a stored column")
            if not isinstance(ops, dict) or not set(ops) <= _OPS:
                raise ApiError(400, "invalid_args", f"filter {name!r} must be an object of {sorted(_OPS)}")
            views = [v for v in views if all(_holds(v.get(name), op, w) for op, w in ops.items())]
        keys = [(str(o.get("col")), str(o.get("dir", "asc")).lower() == "desc") for o in order if isinstance(o, dict)]
        for col, descending in reversed([*keys, ("id", False)]):
            if views and col not in views[0]:
                raise ApiError(400, "invalid_args", f"cannot order by {col!r}")
            views.sort(key=functools.partial(_view_sort_key, col), reverse=descending)
        page = views[offset : offset + limit]
        if cols != ["*"]:
            page = [{c: v.get(c) for c in [*cols, "id"]} for v in page]
        more = offset + limit < len(views)
        token = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode() if more else None
        labels: dict[str, int] = {}
        for view in self._all_views():
            labels[view["label"] or ""] = labels.get(view["label"] or "", 0) + 1
        return {
            "success": True,
            "instances": page,
            "instances_found": len(views),
            "next_token": token,
            "total_instances": len(self._all_views()),
            "label_counts": labels,
        }

    def _filters(self, req: _Request) -> dict[str, Any]:
        combos = {(v["actual_status"], v["verification"], v["gpu_name"]) for v in self._all_views()}
        names = ("actual_status", "verification", "gpu_name")
        return {"success": True, "filters": [dict(zip(names, c, strict=True)) for c in sorted(combos, key=str)]}

    def _instance_or_404(self, instance_id: str) -> _Instance:
        try:
            return self._live(int(instance_id))
        except KeyError:
            msg = f"error 404/3603: no_such_instance  Instance {instance_id} not found."
            raise ApiError(404, "no_such_instance", msg) from None

    def _manage(self, req: _Request, instance_id: str) -> dict[str, Any]:
        body, record = req.body(), self._instance_or_404(instance_id)
        if "label" in body:
            label = body["label"]
            if label is not None and (not isinstance(label, str) or len(label) > 1024):
                raise ApiError(400, "label_too_long", "label must be a string of at most 1024 characters")
            record.label = label
            return {"success": True, "msg": f"label for {record.id} set to '{label}'."}
        state, now = body.get("state"), self.now()
        if state == "stopped":
            if record.intended != "stopped" or record.phase != "stopped":
                record.phase, record.phase_start, record.intended, record.stop_msg = "stopped", now, "stopped", None
            self._sync_ssh()
            return {"success": True}
        if state == "running":
            if self._balance <= 0:
                raise ApiError(400, "missing_billing", "Your credit balance is exhausted: add credit to start.")
            if record.phase != "boot":
                record.phase, record.phase_start, record.intended = "boot", now, "running"
            self._sync_ssh()
            return {"success": True}
        raise ApiError(400, "invalid_args", 'send {"state": "running"|"stopped"} or {"label": ...}')

    def _destroy(self, req: _Request, instance_id: str) -> dict[str, Any]:
        record = self._instance_or_404(instance_id)
        record.destroyed_at = self.now()
        for offer in self.offers:
            if offer["id"] == record.offer["id"]:
                offer["rentable"], offer["rented"] = True, False  # the machine is back on the market
        self._sync_ssh()
        return {"success": True, "msg": f"Instance {record.id} destroyed."}

    def _request_logs(self, req: _Request, instance_id: str) -> dict[str, Any]:
        body, record = req.body(), self._instance_or_404(instance_id)
        status, msg = record.status(self.now(), self.boot_seconds)
        lines = [f"Creating container from {record.body['image']} (runtype {record.runtype})"]
        if status is not None:
            lines += [f"Pulling image {record.body['image']}", "Status: Downloaded newer image"]
        if status == "running":
            lines += [
                "INFO 08-21 12:00:01 [api_server.py:1885] vLLM API server version 0.10.1",
                "INFO 08-21 12:00:41 [launcher.py:29] Available routes are: /health, /v1/models, /v1/chat/completions",
                "INFO 08-21 12:00:41 [api_server.py:1971] Starting vLLM API server 0 on http://0.0.0.0:8000",
                "INFO:     Application startup complete.",
            ]
        elif msg and status in ("exited", "created", "unknown", "offline"):
            lines.append(f"ERROR {msg}")
        if body.get("filter"):
            lines = [line for line in lines if str(body["filter"]) in line]
        if str(body.get("tail") or "").isdigit():
            lines = lines[-int(body["tail"]) :]
        token = secrets.token_hex(16)
        self._log_files[token] = "".join(line + "\n" for line in lines)
        return {"success": True, "result_url": f"{self.url}/_logs/{token}.log", "msg": "logs are being uploaded"}

    def _log_file(self, req: _Request, token: str) -> Response:
        text = self._log_files.get(token)
        if text is None:
            return _text(404, "<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        return _text(200, text)

    # -- keys, account, charges -------------------------------------------------------------------------------

    @staticmethod
    def _public_key(req: _Request) -> str:
        key = req.body().get("ssh_key")
        if not isinstance(key, str) or not re.fullmatch(
            r"(ssh-[\w-]+|ecdsa-[\w-]+) [A-Za-z0-9+/=]{16,}( .*)?", key.strip()
        ):
            raise ApiError(400, "invalid_args", "ssh_key must be an OpenSSH public key line")
        return key.strip()

    def _account_keys(self, req: _Request) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.ssh_keys]

    def _add_key(self, req: _Request) -> dict[str, Any]:
        key = self._public_key(req)
        entry = next((e for e in self.ssh_keys if key_identity(e["key"]) == key_identity(key)), None)
        if entry is None:
            entry = {"id": next(self._key_ids), "user_id": 424_242, "key": key, "created_at": self.now()}
            entry["deleted_at"] = None
            self.ssh_keys.append(entry)
        return {"success": True, "key": dict(entry)}

    def _delete_key(self, req: _Request, key_id: str) -> dict[str, Any]:
        entry = next((e for e in self.ssh_keys if e["id"] == int(key_id)), None)
        if entry is None:
            raise ApiError(404, "not_found", f"ssh key {key_id} not found")
        self.ssh_keys.remove(entry)
        return {"success": True}

    def _attach_key(self, req: _Request, instance_id: str) -> dict[str, Any]:
        record = self._instance_or_404(instance_id)
        record.keys.add(self._public_key(req))  # the running sshd shares this set: it counts at once
        return {"success": True, "msg": f"SSH key attached to instance {record.id}."}

    def _instance_keys(self, req: _Request, instance_id: str) -> dict[str, Any]:
        record = self._instance_or_404(instance_id)
        keys = [{"id": index, "key": key} for index, key in enumerate(sorted(record.keys), 1)]
        return {"success": True, "ssh_keys": json.dumps(keys)}  # a JSON string, as Vast sends it

    def _detach_key(self, req: _Request, instance_id: str, key_id: str) -> dict[str, Any]:
        record = self._instance_or_404(instance_id)
        keys = sorted(record.keys)
        if not 1 <= int(key_id) <= len(keys):
            raise ApiError(404, "not_found", f"ssh key {key_id} is not attached to instance {record.id}")
        record.keys.discard(keys[int(key_id) - 1])
        return {"success": True}

    def _user(self, req: _Request) -> dict[str, Any]:
        money = round(self._balance, 6)
        first_key = self.ssh_keys[0]["key"] if self.ssh_keys else None
        # fmt: off
        return {
            "id": 424_242, "username": "fake-user", "email": "fake-user@example.com", "fullname": "Fake User",
            "credit": money, "balance": money, "balance_threshold": 0.0, "balance_threshold_enabled": False,
            "billed_expected": 0.0, "paid_expected": 0.0, "can_pay": True, "has_billing": True,
            "email_verified": True, "ssh_key": first_key, "key_id": 1, "sid": "fake-session", "rights": None,
            "host_agreement_accepted": False,
        }
        # fmt: on

    def _charges(self, req: _Request) -> dict[str, Any]:
        filters = req.json_param("select_filters", {})
        day = filters.get("day") if isinstance(filters, dict) else None
        if not isinstance(day, dict) or "gte" not in day or "lte" not in day:
            raise ApiError(400, "invalid_args", 'select_filters needs a day range: {"day": {"gte": T0, "lte": T1}}')
        kinds = filters.get("type", {}).get("in", ["instance"]) if isinstance(filters.get("type"), dict) else None
        start, end, now = float(day["gte"]), float(day["lte"]), self.now()
        results = []
        for record in sorted(self._records.values(), key=lambda r: r.id):
            until = record.destroyed_at or now
            if (kinds is not None and "instance" not in kinds) or record.created > end or until < start:
                continue
            items = [
                {
                    "type": "gpu",
                    "amount": round(record.gpu_cost, 6),
                    "description": f"{record.gpu_seconds / 3600:.3f} hours at ${record.gpu_rate:.3f}/hour",
                },
                {
                    "type": "disk",
                    "amount": round(record.disk_cost, 6),
                    "description": f"{record.disk:g} GB for {record.disk_seconds / 3600:.3f} hours",
                },
            ]
            results.append(
                {
                    "start": record.created,
                    "end": until,
                    "type": "instance",
                    "source": f"instance-{record.id}",
                    "description": f"Instance {record.id}: {record.offer['num_gpus']}x {record.offer['gpu_name']}",
                    "amount": round(record.gpu_cost + record.disk_cost, 6),
                    "metadata": {"label": record.label},
                    "items": items,
                }
            )
        if req.query.get("latest_first") in ("true", "True", "1"):
            results.reverse()
        return {"success": True, "count": len(results), "total": len(results), "next_token": None, "results": results}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeVastServer) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer is not news; anything else is a bug in the fake and is shown."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as Vast's own front end; all the work is in ``FakeVastServer.handle``."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-vast/1.0"
    sys_version = ""
    timeout = 30
    wbufsize = 1 << 16  # headers and body leave in one write: no 40 ms delayed-ACK stall on keep-alive
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        self.server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is the record; stderr stays quiet

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.fake.handle(self.command, self.path, headers, raw)
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, extra, payload = response
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()
