"""The REST endpoints of the fake Vast API: the route table and one handler per endpoint, mixed into the server.

Why its own module: what each endpoint accepts and answers (offers, asks, instances and their logs, SSH keys, the
account, charges) is most of the fake's fidelity to Vast and reads best on its own, apart from the state, clock,
steering methods and serving that ``FakeVastServer`` (``vast_server``) adds around it.  Handlers run under the
server's lock after its clock has ticked, and raise ``ApiError`` for Vast's error answers.
"""

from __future__ import annotations

import base64
import copy
import functools
import itertools
import json
import re
import secrets
import shlex
from collections import deque
from typing import TYPE_CHECKING, Any

from fakes.container_ssh import ContainerSSH, key_identity
from fakes.vast_http import HOST, ApiError, Response, _json, _Request, _text
from fakes.vast_instances import _Instance, _port_keys, parse_env
from fakes.vast_offers import _OPS, _holds, _price_block, _sort_key, search_offers

_STORED_COLUMNS = frozenset(
    "id label actual_status intended_status cur_state next_state status_msg gpu_name verification machine_id "
    "host_id image_uuid image_runtype start_date geolocation is_bid".split()
)


def _view_sort_key(col: str, view: dict[str, Any]) -> tuple[int, Any]:
    return _sort_key(view.get(col))


class VastRoutes:
    """The endpoints; ``FakeVastServer`` inherits them and holds the state they read and change."""

    # The state FakeVastServer sets in __init__ and the methods it defines, as the handlers below use them.
    api_key: str
    boot_seconds: tuple[float, float]
    vllm_port: int | None
    offers: list[dict[str, Any]]
    ssh_keys: list[dict[str, Any]]
    _balance: float
    _records: dict[int, _Instance]
    _failures: deque[str]
    _log_files: dict[str, str]
    _instance_ids: itertools.count[int]
    _key_ids: itertools.count[int]
    _ssh: ContainerSSH

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

        def now(self) -> float: ...

        def _live(self, instance_id: int) -> _Instance: ...

        def _sync_ssh(self) -> None: ...

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
