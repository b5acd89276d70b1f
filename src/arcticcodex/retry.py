"""One retry policy for every HTTP client of the project: the teachers and the Vast.ai client.

Both wait the same way between attempts — exponential backoff with "equal jitter" under a ceiling, so
clients never retry in lock-step and never wait zero — and both honour a server's ``Retry-After``,
which RFC 9110 §10.2.3 allows in two forms: delta-seconds (``120``) or an HTTP-date
(``Wed, 21 Oct 2026 07:28:00 GMT``).  A date is turned into seconds from now; one in the past means
"now".  What differs between callers is only what a Retry-After too long to wait for means:
a teacher gives up (the pool moves on to another teacher), the Vast client falls back to its own
backoff.  Those are parameters of one policy, not two implementations.

A foundation module: it imports nothing from the rest of the package.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Literal

__all__ = ["RetryPolicy", "parse_retry_after"]

_JITTER = random.Random()  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` tries per call; exponential backoff with jitter between them, under ``max_delay``.

    A ``Retry-After`` of at most ``max_retry_after`` seconds is waited for as given; a longer one makes
    the call give up (``beyond_max_retry_after="give_up"``) or is ignored in favour of the backoff
    (``"backoff"``).
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    beyond_max_retry_after: Literal["give_up", "backoff"] = "give_up"

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (attempts count from 1), or None: do not retry."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            if retry_after <= self.max_retry_after:
                return float(retry_after)
            if self.beyond_max_retry_after == "give_up":
                return None
        return self.backoff(attempt, rng)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff after attempt ``attempt``: between half the ceiling and the ceiling."""
        ceiling: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + (rng or _JITTER).uniform(0, ceiling / 2)  # "equal jitter": never zero


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date, relative to ``now``.

    None when there is no header or it is neither form (garbage, a negative number, NaN or infinity):
    the caller then backs off as if the server had said nothing.  A date in the past is 0.0.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # asctime's obsolete form has no zone: every HTTP-date is in GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))
