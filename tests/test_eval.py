"""`arcticcodex eval` (issue 14, item 3): a student measured against its teacher on held-out questions.

The fake OpenAI-compatible server plays the student, the baseline and the judge, scripted so each
metric is known in advance: exact match and token F1 against the accepted answers, the verifier's
grounded rate, and the win rate judged in both orders (a judge that always answers "A" gives 0.5,
its position bias cancelled).  The offline local judge decides when no teacher is configured; a
spent budget stops the evaluation; bad input is refused with a message naming the fix, before any
request is sent; and a tiny trained model folder is served for real by `transformers serve`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset.record import Revision, TrainingPair, pair_id_for
from arcticcodex.dataset.split import PlannedSplit
from arcticcodex.dataset.writer import DatasetWriter
from arcticcodex.evaluation.chart import chart_svg
from arcticcodex.evaluation.metrics import estimate, exact_match, token_f1
from arcticcodex.evaluation.store import Evals
from arcticcodex.forge.record_frames import EvidenceRef
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.provenance.signing import Signer
from arcticcodex.vault.store import Vault
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_dataset_record import make_pair

DOCS = {
    "otters.md": "# Otters\n\nOtters eat fish, crabs and sea urchins. Otters sleep in dens by the water.\n",
    "beavers.md": "# Beavers\n\nBeavers live in lodges on rivers. Beavers build dams from branches and mud.\n",
}
OTTERS, BEAVERS = "What do otters eat?", "Where do beavers live?"
HELD_OUT = {  # question -> (accepted answer with its citation marker, document)
    "What do otters eat?": ("Otters eat fish, crabs and sea urchins [1].", "otters.md"),
    "Where do beavers live?": ("Beavers live in lodges on rivers [1].", "beavers.md"),
}
TRAIN = {
    "How do beavers build dams?": "Beavers build dams from branches and mud.",
    "Where do otters sleep?": "In dens.",
}


def build_dataset(root: Path, out: Path, *, held_out: bool = True, signer: Signer | None = None) -> Path:
    """A dataset signed by the workspace's key whose held-out pairs cite chunks of its vault."""
    workspace = Workspace.open(root)
    vault = Vault.open(workspace)
    try:
        chunks = {}
        for document in vault.list_documents():
            chunk = next(c for c in vault.chunks_of(document.id) if "eat" in c.text or "live" in c.text)
            chunks[Path(document.source).name] = EvidenceRef(
                chunk_id=chunk.id, doc_id=document.id, sha256=hashlib.sha256(chunk.text.encode()).hexdigest()
            )
    finally:
        vault.close()
    pairs: list[TrainingPair] = []
    for question, (answer, source) in HELD_OUT.items():
        evidence = (chunks[source],)
        pairs.append(pair(question, answer, evidence))
    for question, answer in TRAIN.items():
        pairs.append(pair(question, answer, ()))
    held = [p.id for p in pairs[: len(HELD_OUT)]] if held_out else []
    signer = signer or KeyStore(workspace.keys_dir).signer("dataset")
    with DatasetWriter(out, signer, validation_fraction=0.5 if held_out else 0.0, split=PlannedSplit(held)) as writer:
        writer.add_many(pairs)
    return out


def pair(question: str, answer: str, evidence: tuple[EvidenceRef, ...]) -> TrainingPair:
    revisions = (Revision(1, "I do not know.", 0.3), Revision(2, answer, 0.95))
    return make_pair(
        id=pair_id_for(question, answer, evidence),
        instruction=question,
        completion=answer,
        revisions=revisions,
        evidence=evidence,
        quality=Decimal("0.95"),
    )


@pytest.fixture
def root(tmp_path: Path, acx: Acx) -> Path:
    """A workspace (`init`: its key `dataset` trusted) whose vault holds the two documents."""
    acx("init", tmp_path / "ws")
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    acx("-w", tmp_path / "ws", "vault", "import", docs)
    return tmp_path / "ws"


@pytest.fixture
def dataset(root: Path, tmp_path: Path) -> Path:
    return build_dataset(root, tmp_path / "ds")


@pytest.fixture
def student() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="student-model") as fake:
        yield fake


@pytest.fixture
def baseline() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="base-model") as fake:
        yield fake


def held_out_order(dataset: Path) -> list[str]:
    return [json.loads(line)["instruction"] for line in (dataset / "validation.jsonl").read_text().splitlines()]


def claims(*verdicts: str) -> dict[str, Any]:
    return {
        "claims": [{"claim": f"claim {n}", "verdict": v, "evidence": [1], "note": ""} for n, v in enumerate(verdicts)]
    }


