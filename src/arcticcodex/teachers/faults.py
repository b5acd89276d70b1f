"""Fault policy of the teachers: which failures are retried, and a circuit breaker per teacher.

How long to wait between attempts (backoff, jitter, Retry-After) is :mod:`arcticcodex.retry`'s
policy, shared with the Vast client; a teacher's instance gives up on a Retry-After longer than
``max_retry_after`` instead of waiting.

Which failures are retried (DeepSeek's and OpenAI's documented codes): 429 (rate or concurrency
limit), 500/502/503/504, timeouts and dropped connections.  400, 401, 402, 403, 404 and 422 mean the
request, the key, the balance or the model name is wrong: retrying cannot help, so they are not.
A 429 daily-quota answer carries a long Retry-After; it is honoured up to ``max_retry_after`` and
beyond that the call gives up (and the pool falls back to another teacher) instead of sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class CircuitBreaker:
    """Opens after ``threshold`` consecutive failed calls; stays open for ``cooldown`` seconds.

    While open, calls fail at once (the pool moves to the next teacher) instead of spending a retry
    budget on an endpoint that is down; after the cool-down one call is let through to probe it.
    """

    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    clock: object = field(default=time.monotonic, repr=False)

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if not self.probing and self._now() - self.opened_at >= self.cooldown:
            self.probing = True  # half-open: exactly one probe goes through until it succeeds or fails
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def record_failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at = self._now()
        self.probing = False

    @property
    def reopens_in(self) -> float:
        return 0.0 if self.opened_at is None else max(0.0, self.cooldown - (self._now() - self.opened_at))

    def _now(self) -> float:
        clock = self.clock
        return float(clock()) if callable(clock) else time.monotonic()
