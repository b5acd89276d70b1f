"""The peers ``benchmarks/teachers.py`` measures ArcticCodex against, each in its own process: distilabel
and Curator, sending the same requests to the same fake server.

Curator (``bespokelabs-curator`` 0.1.31) cannot share ArcticCodex's environment: it pins litellm 1.83.7,
which pins openai 2.30.0 (ArcticCodex is built on openai 3), and it wants datasets < 4 and pandas 2.2.2.
So it runs from a virtual environment of its own, ``.venv-peers`` in the checkout (a ``.gitignore``
inside it keeps it out of git), which holds distilabel too::

    scripts/peers   # makes it: python3.11 -m venv .venv-peers, then pip install bespokelabs-curator==0.1.31 …

distilabel runs from ArcticCodex's own interpreter where it is installed there (the ``bench`` extra),
else from ``.venv-peers``.  Each child times its peer's own call (not its imports or set-up) and
reports the CPU seconds its process spent in that call (``getrusage``, its threads and any child
processes included), so a peer that is faster by burning more CPU shows it.

Beside the peers, :func:`run_bare_aiohttp` is no product at all: bare aiohttp posting the same bodies,
the most this machine and the fake allow any Python client.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, TCPConnector

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"

# the CPU seconds of this process and its children so far: user + system time, every thread
CPU_SECONDS = """
def cpu_seconds():
    import resource
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(one.ru_utime + one.ru_stime for one in usage)
"""

DISTILABEL_SCRIPT = CPU_SECONDS + textwrap.dedent(
    """
    import json, sys, time
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    base_url, concurrency, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    with Pipeline(name=f"arcticcodex-bench-{len(rows)}-{concurrency}") as pipeline:
        load = LoadDataFromDicts(data=[{"system": r["system"], "instruction": r["instruction"]} for r in rows],
                                 batch_size=concurrency)
        generate = TextGeneration(
            llm=OpenAILLM(model="fake-model", base_url=base_url, api_key="not-needed", max_retries=0, timeout=60,
                          generation_kwargs={"max_new_tokens": 2048, "temperature": 0.2}),
            system_prompt=rows[0]["system"],
            input_batch_size=concurrency,
            add_raw_output=False,
            add_raw_input=False,
        )
        load >> generate

    if __name__ == "__main__":
        cpu, start = cpu_seconds(), time.perf_counter()
        distiset = pipeline.run(use_cache=False)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        done = sum(1 for row in distiset["default"]["train"] if row["generation"] is not None)
        print("RESULT " + json.dumps({"done": done, "seconds": elapsed, "cpu": cpu}), flush=True)
    """
)

# Curator's documented set-up for an OpenAI-compatible server: the ``openai`` backend with the server's
# ``base_url``; its rate limits lifted far above what is measured (else its defaults throttle it), its
# concurrency the same as ours, its retries off like ours in the benchmark.  The request body is ours
# to the byte but for key order: the same messages, temperature, max_tokens and response_format.
CURATOR_SCRIPT = CPU_SECONDS + textwrap.dedent(
    """
    import importlib.util, json, os, sys, time
    from pathlib import Path

    # tiktoken's encoding from the copy litellm ships (tiktoken would download it: no network here)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(
        Path(importlib.util.find_spec("litellm").origin).parent / "litellm_core_utils" / "tokenizers"
    )
    from bespokelabs import curator

    base_url, concurrency, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    body = {key: value for key, value in rows[0].items() if key not in ("model", "messages", "system", "instruction")}


    class Critic(curator.LLM):
        def prompt(self, row):
            return [{"role": "system", "content": row["system"]}, {"role": "user", "content": row["instruction"]}]

        def parse(self, row, response):
            return {"generation": response}


    llm = Critic(
        model_name="fake-model",
        backend="openai",
        generation_params=body,
        backend_params={
            "base_url": base_url, "api_key": "not-needed", "max_retries": 0, "request_timeout": 60,
            "max_concurrent_requests": concurrency, "max_requests_per_minute": 10**9,
            "max_tokens_per_minute": 10**12, "require_all_responses": False,
        },
    )

    if __name__ == "__main__":
        cpu, start = cpu_seconds(), time.perf_counter()
        response = llm([{"system": r["system"], "instruction": r["instruction"]} for r in rows])
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        done = sum(1 for row in response.dataset if row["generation"])
        print("RESULT " + json.dumps({"done": done, "seconds": elapsed, "cpu": cpu}), flush=True)
    """
)


@dataclass(frozen=True)
class PeerRun:
    """What one peer's child measured: answers received, seconds, CPU seconds of its process."""

    done: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu * 1000 / self.done