def judge_texts(server: FakeOpenAIServer) -> list[tuple[str, str, str]]:
    """(question, answer A, answer B) of every judge request the server saw, in order."""
    found = []
    for request in server.requests:
        if request.role != "judge":
            continue
        text = request.body["messages"][-1]["content"]
        question = re.search(r"QUESTION:\n(.*?)\n\n", text, re.S)
        first = re.search(r"ANSWER A:\n(.*?)\n\nANSWER B:", text, re.S)
        second = re.search(r"ANSWER B:\n(.*?)\n\nReply with", text, re.S)
        assert question and first and second, text
        found.append((question.group(1), first.group(1), second.group(1)))
    return found


def test_scripted_student_baseline_and_judge_give_exact_metrics_and_both_orders_are_asked(
    root: Path, dataset: Path, server: FakeOpenAIServer, student: FakeOpenAIServer, baseline: FakeOpenAIServer,
    acx: Acx, tmp_path: Path,
) -> None:  # fmt: skip
    acx.add_teacher(root, server, name="judge", model="judge-model")
    acx.add_teacher(root, student, name="tuned", model="student-model")
    acx.add_teacher(root, baseline, name="base", model="base-model")
    order = held_out_order(dataset)
    answers = {
        "What do otters eat?": "Otters eat fish, crabs and sea urchins.",
        "Where do beavers live?": "Beavers live in dams.",
    }
    student.script("generic", [answers[question] for question in order])
    baseline.set_default("generic", "I do not know.")
    # per question: the student's answer checked, then the baseline's (concurrency 1: a fixed order)
    verdicts = {"What do otters eat?": (claims("supported", "supported"), claims("unsupported")),
                "Where do beavers live?": (claims("supported", "contradicted"), claims("unsupported"))}  # fmt: skip
    server.script("verifier", [reply for question in order for reply in verdicts[question]])
    # per question: the student model-first then reference-first, then the baseline the same way; the
    # student's otters answer is the accepted one verbatim, a tie no judge is asked about
    judged = {"What do otters eat?": ["B", "A"], "Where do beavers live?": ["A", "B", "A", "A"]}
    server.script("judge", [{"winner": w, "reason": "r"} for question in order for w in judged[question]])

    chart = tmp_path / "eval.png"
    result = acx(
        "-w", root, "eval", "--student", "tuned", "--baseline", "base", "--heldout", dataset,
        "--concurrency", "1", "--chart", chart, "--json",
    )  # fmt: skip
    report = json.loads(result.stdout)
    metrics = report["models"]["student"]["metrics"]
    assert metrics["exact_match"] == estimate([1.0, 0.0]).to_json() and metrics["exact_match"]["mean"] == 0.5
    assert metrics["token_f1"]["mean"] == pytest.approx(0.8)  # 1.0 and 0.6 (3 of 4 words said, 3 of 6 wanted)
    assert metrics["grounded_supported"]["mean"] == 0.75 and metrics["grounded_contradicted"]["mean"] == 0.25
    assert metrics["win_rate"]["mean"] == 0.75  # otters: the accepted answer (0.5); beavers: won twice (1.0)
    base = report["models"]["baseline"]["metrics"]
    assert base["exact_match"]["mean"] == 0.0 and base["token_f1"]["mean"] == 0.0
    assert base["grounded_supported"]["mean"] == 0.0 and base["win_rate"]["mean"] == 0.25  # lost twice, then A twice
    assert report["judges"] == ["judge"]
    for metric in metrics.values():
        assert metric["low"] <= metric["mean"] <= metric["high"] and metric["n"] == 2

    # what was sent: the student asked the question as it was trained, in prose, at temperature 0
    asked = [request.body for request in student.requests if request.role == "generic"]
    assert [body["messages"] for body in asked] == [[{"role": "user", "content": q}] for q in order]
    assert all(body["temperature"] == 0.0 and "response_format" not in body for body in asked)
    assert not [r for r in student.requests if r.role in ("verifier", "judge")]  # the student never judges
    # the judge saw each answer in both positions, against the accepted answer without its citation marker
    seen = judge_texts(server)
    assert len(seen) == 6
    for question in order:
        reference = HELD_OUT[question][0].replace(" [1]", "")
        for answer in {answers[question], "I do not know."} - {reference}:
            assert (question, answer, reference) in seen and (question, reference, answer) in seen
    # the verifier checked each answer against the pair's evidence text, found again in the vault
    verify_texts = [r.body["messages"][-1]["content"] for r in server.requests if r.role == "verifier"]
    assert "Otters eat fish, crabs and sea urchins." in verify_texts[order.index("What do otters eat?") * 2]

    # stored in the workspace, and read back
    listed = json.loads(acx("-w", root, "eval", "list", "--json").stdout)
    assert [entry["id"] for entry in listed] == [report["id"]]
    shown = json.loads(acx("-w", root, "eval", "show", report["id"], "--json").stdout)
    assert shown["summary"]["student"] == metrics and shown["report"]["questions"] == report["questions"]
    table = acx("-w", root, "eval", "show", report["id"]).stdout
    assert "win rate vs teacher" in table and "0.750 [" in table
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = chart_svg(report)
    assert svg.startswith("<svg") and "student win rate vs teacher: 0.750" in svg


