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
matching requests, which are then not processed — or, for ``processed-*``, processed with only the answer spoiled
(a rental made whose id never arrives); ``fail_next_instance()`` and ``set_status()`` steer the
lifecycle into the failures Vast really shows (stuck loading, OCI errors, exited, unknown, offline).

Layout, one noun a module: ``vast_offers`` (the catalogue and the search language), ``vast_instances`` (an
instance's record, lifecycle and rates), ``vast_routes`` (the endpoints), ``vast_http`` (answers, errors, faults,
the request log, the HTTP plumbing) and this one, ``FakeVastServer``: the state, the fake clock and the money,
the steering methods, serving.  The names tests import are re-exported here.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import json
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.container_ssh import ContainerSSH
from fakes.vast_http import (
    HOST,
    ApiError,
    RecordedRequest,
    Response,
    _fault_response,
    _Handler,
    _HTTPServer,
    _json,
    check_fault,
    spoil_answer,
)
from fakes.vast_instances import _Instance, parse_env
from fakes.vast_offers import default_offers, make_offer, search_offers
from fakes.vast_routes import VastRoutes

__all__ = [
    "HOST",
    "ApiError",
    "FakeVastServer",
    "RecordedRequest",
    "Response",
    "check_fault",
    "default_offers",
    "make_offer",
    "parse_env",
    "search_offers",
]

_FAILURES = frozenset(
    {"never-running", "exit-while-loading", "oci-error", "unknown", "offline", "invisible-first-read"}
)


class FakeVastServer(VastRoutes):
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
        container_root: Path | None = None,
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
        self._ssh = ContainerSSH(container_root)  # with a root, SSH commands run here (container_ssh)
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
        (``"/api/v0/instances/*"``); ``None`` matches every path (and method).  The ``processed-*`` faults
        (``processed-drop``, ``processed-not-json``, ``processed-no-id``) do process the request and spoil
        only the answer: a create that rents the instance while its id never reaches the client."""
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
        response: Response | None
        if fault and not fault.startswith(("slow:", "processed-")):
            response = _fault_response(fault, path, self.now())
        else:
            try:
                with self._lock:
                    self._tick()
                    response = self._route(method, path, query, headers, raw)
            except ApiError as error:
                response = _json(error.status, error.body)
            except Exception as error:  # a bug in the fake: say so in the answer instead of hanging up
                response = _json(500, {"success": False, "error": "fake_server_bug", "msg": repr(error)})
            if fault and fault.startswith("processed-"):
                response = spoil_answer(fault, response)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(method, path, query, headers, body, response[0] if response else 0, fault, time.time())
        with self._lock:
            self._log.append(record)
        return response