def peer_python(module: str) -> str | None:
    """The interpreter that can import ``module``: this one, else ``.venv-peers``'s; None when neither."""
    try:
        if importlib.util.find_spec(module) is not None:
            return sys.executable
    except ModuleNotFoundError:  # a parent package of ``module`` is missing
        pass
    if PEERS_PYTHON.exists():
        probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
        if subprocess.run([str(PEERS_PYTHON), "-c", probe], check=False).returncode == 0:
            return str(PEERS_PYTHON)
    return None


def write_rows(path: Path, bodies: list[dict[str, Any]]) -> None:
    """One JSON line per request: its body (as ArcticCodex sends it) with the system and user texts apart."""
    with path.open("w", encoding="utf-8") as out:
        for body in bodies:
            system, user = body["messages"]
            out.write(json.dumps({**body, "system": system["content"], "instruction": user["content"]}) + "\n")


def run_peer(name: str, base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> PeerRun | None:
    """``name`` ("distilabel" or "curator") sending ``bodies`` at ``concurrency``; None when not installed.

    The child has a scratch HOME, XDG folders and cache, no telemetry and no hub access: nothing it
    writes outlives the run, and nothing leaves the machine.
    """
    python = peer_python("distilabel" if name == "distilabel" else "bespokelabs.curator")
    if python is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        script, data = Path(folder) / "bench.py", Path(folder) / "rows.jsonl"
        script.write_text(DISTILABEL_SCRIPT if name == "distilabel" else CURATOR_SCRIPT, encoding="utf-8")
        write_rows(data, bodies)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": folder,
            "XDG_CACHE_HOME": f"{folder}/cache",
            "XDG_CONFIG_HOME": f"{folder}/config",
            "HF_HOME": f"{folder}/hf",
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "DISTILABEL_CACHE_DIR": folder,
            "DISTILABEL_LOG_LEVEL": "WARNING",
            "CURATOR_CACHE_DIR": f"{folder}/curator",
            "CURATOR_DISABLE_CACHE": "true",
            "CURATOR_DISABLE_RICH_DISPLAY": "1",
            "TELEMETRY_ENABLED": "false",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        completed = subprocess.run(
            [python, str(script), base_url, str(concurrency), str(data)],
            capture_output=True,
            text=True,
            env=env,
            cwd=folder,
            timeout=600,
            check=False,
        )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{name} run failed:\n{completed.stderr[-3000:]}")
    result = json.loads(line[len("RESULT ") :])
    if result["done"] != len(bodies):
        raise SystemExit(f"{name} answered {result['done']} of {len(bodies)} requests:\n{completed.stderr[-3000:]}")
    return PeerRun(int(result["done"]), float(result["seconds"]), float(result["cpu"]))


async def run_bare_aiohttp(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Calls per second of bare aiohttp posting ``bodies`` (no SDK, no parsing beyond the JSON): the
    most this machine and the fake allow a Python client, against which both sides of (d) are read."""
    gate = asyncio.Semaphore(concurrency)
    url, headers = f"{base_url}/chat/completions", {"Content-Type": "application/json", "Authorization": "Bearer x"}
    async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:

        async def one(body: dict[str, Any]) -> None:
            async with (
                gate,
                session.post(url, data=orjson.dumps(body), headers=headers) as r,
            ):
                orjson.loads(await r.read())

        start = time.perf_counter()
        await asyncio.gather(*(one(body) for body in bodies))
        return len(bodies) / (time.perf_counter() - start)
