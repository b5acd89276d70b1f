"""Fault policy: retries with backoff and jitter, Retry-After, and a circuit breaker per teacher.

Which failures are retried (DeepSeek's and OpenAI's documented codes): 429 (rate or concurrency
limit), 500/502/503/504, timeouts and dropped connections.  400, 401, 402, 403, 404 and 422 mean the
request, the key, the balance or the model name is wrong: retrying cannot help, so they are not.
A 429 daily-quota answer carries a long Retry-After; it is honoured up to ``max_retry_after`` and
beyond that the call gives up (and the pool falls back to another teacher) instead of sleeping.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` tries per call; exponential backoff with jitter between them."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when it should not be made."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return float(retry_after) if retry_after <= self.max_retry_after else None
        ceiling: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)  # "equal jitter": never zero, never in lock-step


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


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
