"""``arcticcodex distill --batch``: each round's teacher calls go up through the Batch API (files, batches,
results file) of the fake server over real HTTP, at the preset's batch price, journaled and resumable.

What is checked is what the server really received: no chat completion is sent one by one, each round of
all tasks is one batch, no line is ever submitted twice unless the provider failed it, and the run's spend
is the batch price of what the batches answered (half the online price for the openai preset).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.teachers.entries import PRESETS, TeacherConfig
from arcticcodex.teachers.results import Usage
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

PROMPTS = 4
POLL = ["--batch-poll", "0.01"]


@pytest.fixture(autouse=True)
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test-deepseek")


def make_root(acx: Acx, root: Path, server: FakeOpenAIServer, *, preset: str = "openai") -> Path:
    workspace, _ = Workspace.init(root)
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    acx("-w", workspace.root, "keys", "new", "dataset")
    acx(
        "-w", root, "teachers", "add", "gpt", "--preset", preset, "--base-url", server.base_url, "--model", "fake-model"
    )
    return workspace.root


def write_prompts(path: Path, count: int = PROMPTS) -> Path:
    lines = [
        json.dumps(
            {
                "instruction": f"When was the mill of village {n} built?",
                "evidence": f"Village {n} built its mill in {1700 + 7 * n}, with {n % 5 + 2} masons from the coast.",
            }
        )
        for n in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def distill(acx: Acx, root: Path, *args: str | Path, code: int = 0) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(acx("-w", root, "distill", *args, "--json", code=code).stdout)
    return summary


def answered_lines(server: FakeOpenAIServer) -> Counter[str]:
    """How often the fake answered each custom id inside a batch."""
    return Counter(r.path.rsplit("/", 1)[1] for r in server.requests if "/lines/" in r.path)


def chat_requests(server: FakeOpenAIServer) -> list[str]:
    return [r.path for r in server.requests if r.path.endswith("/chat/completions")]


def cached_cost(root: Path, price: TeacherConfig, *, batch: bool) -> float:
    """What the replies in the workspace's request cache cost at ``price`` (online or batch)."""
    with sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db") as conn:
        usages = [Usage.model_validate_json(usage) for (usage,) in conn.execute("SELECT usage FROM teacher_cache")]
    cost = price.batch_cost if batch else price.cost
    return math.fsum(cost(u.prompt_tokens, u.cache_hit_tokens, u.completion_tokens) for u in usages)


def spent(root: Path, run_id: str) -> float:
    with sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db") as conn:
        (value,) = conn.execute("SELECT spent_usd FROM distill_runs WHERE id = ?", (run_id,)).fetchone()
    return float(value)


OPENAI_PRICE = TeacherConfig(
    name="gpt",
    preset="openai",
    model="fake-model",
    base_url="http://127.0.0.1",
    price_input=PRESETS["openai"]["price_input"],
    price_cached_input=PRESETS["openai"]["price_cached_input"],
    price_output=PRESETS["openai"]["price_output"],
    batch_discount=PRESETS["openai"]["batch_discount"],
)