def test_a_judge_that_always_prefers_the_first_answer_decides_nothing(
    root: Path, dataset: Path, server: FakeOpenAIServer, student: FakeOpenAIServer, acx: Acx
) -> None:
    acx.add_teacher(root, server, name="judge")
    acx.add_teacher(root, student, name="tuned")
    student.set_default("generic", "Otters eat fish.")  # never the accepted answer: every question is judged
    server.set_default("judge", {"winner": "A", "reason": "the first one"})
    report = json.loads(acx("-w", root, "eval", "--student", "tuned", "--heldout", dataset, "--json").stdout)
    assert report["models"]["student"]["metrics"]["win_rate"]["mean"] == 0.5
    assert [row["student"]["win_rate"] for row in report["questions"]] == [0.5, 0.5]
    orders = [j["order"] for row in report["questions"] for j in row["student"]["judgements"]]
    assert orders == ["model-first", "reference-first"] * 2


def test_the_offline_local_judge_decides_when_no_judge_is_configured(
    root: Path, dataset: Path, student: FakeOpenAIServer, acx: Acx
) -> None:
    acx.add_teacher(root, student, name="tuned")  # the model under test: never its own judge
    order = held_out_order(dataset)
    answers = {
        "What do otters eat?": "Otters eat fish, crabs and sea urchins.",
        "Where do beavers live?": "I do not know.",
    }
    student.script("generic", [answers[question] for question in order])
    report = json.loads(
        acx("-w", root, "eval", "--student", "tuned", "--heldout", dataset, "--concurrency", "1", "--json").stdout
    )
    assert report["judges"] == ["local"]
    rows = {row["question"]: row["student"] for row in report["questions"]}
    otters, beavers = rows["What do otters eat?"], rows["Where do beavers live?"]
    assert otters["win_rate"] == 0.5 and [j["winner"] for j in otters["judgements"]] == ["tie", "tie"]
    assert beavers["win_rate"] == 0.0 and [j["winner"] for j in beavers["judgements"]] == ["B", "A"]
    assert otters["grounded_supported"] == 1.0 and otters["grounded_contradicted"] == 0.0
    assert beavers["grounded_supported"] == 0.0
    again = json.loads(
        acx("-w", root, "eval", "--student", "tuned", "--heldout", dataset, "--concurrency", "1", "--json").stdout
    )
    assert again["models"] == report["models"]  # deterministic: cached answers, seeded intervals
    shown = acx("-w", root, "eval", "--student", "tuned", "--heldout", dataset).stdout
    assert "win rate vs teacher" in shown and "0.250 [0.000, 0.500] n=2" in shown and "judged by: local" in shown
    assert re.search(r"stored as (eval-\w+) \(see it again: arcticcodex eval show \1\)", shown)


def test_a_spent_budget_stops_the_evaluation_before_a_request(
    root: Path, dataset: Path, server: FakeOpenAIServer, student: FakeOpenAIServer, acx: Acx
) -> None:
    acx.add_teacher(root, server, name="judge")
    acx.add_teacher(root, student, name="tuned")
    failed = acx("-w", root, "eval", "--student", "tuned", "--heldout", dataset, "--budget-usd", "0", code=1)
    assert "the budget of $0.00 is spent" in failed.stderr and "--budget-usd" in failed.stderr
    assert not [r for r in student.requests + server.requests if r.role is not None]
    assert Evals(Workspace.open(root)).newest() == []


def test_a_budget_spent_midway_stops_the_evaluation_at_the_next_call(
    root: Path, dataset: Path, server: FakeOpenAIServer, student: FakeOpenAIServer, acx: Acx
) -> None:
    import tomlkit

    acx.add_teacher(root, server, name="judge")
    acx.add_teacher(root, student, name="tuned")
    config = root / "arcticcodex.toml"
    document = tomlkit.parse(config.read_text())
    for entry in document["teachers"]:
        if entry["name"] == "tuned":
            entry["price_input"] = 1_000_000.0  # $1 a prompt token: the first question costs over $0.50
    config.write_text(tomlkit.dumps(document))
    args = ("--student", "tuned", "--heldout", dataset, "--concurrency", "1", "--budget-usd", "0.5")
    failed = acx("-w", root, "eval", *args, code=1)
    assert "the budget of $0.50 is spent" in failed.stderr and "raise --budget-usd to continue" in failed.stderr
    assert len([r for r in student.requests if r.role == "generic"]) == 1  # the first question only
    assert Evals(Workspace.open(root)).newest() == []


