"""The fake Vast's offer catalogue and its search language, as ``/bundles`` and ``/search/asks`` answer them.

Why its own module: the catalogue (13 believable offers, or offers a test builds with ``make_offer``) and the
query language (ops, virtual columns and aliases, units in MB, pricing by type and storage, order, limit) are
the part of Vast that provisioning decisions rest on, and tests search them directly with ``search_offers``
without starting a server.  The instance listing (``/api/v1/instances``) reuses the same comparisons.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import operator
import time
from collections.abc import Callable
from typing import Any

from fakes.vast_http import ApiError

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
_HOURS_A_MONTH = 30 * 24


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
