"""One benchmark run in a fresh process, so that each run's peak RSS is its own (shared by the benchmarks)."""

from __future__ import annotations

import json
import subprocess
import sys


def run_in_child(script: str, count: int) -> dict[str, float]:
    """Run ``script --child COUNT`` and read the JSON object it prints."""
    output = subprocess.run(
        [sys.executable, script, "--child", str(count)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result
