"""Whether a rented vLLM is being used: its own request counter, read through the tunnel.

Why vLLM's counter and not our own bookkeeping: any client may use the tunnel (a distill run, a
notebook, ``curl``), and only the server sees them all.  ``/metrics`` is unauthenticated in vLLM,
like ``/health``, and ``vllm:request_success_total`` counts finished requests per finish reason.
"""

from __future__ import annotations

import contextlib

import httpx2 as httpx

_COUNTER = "vllm:request_success_total"


def requests_served(local_port: int, *, timeout: float = 5.0) -> float | None:
    """Requests vLLM has finished so far, or None when it cannot be asked (tunnel down, no metrics)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{local_port}/metrics", timeout=timeout)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    total = 0.0
    for line in response.text.splitlines():
        if line.startswith(_COUNTER):
            with contextlib.suppress(ValueError, IndexError):
                total += float(line.rsplit(" ", 1)[1])
    return total
