"""Issue 12, item 6: `--from-vault --questions-by TEACHER` asks only for the questions it needs.

Before: `--limit 2` sent one question request per chunk of a whole batch of the teacher's concurrency
(64 for vLLM), paid outside the run's ledger and budget, always about the first chunks of the first
document, and a reply without questions ended the command.  Now (the fake server's request log is
the witness): as many requests as the limit needs, across documents, in the run's spend and budget,
and a chunk with no usable question is one failed task in a run that goes on.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from arcticcodex.teachers.entries import PRESETS, TeacherConfig
from arcticcodex.teachers.results import Usage
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, records

TOPICS = ["otters", "beavers", "herons", "salmon"]
DEEPSEEK_ENV = {"DEEPSEEK_API_KEY": "sk-test"}


def vault_of_four_documents(acx: Acx, tmp_path: Path, server: FakeOpenAIServer, preset: str = "vllm") -> Path:
    """Four documents of several chunks each (small chunks), imported."""
    root = make_root(acx, tmp_path, server, preset=preset)
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text().replace("[vault]\n", "[vault]\nchunk_chars = 300\noverlap_chars = 20\n"))
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic in TOPICS:
        sections = [
            f"## {topic.title()} fact {n}\n\nThe {topic} of river {n} were counted in spring {2000 + n}. "
            f"Each count of the {topic} of river {n} is kept in ledger {n}."
            for n in range(1, 7)
        ]
        (docs / f"{topic}.md").write_text(f"# {topic.title()}\n\n" + "\n\n".join(sections) + "\n")
    acx("-w", root, "vault", "import", docs)
    with sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db") as conn:
        per_document = conn.execute("SELECT count(*) FROM chunks GROUP BY document_id").fetchall()
    assert len(per_document) == 4 and all(count >= 3 for (count,) in per_document)
    return root


def asked(server: FakeOpenAIServer) -> list[str]:
    """The passages the teacher was asked to write questions about, in order."""
    return [r.body["messages"][1]["content"] for r in server.requests if r.role == "questioner"]


def test_limit_2_asks_for_two_questions_not_a_batch_of_64(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = vault_of_four_documents(acx, tmp_path, server)
    server.set_default("questioner", {"questions": ["Where were they counted?", "Which ledger keeps the count?"]})
    args = ["distill", "--from-vault", "--questions-by", "gpu", "--keep-near-duplicates", "--json"]
    summary = json.loads(acx("-w", root, *args, "--limit", "2", "--out", tmp_path / "a").output)
    assert len(asked(server)) == 1  # two questions per chunk (the default): one chunk is enough
    assert summary["accepted"] + summary["rejected"] == 2 and summary["failed"] == 0
    server.clear()
    summary = json.loads(acx("-w", root, *args, "--limit", "5", "--out", tmp_path / "b").output)
    assert len(asked(server)) == 2  # ceil(5 / 2) = 3 chunks, and the first one's reply comes from the cache
    assert summary["accepted"] + summary["rejected"] == 5


def test_the_chunks_asked_about_spread_over_the_documents(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = vault_of_four_documents(acx, tmp_path, server)
    args = ["distill", "--from-vault", "--questions-per-chunk", "1", "--limit", "4", "--keep-near-duplicates"]
    acx("-w", root, *args, "--questions-by", "gpu", "--out", tmp_path / "by-teacher")
    passages = asked(server)
    assert len(passages) == 4
    assert [next(topic for topic in TOPICS if topic in passage.lower()) for passage in passages] == sorted(TOPICS)
    acx("-w", root, *args, "--out", tmp_path / "offline")
    sources = {pair["evidence"][0]["source"] for pair in records(tmp_path / "offline" / "train.jsonl")}
    assert len(sources) == 4  # the offline curriculum samples the same way


def test_question_calls_are_in_the_spend_and_the_budget(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = vault_of_four_documents(acx, tmp_path, server, preset="deepseek")
    base = ["distill", "--from-vault", "--questions-by", "gpu", "--limit", "3", "--questions-per-chunk", "1"]
    refused = acx("-w", root, *base, "--budget-usd", "0", "--out", tmp_path / "x", env=DEEPSEEK_ENV, code=1)
    assert "the budget of $0.00 was spent while gpu wrote the questions (0 call(s), $0.0000)" in refused.output
    assert "no run was created" in refused.output and "raise --budget-usd" in refused.output
    assert asked(server) == []
    assert acx("-w", root, "runs", "list", "--json").output.strip() == "[]"

    # a budget the questions alone use up: they are paid once, recorded, and the run waits for more budget
    out = tmp_path / "out"
    stopped = json.loads(
        acx("-w", root, *base, "--budget-usd", "0.00001", "--out", out, "--json", env=DEEPSEEK_ENV, code=4).output
    )
    assert len(asked(server)) == 3 and {r.role for r in server.requests} == {"questioner"}  # nothing after them
    assert stopped["pending"] == 3 and stopped["cost_usd"] >= 0.00001 and "budget" in stopped["note"]
    finished = json.loads(
        acx("-w", root, "distill", "--resume", "latest", "--budget-usd", "1", "--json", env=DEEPSEEK_ENV).output
    )
    assert finished["accepted"] + finished["rejected"] == 3 and len(asked(server)) == 3  # no question asked twice
    prices = TeacherConfig(
        name="gpu",
        preset="deepseek",
        model="fake-model",
        **{name: PRESETS["deepseek"][name] for name in ("price_input", "price_cached_input", "price_output")},
    )
    with sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db") as conn:
        usages = [Usage.model_validate_json(usage) for (usage,) in conn.execute("SELECT usage FROM teacher_cache")]
        (spent,) = conn.execute("SELECT spent_usd FROM distill_runs").fetchone()
    paid = sum(prices.cost(u.prompt_tokens, u.cache_hit_tokens, u.completion_tokens) for u in usages)
    assert spent == pytest.approx(paid, rel=1e-9)  # questions, drafts and judgements: every paid reply, once
    shown = acx("-w", root, "runs", "show", finished["run_id"]).output
    assert f"spent     ${finished['cost_usd']:.4f} of a $1.00 budget" in shown


def test_a_reply_without_questions_fails_that_chunk_and_the_run_goes_on(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = vault_of_four_documents(acx, tmp_path, server)
    server.script("questioner", [{"questions": []}, {"questions": ["  "]}])  # the reply, then the re-ask's
    args = ["distill", "--from-vault", "--questions-by", "gpu", "--limit", "1", "--questions-per-chunk", "1"]
    result = acx("-w", root, *args, "--out", tmp_path / "out", "--json", code=3)
    summary = json.loads(result.output)
    assert (summary["accepted"], summary["failed"]) == (1, 1)
    [failure] = summary["failures"]
    assert "gpu wrote no usable question about chunk" in failure["reason"] and "beavers.md" in failure["reason"]
    assert "give at least one non-empty question" in failure["reason"]
    assert len(asked(server)) == 3  # the empty reply, its re-ask, then the next chunk