def test_each_round_of_all_tasks_is_one_batch_at_half_the_price(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    root = make_root(acx, tmp_path / "batch", server)
    weak = {"score": 0.5, "criteria": {"grounding": 0.5}, "weaknesses": ["too short"]}
    server.script("critic", [weak])  # one task gets a rewrite round: a third and fourth batch, of one line each
    out = tmp_path / "out"
    summary = distill(acx, root, "--prompts", prompts, "--out", out, "--teachers", "gpt", "--batch", *POLL)

    assert summary["status"] == "complete" and summary["accepted"] == PROMPTS and summary["written"] == PROMPTS
    assert chat_requests(server) == []  # not one call went to /chat/completions directly
    lines = server.batch_api.submitted_lines()
    sizes = Counter(batch for batch, _ in lines)
    assert list(sizes.values()) == [PROMPTS, PROMPTS, 1, 1, 1]  # critiques, verifications; rewrite, critique, verify
    assert len({key for _, key in lines}) == len(lines)  # no line twice
    assert answered_lines(server) == Counter(key for _, key in lines)  # each answered exactly once
    report = verify_dataset(out)
    assert report.ok and report.records == PROMPTS, report.problems

    # the same prompts online, in a second workspace: the same replies, at twice the price
    server.reset()
    server.script("critic", [weak])
    online_root = make_root(acx, tmp_path / "online", server)
    online = distill(acx, online_root, "--prompts", prompts, "--out", tmp_path / "online-out", "--teachers", "gpt")
    assert online["accepted"] == PROMPTS and len(chat_requests(server)) == len(lines)
    batch_spent, online_spent = spent(root, summary["run_id"]), spent(online_root, online["run_id"])
    assert batch_spent == pytest.approx(cached_cost(root, OPENAI_PRICE, batch=True), rel=1e-9)
    assert online_spent == pytest.approx(cached_cost(online_root, OPENAI_PRICE, batch=False), rel=1e-9)
    assert batch_spent == pytest.approx(online_spent / 2, rel=1e-9)


def test_a_preset_without_a_batch_api_is_refused_before_anything_is_sent(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path / "ws", server, preset="deepseek")
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    server.clear()
    result = acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out", "--batch", code=1)

    message = result.stderr
    assert "--batch: teacher 'gpt' (deepseek preset" in message and "has no Batch API" in message
    assert "nothing was sent" in message and "Run without --batch" in message
    assert "batch_discount" in message and str(root / "arcticcodex.toml") in message  # the fix and its place
    assert server.requests == []
    assert "no runs yet" in acx("-w", root, "runs", "list").stdout  # the run was never created


def test_a_failed_line_fails_its_task_and_only_that_line_goes_up_again_on_resume(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path / "ws", server)
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    server.inject("500", role="verifier")  # one line of the verifications' batch lands in the error file
    out = tmp_path / "out"
    first = distill(acx, root, "--prompts", prompts, "--out", out, "--teachers", "gpt", "--batch", *POLL, code=3)

    assert first["failed"] == 1 and first["accepted"] == PROMPTS - 1
    (failure,) = first["failures"]
    reason = failure["reason"]
    assert "answered a line of batch" in reason and "HTTP 500" in reason
    error_files = [b["error_file_id"] for b in server.batch_api.batches.values() if b["error_file_id"]]
    assert len(error_files) == 1
    (failed_line,) = [json.loads(line) for line in server.batch_api.files[error_files[0]]["content"].splitlines()]
    before = server.batch_api.submitted_lines()

    again = distill(acx, root, "--resume", first["run_id"])
    assert again["status"] == "complete" and again["accepted"] == PROMPTS and again["failed"] == 0
    resubmitted = server.batch_api.submitted_lines()[len(before) :]
    assert [key for _, key in resubmitted] == [failed_line["custom_id"]]  # the failed line, and nothing else
    assert verify_dataset(out).records == PROMPTS


def test_an_expired_batch_fails_its_tasks_for_a_resume_and_is_never_attached_to(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path / "ws", server)
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    server.batch_api.end_next("expired")
    out = tmp_path / "out"
    first = distill(acx, root, "--prompts", prompts, "--out", out, "--teachers", "gpt", "--batch", *POLL, code=3)

    assert first["failed"] == PROMPTS
    assert all("ended expired" in f["reason"] and "resumed" in f["reason"] for f in first["failures"])
    expired = server.batch_api.submitted_lines()
    assert len(expired) == PROMPTS and answered_lines(server) == Counter()  # nothing was answered or paid

    again = distill(acx, root, "--resume", first["run_id"])
    assert again["status"] == "complete" and again["accepted"] == PROMPTS
    assert [key for _, key in server.batch_api.submitted_lines()[PROMPTS : 2 * PROMPTS]] == [k for _, k in expired]


def test_the_budget_counts_a_submitted_batch_and_refuses_lines_it_cannot_hold(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path / "ws", server)
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    out = tmp_path / "out"
    # a line's estimate at the openai preset: ~200 prompt tokens and max_tokens/4 = 512 completion tokens at
    # half price, about $0.0004: a budget of $0.0006 holds one line of the first batch, not four
    args: list[str | Path] = ["--prompts", prompts, "--out", out, "--teachers", "gpt", "--batch", *POLL]
    args += ["--budget-usd", "0.0006"]
    result = acx("-w", root, "distill", *args, code=4)

    first_batch = server.batch_api.submitted_lines()[0][0]
    # one critique went up; the other three were refused before they were sent (that task's later rounds
    # followed, one line each, while the budget had room for them)
    assert Counter(batch for batch, _ in server.batch_api.submitted_lines())[first_batch] == 1
    assert "the budget of $0.00 is spent" in result.stdout and "--budget-usd N" in result.stdout
    run_id = json.loads(acx("-w", root, "runs", "list", "--json").stdout)[0]["run_id"]
    assert f"arcticcodex distill --resume {run_id} --budget-usd N" in result.stdout

    summary = distill(acx, root, "--resume", run_id, "--budget-usd", "1")
    assert summary["status"] == "complete" and summary["accepted"] == PROMPTS
    keys = [key for _, key in server.batch_api.submitted_lines()]
    assert len(keys) == len(set(keys))  # the line answered before the stop was not sent again


def test_a_teacher_drafting_makes_the_drafts_the_first_round_batch(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path / "ws", server)
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    out = tmp_path / "out"
    args: list[str | Path] = ["--prompts", prompts, "--out", out, "--teachers", "gpt", "--drafter", "gpt", "--batch"]
    args += POLL
    summary = distill(acx, root, *args)

    assert summary["status"] == "complete" and summary["accepted"] == PROMPTS
    roles: dict[str, set[str]] = {}
    for request in server.requests:
        if "/lines/" in request.path:
            roles.setdefault(request.path.split("/")[3], set()).add(str(request.role))
    assert list(roles.values()) == [{"drafter"}, {"critic"}, {"verifier"}]  # a round of all the tasks each
    assert chat_requests(server) == []


def test_batch_options_are_checked_before_a_run_exists(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path / "ws", server)
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    start: list[str | Path] = ["-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out"]

    poll = acx(*start, "--teachers", "gpt", "--batch", "--batch-poll", "0", code=1).stderr
    assert "--batch-poll must be between 0 and 3600 seconds, not 0.0" in poll
    alone = acx(*start, "--teachers", "gpt", "--batch-poll", "5", code=2).stderr
    assert "--batch-poll sets how often --batch checks its batches; add --batch" in alone
    offline = acx(*start, "--teachers", "local", "--batch", code=1).stderr
    assert "--batch sends the teachers' calls as provider batches, but this run uses no API teacher" in offline
    assert "`arcticcodex teachers add`" in offline and "run without --batch" in offline
    assert "no runs yet" in acx("-w", root, "runs", "list").stdout and server.requests == []

    started = distill(acx, root, "--prompts", prompts, "--out", tmp_path / "out", "--teachers", "gpt", "--batch", *POLL)
    resumed = acx("-w", root, "distill", "--resume", started["run_id"], "--batch-poll", "1", code=2).stderr
    assert "only --budget-usd may change (got --batch-poll)" in resumed


def test_a_teacher_entry_sets_its_own_batch_discount(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    """A server the presets do not know to have a Batch API (vLLM's) gets one, at its own discount, by its entry."""
    workspace, _ = Workspace.init(tmp_path / "ws")
    root = workspace.root
    prices = {"price_input": 0.2, "price_cached_input": 0.1, "price_output": 0.6}
    config = root / "arcticcodex.toml"
    config.write_text(
        config.read_text()
        + '\n[vault]\nembedding_model = "hashing-64"\n'
        + f'\n[[teachers]]\nname = "own"\npreset = "vllm"\nbase_url = "{server.base_url}"\nmodel = "fake-model"\n'
        + "".join(f"{name} = {price}\n" for name, price in prices.items())
        + "batch_discount = 0.25\n"
    )
    acx("-w", root, "keys", "new", "dataset")
    acx("-w", root, "teachers", "trust", "own")
    prompts = write_prompts(tmp_path / "prompts.jsonl")
    summary = distill(acx, root, "--prompts", prompts, "--out", tmp_path / "out", "--teachers", "own", "--batch", *POLL)

    assert summary["status"] == "complete" and summary["accepted"] == PROMPTS and chat_requests(server) == []
    own = TeacherConfig(
        name="own",
        preset="vllm",
        model="fake-model",
        price_input=0.2,
        price_cached_input=0.1,
        price_output=0.6,
        batch_discount=0.25,
    )
    online_price = cached_cost(root, own, batch=False)
    assert spent(root, summary["run_id"]) == pytest.approx(cached_cost(root, own, batch=True), rel=1e-9)
    assert spent(root, summary["run_id"]) == pytest.approx(0.75 * online_price, rel=1e-9)
