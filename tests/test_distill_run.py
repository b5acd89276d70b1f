"""``arcticcodex distill`` end to end: prompts → fake teachers over real HTTP → journal → signed dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.vault import Vault
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

OTTERS = "Otters eat mostly fish. They also eat crabs and frogs."
BEAVERS = "Beavers build dams from branches and mud. Their dams make ponds."
PROMPTS = [
    {"instruction": "What do otters eat?", "evidence": OTTERS},
    {"instruction": "What do beavers build dams from?", "evidence": [BEAVERS]},
    {"instruction": "What do otters eat?", "evidence": OTTERS},  # the same prompt twice is one task
    {"instruction": "What do beavers' dams make?", "evidence": BEAVERS, "reference": "Ponds."},
]


def make_root(acx: Acx, tmp_path: Path, server: FakeOpenAIServer, *, preset: str = "vllm") -> Path:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    acx("-w", workspace.root, "keys", "new", "dataset")  # the CLI records the new key as trusted
    acx(
        "-w",
        workspace.root,
        "teachers",
        "add",
        "gpu",
        "--preset",
        preset,
        "--base-url",
        server.base_url,
        "--model",
        "fake-model",
    )
    return workspace.root


def write_prompts(path: Path, prompts: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(prompt) + "\n" for prompt in prompts))
    return path


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prompts_to_a_verified_dataset_over_real_http(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS)
    weak = {"score": 0.5, "criteria": {"grounding": 0.5}, "weaknesses": ["leaves out crabs and frogs"]}
    server.script("critic", [weak])  # the first prompt's first draft is judged weak, then rewritten
    server.script("rewriter", [{"text": "Otters eat mostly fish, and also crabs and frogs [1].", "changes": ["all"]}])
    out = tmp_path / "dataset"
    args = ["distill", "--prompts", str(prompts), "--out", str(out), "--teachers", "gpu", "--drafter", "gpu"]
    summary = json.loads(acx("-w", root, *args, "--concurrency", "1", "--json").stdout)

    assert summary["status"] == "complete"
    assert (summary["accepted"], summary["rejected"], summary["failed"], summary["pending"]) == (3, 0, 0, 0)
    assert summary["written"] == 3 and summary["out"] == str(out.resolve()) and summary["run_id"].startswith("run-")

    train = records(out / "train.jsonl")
    assert [r["instruction"] for r in train] == [p["instruction"] for p in (PROMPTS[0], PROMPTS[1], PROMPTS[3])]
    otters = train[0]
    assert otters["completion"] == "Otters eat mostly fish, and also crabs and frogs [1]."
    assert [revision["score"] for revision in otters["revisions"]] == [0.5, 0.9]
    assert otters["revisions"][0]["text"] == "Otters eat mostly fish. They also eat crabs and frogs. [1]"  # the draft
    assert otters["quality"] == 0.9 and otters["accepted"] is True and otters["teachers"] == ["gpu"]
    assert otters["evidence"][0]["sha256"] == hashlib.sha256(OTTERS.encode()).hexdigest()
    assert otters["source"] == {"kind": "prompts", "ref": f"{prompts}:1"}
    assert otters["messages"][1] == {"role": "assistant", "content": otters["completion"]}
    assert [r["index"] for r in train] == [0, 1, 2]

    sent = server.requests
    roles = [request.role for request in sent]
    assert roles.count("drafter") == 3  # one draft per distinct prompt
    assert roles.count("rewriter") == 1 and roles.count("critic") == 4
    # both beaver prompts get the same draft from the same evidence: its claim check is asked once (the cache)
    assert roles.count("verifier") == 3
    drafts = [request.body["messages"][1]["content"] for request in sent if request.role == "drafter"]
    assert "What do otters eat?" in drafts[0] and OTTERS in drafts[0]

    report = verify_dataset(out)
    assert report.ok, report.problems
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["record_count"] == 3 and manifest["recipe"]["run_id"] == summary["run_id"]
    assert manifest["recipe"]["drafter"] == "gpu" and manifest["card"]["file"] == "README.md"
    assert "train.jsonl | 3" in (out / "README.md").read_text()
    assert acx("-w", root, "dataset", "verify", out).output.strip().startswith("OK")

    datasets = pytest.importorskip("datasets")
    for shape in ("messages", "dpo"):
        acx("-w", root, "dataset", "export", out, "--format", shape, "-o", tmp_path / f"{shape}.jsonl")
        acx(
            "-w",
            root,
            "dataset",
            "export",
            out,
            "--format",
            "parquet",
            "--rows",
            shape,
            "-o",
            tmp_path / f"{shape}.parquet",
        )
    messages = datasets.load_dataset("json", data_files=str(tmp_path / "messages.jsonl"), split="train")
    assert messages.column_names == ["id", "messages"] and len(messages) == 3
    assert messages[0]["messages"][0] == {"role": "user", "content": "What do otters eat?"}
    from_parquet = datasets.load_dataset("parquet", data_files=str(tmp_path / "messages.parquet"), split="train")
    assert from_parquet.to_list() == messages.to_list()
    dpo = datasets.load_dataset("parquet", data_files=str(tmp_path / "dpo.parquet"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(dpo.column_names) and len(dpo) == 1
    # exported without the evidence, the [1] markers would point at nothing: they are removed
    assert dpo[0]["chosen"][0]["content"] == otters["completion"].replace(" [1]", "")
    assert dpo[0]["rejected"][0]["content"] == otters["revisions"][0]["text"].replace(" [1]", "")
    dpo_json = datasets.load_dataset("json", data_files=str(tmp_path / "dpo.jsonl"), split="train")
    assert dpo_json[0]["prompt"] == [{"role": "user", "content": "What do otters eat?"}]


def test_a_spent_budget_stops_the_run_and_resume_finishes_it(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server, preset="deepseek")
    env = {"DEEPSEEK_API_KEY": "sk-test-secret"}
    prompts = write_prompts(tmp_path / "prompts.jsonl", [p for n, p in enumerate(PROMPTS) if n != 2])
    out = tmp_path / "dataset"
    args = ["distill", "--prompts", str(prompts), "--out", str(out), "--concurrency", "1", "--json"]
    stopped = json.loads(acx("-w", root, *args, "--budget-usd", "0.0001", env=env, code=4).stdout)  # work left: 4
    assert stopped["status"] == "stopped" and stopped["pending"] > 0 and "budget" in stopped["note"]
    assert 0.0001 <= stopped["cost_usd"] < 0.001  # the call that crossed the budget completes; none start after
    assert verify_dataset(out).ok  # what was finished is already a valid dataset
    calls_before = len(server.requests)

    finished = json.loads(
        acx("-w", root, "distill", "--resume", stopped["run_id"], "--budget-usd", "1", "--json", env=env).stdout
    )
    assert finished["status"] == "complete" and finished["pending"] == 0 and finished["accepted"] == 3
    assert finished["cost_usd"] > stopped["cost_usd"]
    assert len(records(out / "train.jsonl")) == 3 and verify_dataset(out).ok
    assert "sk-test-secret" not in json.dumps(finished) + (out / "manifest.json").read_text()
    again = json.loads(acx("-w", root, "distill", "--resume", stopped["run_id"], "--json", env=env).stdout)
    assert again["status"] == "complete" and len(server.requests) > calls_before
    assert again["accepted"] == 3


def test_teacher_outage_fails_tasks_as_retryable_and_resume_retries_them(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS[:2])
    out = tmp_path / "dataset"
    server.inject(*["400"] * 2, role="critic")  # refused outright: no retries, the task fails
    first = json.loads(acx("-w", root, "distill", "--prompts", prompts, "--out", out, "--json", code=3).stdout)
    assert first["failed"] == 2 and first["accepted"] == 0
    assert all("refused" in failure["reason"] for failure in first["failures"])
    second = json.loads(acx("-w", root, "distill", "--resume", first["run_id"], "--json").stdout)
    assert second["accepted"] == 2 and second["failed"] == 0 and verify_dataset(out).ok


def test_refuses_to_overwrite_and_appends_keeping_the_dataset_valid(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    out = tmp_path / "dataset"
    first = write_prompts(tmp_path / "first.jsonl", PROMPTS[:2])
    acx("-w", root, "distill", "--prompts", first, "--out", out, "--json")
    before = records(out / "train.jsonl")
    refused = acx("-w", root, "distill", "--prompts", first, "--out", out, code=1)
    assert f"{out} is not empty" in refused.stderr and "--append" in refused.stderr

    second = write_prompts(tmp_path / "second.jsonl", PROMPTS[1:])  # two prompts again: exact duplicates
    summary = json.loads(
        acx(
            "-w", root, "distill", "--prompts", second, "--out", out, "--append", "--keep-near-duplicates", "--json"
        ).stdout
    )
    after = records(out / "train.jsonl")
    assert after[:2] == before  # the records that were there are kept byte for byte (same key, same index)
    assert [r["instruction"] for r in after] == [
        PROMPTS[0]["instruction"],
        PROMPTS[1]["instruction"],
        PROMPTS[3]["instruction"],
    ]
    assert summary["duplicates_removed"] == 2 and verify_dataset(out).ok


def test_near_duplicates_removed_and_a_validation_split(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    facts = [
        f"Lake {name} is {depth} metres deep and lies in the {region}."
        for name, depth, region in [
            ("Alpha", 40, "north"),
            ("Bravo", 55, "south"),
            ("Charlie", 12, "east"),
            ("Delta", 80, "west"),
            ("Echo", 31, "hills"),
            ("Foxtrot", 22, "valley"),
            ("Golf", 67, "plain"),
            ("Hotel", 9, "forest"),
        ]
    ]
    prompts = [{"instruction": f"How deep is Lake {fact.split()[1]}?", "evidence": fact} for fact in facts]
    prompts.append({"instruction": "How deep is Lake Alpha?!", "evidence": facts[0]})  # a paraphrase of the first
    path = write_prompts(tmp_path / "lakes.jsonl", prompts)
    out = tmp_path / "dataset"
    args = ["distill", "--prompts", str(path), "--out", str(out), "--near-duplicates", "0.95", "--validation", "0.3"]
    summary = json.loads(acx("-w", root, *args, "--json").stdout)
    assert summary["accepted"] == 9 and summary["near_duplicates_removed"] == 1 and summary["written"] == 8
    train, validation = records(out / "train.jsonl"), records(out / "validation.jsonl")
    assert len(train) + len(validation) == 8 and train and validation == [r for r in validation if r["accepted"]]
    assert "How deep is Lake Alpha?!" not in {r["instruction"] for r in train + validation}
    report = verify_dataset(out)
    assert report.ok and report.validation == len(validation)
    stats = json.loads(acx("-w", root, "dataset", "stats", out, "--json").stdout)
    assert stats["accepted"] == 8 and stats["validation"] == len(validation)
    (out / "README.md").write_text((out / "README.md").read_text() + "edited\n")
    assert any("card was edited" in p.message for p in verify_dataset(out).problems)


def test_bad_sources_are_usage_errors(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    assert "exactly one source" in acx("-w", root, "distill", "--out", "x", code=1).stderr
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    both = acx("-w", root, "distill", "--prompts", prompts, "--from-vault", "--out", "x", code=1)
    assert "exactly one source" in both.stderr
    assert "--out DIR" in acx("-w", root, "distill", "--prompts", prompts, code=2).stderr
    unknown = acx("-w", root, "distill", "--resume", "run-nope", code=1)
    assert "no distillation run 'run-nope'" in unknown.stderr
    bad = acx("-w", root, "distill", "--prompts", prompts, "--out", "x", "--threshold", "2", code=1)
    assert "--threshold must be between 0 and 1" in bad.stderr


def test_import_conversations_judges_each_turn_with_its_cited_evidence(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")
    with Vault.open(root) as vault:
        chunk_id = vault.chunks_of(vault.list_documents()[0].id)[0].id
        conversation = vault.create_conversation("chat")
        vault.append_message(conversation, "user", "What do otters eat?")
        vault.append_message(conversation, "assistant", "Otters eat mostly fish.", citations=[chunk_id])
        vault.append_message(conversation, "user", "And crabs?")
        vault.append_message(conversation, "assistant", "Yes, crabs and frogs too.")
    server.script("critic", [{"score": 0.95}, {"score": 0.3, "weaknesses": ["no evidence"]}])
    out = tmp_path / "chats"
    summary = json.loads(acx("-w", root, "dataset", "import-conversations", "--out", out, "--json").stdout)
    assert (summary["accepted"], summary["rejected"]) == (1, 1)
    kept, dropped = records(out / "train.jsonl")[0], records(out / "rejected.jsonl")[0]
    assert kept["completion"] == "Otters eat mostly fish." and len(kept["revisions"]) == 1  # judged, not rewritten
    assert kept["evidence"][0]["chunk_id"] == chunk_id and kept["source"]["ref"].startswith(conversation)
    assert dropped["instruction"] == "And crabs?" and dropped["evidence"]  # retrieved, since it cited nothing
    assert not [request for request in server.requests if request.role in ("drafter", "rewriter")]
    assert verify_dataset(out).ok


def test_a_curriculum_written_by_a_teacher(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    (tmp_path / "beavers.md").write_text(f"# Beavers\n\n{BEAVERS}\n")
    acx("-w", root, "vault", "import", tmp_path)
    server.script("questioner", [{"questions": ["What do otters eat?", "  ", "When do otters eat frogs?"]}])
    out = tmp_path / "curriculum"
    args = ["distill", "--from-vault", "--questions-by", "gpu", "--drafter", "gpu", "--questions-per-chunk", "2"]
    summary = json.loads(
        acx("-w", root, *args, "--limit", "3", "--out", out, "--keep-near-duplicates", "--json").stdout
    )
    asked = [request for request in server.requests if request.role == "questioner"]
    assert len(asked) == 2 and "Write up to 2 distinct questions" in asked[0].body["messages"][1]["content"]
    train = records(out / "train.jsonl")
    assert summary["accepted"] == 3 and [r["source"]["kind"] for r in train] == ["curriculum"] * 3
    assert {r["instruction"] for r in train} >= {"What do otters eat?", "When do otters eat frogs?"}
    assert all(r["source"]["ref"].endswith("(gpu)") and len(r["evidence"]) == 1 for r in train)
    assert verify_dataset(out).ok
