"""The request cache: every teacher reply, keyed by the SHA-256 of its canonical request.

A rerun or a resumed run asks the same questions; answering them from the workspace database costs
nothing and returns the same reply, so the same decisions are made.  The key covers the endpoint,
the model and the whole request body (messages, temperature, JSON mode), serialised canonically
(sorted keys, no whitespace), so any change to a prompt template or a setting is a different key.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import Any

from ..db import transaction
from ..workspace import Workspace
from .ledger import Ledger
from .results import Usage


def request_key(base_url: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"base_url": base_url, "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequestCache:
    """Reads and writes cached replies in the workspace database (safe across threads)."""

    def __init__(self, workspace: Workspace) -> None:
        self._conn = workspace.connect()
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[str, Usage] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT content, usage FROM teacher_cache WHERE request_sha256 = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return row[0], Usage.model_validate_json(row[1])

    def put(
        self,
        key: str,
        teacher: str,
        model: str,
        content: str,
        usage: Usage,
        *,
        cost_usd: float = 0.0,
        ledger: Ledger | None = None,
    ) -> None:
        """Store a usable reply; its ``cost_usd`` is settled through ``ledger.settle`` in the same transaction."""
        stamp = datetime.now(UTC).isoformat()
        settle = ledger.settle if ledger is not None and cost_usd else None
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO teacher_cache (request_sha256, teacher, model, content, usage, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, teacher, model, content, usage.model_dump_json(), stamp),
            )
            if settle is not None:
                settle(self._conn, cost_usd)
        if settle is not None and ledger is not None:  # committed: the ledger may count it as written
            ledger.settled_usd += cost_usd

    def close(self) -> None:
        self._conn.close()
