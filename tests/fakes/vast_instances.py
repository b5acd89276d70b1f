"""One rented instance of the fake Vast: what was asked for, its lifecycle on the fake clock, and what it costs.

Why its own module: the lifecycle (``null -> loading -> running``, stopped, forced states, the failures Vast
really shows) is a plain function of the record and the fake time, and the $/hour rates a plain function of the
record, kept apart from the HTTP routes that create, show and steer instances and from the server's clock that
bills them; ``parse_env`` reads ``env`` the way Vast stores it.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from typing import Any

from fakes.vast_http import ApiError
from fakes.vast_offers import _HOURS_A_MONTH

_OCI_MSG = (
    "Error response from daemon: failed to create task for container: failed to create shim task: "
    "OCI runtime create failed: runc create failed: unable to start container process: error during container "
    "init: error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as "
    "'legacy' nvidia-container-cli: initialization error: nvml error: driver/library version mismatch: unknown"
)
_EXIT_MSG = "Error: container exited with code 1 while loading: RuntimeError: CUDA error: no kernel image is available"


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
