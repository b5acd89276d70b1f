"""One benchmark run in a fresh process, so that each run's peak RSS is its own (shared by the benchmarks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

# ``arcticcodex ARGS`` in this interpreter, reporting its exit code, its peak RSS (VmHWM) and when it ended
CLI_CHILD = """
import json, sys, time
from arcticcodex.cli import cli
try:
    cli.main(args=sys.argv[2:], prog_name="arcticcodex")
except SystemExit as stop:
    code = stop.code
else:
    code = 0
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
json.dump({"code": code, "hwm_kb": int(status["VmHWM"].split()[0]), "ended": time.time()}, open(sys.argv[1], "w"))
"""


def run_cli(scratch: Path, *args: str, expected: tuple[int, ...] = (0,)) -> tuple[dict[str, Any], str]:
    """``arcticcodex ARGS`` in a child process run from ``scratch`` (so ``benchmarks/`` is not on its
    import path): (its exit code, peak RSS and end instant; its stdout).  An exit status other than
    ``expected`` ends the benchmark."""
    measured = scratch / "child.json"
    done = subprocess.run(
        [sys.executable, "-c", CLI_CHILD, str(measured), *args], cwd=scratch, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(measured.read_text())
    if (result["code"] or 0) not in expected:
        raise SystemExit(f"arcticcodex {' '.join(args[:4])} … exited {result['code']}:\n{done.stderr[-3000:]}")
    return result, done.stdout


def rain_question(n: int) -> str:
    """The ``n``-th templated prompt: a station's rainfall."""
    return f"How much rain did station {n} record?"


def rain_fact(n: int) -> str:
    """The one-sentence fact given with prompt ``n`` (and what the extractive drafter answers with)."""
    return f"Station {n} recorded {n % 37 + 1} millimetres of rain on day {n % 365 + 1} of the survey."


def write_rain_prompts(path: Path, count: int) -> Path:
    """``count`` prompts with a one-sentence fact each (a station's rainfall), as JSONL."""
    with path.open("w") as handle:
        for n in range(count):
            handle.write(json.dumps({"instruction": rain_question(n), "evidence": rain_fact(n)}) + "\n")
    return path


def run_in_child(script: str, count: int) -> dict[str, float]:
    """Run ``script --child COUNT`` and read the JSON object it prints."""
    output = subprocess.run(
        [sys.executable, script, "--child", str(count)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def fake_teacher_workspace(scratch: Path, name: str, base_url: str, concurrency: int) -> Path:
    """A fresh workspace whose only teacher is the fake at ``base_url``, at ``concurrency`` requests in flight."""
    root = scratch / name
    run_cli(scratch, "init", str(root))
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    run_cli(
        scratch, "-w", str(root), "teachers", "add", "fake", "--preset", "vllm", "--base-url", base_url,
        "--model", "fake-model", "--concurrency", str(concurrency),
    )  # fmt: skip
    return root
