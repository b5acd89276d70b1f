"""What a workspace remembers about the GPUs it rents: a table in its database and a lifecycle log.

Why persisted: the process that rented an instance may die (Ctrl-C, kill -9, a closed laptop); any
later ``arcticcodex gpu …`` command must still find the instance, know what it has cost, and tear it
down.  A row is written *before* Vast is asked to rent (status ``launching``, with the label Vast will
carry), so even a crash between the request and its answer leaves a trace that :meth:`reap` follows.

Cost is kept as money accrued up to ``rate_since`` plus the current rate times the time since, with
the rate changed whenever the instance starts, stops or goes: running bills ``dph_total``, stopped
bills storage only, destroyed bills nothing.  Vast bills storage from creation, so cost starts at the
launch request (reference §4.4: budget conservatively).

The lifecycle log (``gpu/lifecycle.jsonl``) is one JSON object a line for every launch, state change,
tunnel, budget decision and teardown: what happened, to which instance, why, at what rate — never a key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..db import transaction
from ..workspace import Workspace

LIVE_STATUSES = ("launching", "booting", "ready", "stopped")


@dataclass
class InstanceRecord:
    """One row of ``gpu_instances``."""

    label: str
    instance_id: int | None
    offer_id: int
    machine_id: int
    gpu_name: str
    num_gpus: int
    model: str
    served_model: str
    status: str
    reason: str
    owner_pid: int | None
    run: str
    teacher: str | None
    running_rate: float
    storage_rate: float
    rate: float
    rate_since: float
    accrued_usd: float
    created_at: float
    ready_at: float | None
    destroyed_at: float | None
    ttl_s: float | None
    idle_s: float | None
    last_used_at: float
    requests_seen: float | None
    local_port: int | None
    tunnel_pid: int | None

    def cost(self, now: float) -> float:
        """Dollars billed up to ``now``."""
        return self.accrued_usd + self.rate * max(0.0, now - self.rate_since) / 3600

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "label": self.label,
            "status": self.status,
            "reason": self.reason,
            "gpu_name": self.gpu_name,
            "num_gpus": self.num_gpus,
            "model": self.served_model,
            "run": self.run,
            "teacher": self.teacher,
            "dph_total": self.running_rate,
            "rate_now": self.rate,
            "cost_usd": round(self.cost(now), 6),
            "created_at": self.created_at,
            "age_s": round(now - self.created_at, 1),
            "ttl_s": self.ttl_s,
            "idle_s": self.idle_s,
            "local_port": self.local_port,
            "base_url": f"http://127.0.0.1:{self.local_port}/v1" if self.local_port else None,
        }


_COLUMNS = [f.name for f in fields(InstanceRecord)]


class InstanceStore:
    """The ``gpu_instances`` table and the lifecycle log of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.folder = workspace.data_dir / "gpu"
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.log_path = self.folder / "lifecycle.jsonl"
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # e.g. the CLI, to show progress

    def _connect(self) -> sqlite3.Connection:
        return self.workspace.connect()

    def insert(self, record: InstanceRecord, *, check: Callable[[list[InstanceRecord]], None] | None = None) -> None:
        """Add ``record``; ``check`` sees every row first, in the same write transaction, and may refuse.

        Why one transaction: two ``gpu up`` at once must not both pass a budget that has room for one.
        """
        conn = self._connect()
        try:
            with transaction(conn):
                if check is not None:
                    rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM gpu_instances").fetchall()  # noqa: S608
                    check([InstanceRecord(*row) for row in rows])
                placeholders = ", ".join("?" for _ in _COLUMNS)
                conn.execute(
                    f"INSERT INTO gpu_instances ({', '.join(_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                    [getattr(record, name) for name in _COLUMNS],
                )
        finally:
            conn.close()

    def update(self, label: str, **changes: Any) -> None:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}")
        conn = self._connect()
        try:
            assignments = ", ".join(f"{name} = ?" for name in changes)
            conn.execute(
                f"UPDATE gpu_instances SET {assignments} WHERE label = ?",  # noqa: S608 - names checked above
                [*changes.values(), label],
            )
        finally:
            conn.close()

    def set_rate(self, record: InstanceRecord, rate: float, now: float, **changes: Any) -> None:
        """Bill the time so far at the old rate, then bill ``rate`` from ``now`` on."""
        accrued = record.cost(now)
        self.update(record.label, accrued_usd=accrued, rate=rate, rate_since=now, **changes)
        record.accrued_usd, record.rate, record.rate_since = accrued, rate, now
        for name, value in changes.items():
            setattr(record, name, value)

    def get(self, label: str) -> InstanceRecord | None:
        rows = self._select("WHERE label = ?", (label,))
        return rows[0] if rows else None

    def by_instance(self, instance_id: int) -> InstanceRecord | None:
        rows = self._select("WHERE instance_id = ?", (instance_id,))
        return rows[0] if rows else None

    def live(self) -> list[InstanceRecord]:
        return self._select(f"WHERE status IN ({', '.join('?' for _ in LIVE_STATUSES)})", LIVE_STATUSES)

    def all(self) -> list[InstanceRecord]:
        return self._select("", ())

    def _select(self, where: str, params: tuple[Any, ...]) -> list[InstanceRecord]:
        conn = self._connect()
        try:
            rows = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM gpu_instances {where} ORDER BY created_at",  # noqa: S608
                params,
            ).fetchall()
        finally:
            conn.close()
        return [InstanceRecord(*row) for row in rows]

    def log(self, event: str, record: InstanceRecord | None = None, **details: Any) -> None:
        """Append one event to the lifecycle log (never a key: only ids, rates, reasons)."""
        entry: dict[str, Any] = {"ts": round(time.time(), 3), "event": event}
        if record is not None:
            entry.update(
                instance_id=record.instance_id,
                label=record.label,
                gpu=record.gpu_name,
                dph_total=record.running_rate,
                run=record.run,
            )
        entry.update(details)
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # private, like the rest
        with open(descriptor, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        for listener in self.listeners:
            listener(entry)

    def events(self) -> Iterator[dict[str, Any]]:
        if not self.log_path.exists():
            return
        with self.log_path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def key_path(self, teacher: str) -> Path:
        """Where the vLLM API key shared by a teacher's instances is kept (mode 0600)."""
        return self.folder / "keys" / f"{teacher}.key"