def test_bad_input_is_refused_with_the_fix_before_anything_is_sent(
    root: Path, dataset: Path, student: FakeOpenAIServer, acx: Acx, tmp_path: Path
) -> None:
    acx.add_teacher(root, student, name="tuned")
    failed = acx("-w", root, "eval", "--student", "nobody", "--heldout", dataset, code=1)
    assert "--student 'nobody' is neither a configured teacher (known: tuned) nor a model folder" in failed.stderr
    assert "arcticcodex teachers add NAME --preset vllm" in failed.stderr

    failed = acx("-w", root, "eval", "--student", "tuned", "--heldout", dataset, "--judge", "nobody", code=1)
    assert "unknown teacher(s) ['nobody']; known: tuned" in failed.stderr

    stranger = build_dataset(root, tmp_path / "stranger", signer=Ed25519Signer.generate())
    failed = acx("-w", root, "eval", "--student", "tuned", "--heldout", stranger, code=2)
    assert "its signer is NOT trusted" in failed.stderr and "--allow-untrusted" in failed.stderr

    no_split = build_dataset(root, tmp_path / "no-split", held_out=False)
    failed = acx("-w", root, "eval", "--student", "tuned", "--heldout", no_split, code=1)
    assert f"{no_split} has no validation split" in failed.stderr
    assert "`arcticcodex distill … --validation 0.1`" in failed.stderr

    records = dataset / "validation.jsonl"
    records.write_text(records.read_text().replace("Otters eat fish", "Otters eat steak"))
    failed = acx("-w", root, "eval", "--student", "tuned", "--heldout", dataset, code=1)
    assert f"the dataset in {dataset} is NOT intact" in failed.stderr and "nothing was used from it" in failed.stderr

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    failed = acx("-w", root, "eval", "--student", empty, "--heldout", dataset, code=1)
    assert "the folder holds no model (no config.json or adapter_config.json" in failed.stderr
    assert not student.requests  # nothing was asked of anyone


def test_metrics_normalise_answers_as_squad_does() -> None:
    assert exact_match("The otters eat fish!", "otters eat  fish") == 1.0
    assert token_f1("", "") == 1.0 and token_f1("fish", "") == 0.0
    assert estimate([None, None]).to_json() == {"mean": None, "low": None, "high": None, "n": 0}
    assert estimate([1.0, 0.0, 1.0], seed=3) == estimate([1.0, 0.0, 1.0], seed=3)


@pytest.mark.slow
def test_a_trained_model_folder_is_served_for_real_and_its_eval_is_linked_to_its_receipt(
    root: Path, dataset: Path, acx: Acx, tmp_path: Path
) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("fastapi")  # `transformers serve` (the transformers[serving] extra)
    from tiny_student import make_base

    base = make_base(tmp_path / "base", "chatml")
    fast = ("--lora", "8,16", "--batch-size", "2", "--max-length", "64", "--max-steps", "2")
    acx("-w", root, "train", dataset, "--base", base, "--out", tmp_path / "student", *fast, "--json")
    digest = hashlib.sha256((tmp_path / "student" / "receipt.json").read_bytes()).hexdigest()
    args = ("--student", tmp_path / "student", "--heldout", dataset, "--max-tokens", "8", "--concurrency", "1")
    report = json.loads(acx("-w", root, "eval", *args, "--json").stdout)
    model = report["models"]["student"]
    assert model["receipt_sha256"] == digest and model["model"] == str((tmp_path / "student" / "model").resolve())
    assert len(report["questions"]) == 2 and report["judges"] == ["local"]
    assert all(isinstance(row["student"]["answer"], str) for row in report["questions"])
    assert [record.id for record in Evals(Workspace.open(root)).for_receipt(digest)] == [report["id"]]
    listed = json.loads(acx("-w", root, "eval", "list", "--receipt", digest, "--json").stdout)
    assert [entry["receipt_sha256"] for entry in listed] == [digest]


def test_the_local_judge_compares_without_position_bias() -> None:
    import asyncio

    from arcticcodex.teachers.local_judge import LocalJudge
    from arcticcodex.teachers.results import EvidenceItem

    judge = LocalJudge()
    evidence = [EvidenceItem(number=1, text="Otters eat fish, crabs and sea urchins.")]
    good, bad = "Otters eat fish, crabs and sea urchins.", "Otters eat 40 kilograms of steak."
    first = asyncio.run(judge.compare(OTTERS, good, bad, evidence))
    second = asyncio.run(judge.compare(OTTERS, bad, good, evidence))
    assert (first.winner, second.winner) == ("A", "B")
    assert asyncio.run(judge.compare(OTTERS, good, good, evidence)).winner == "tie"
    assert first.call is not None and first.call.role == "judge" and first.call.teacher == "local-judge"
