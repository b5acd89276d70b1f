"""Issue 12, item 7: conversations become multi-turn pairs, signed with their earlier turns; exports
drop [n] markers unless they carry the evidence (found again in the workspace that made the dataset).

The TRAIN_PAIR frame carries the last question and answer; the earlier turns are in the record's
``messages``, which the body digest covers, so the signature still covers every byte of them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from arcticcodex.dataset import pair_id_for, verify_dataset
from arcticcodex.dataset.record import Turn
from arcticcodex.forge.record_frames import EvidenceRef
from arcticcodex.vault import Vault
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import OTTERS, PROMPTS, make_root, records, write_prompts

FIRST, FIRST_ANSWER = "What do otters eat?", "Otters eat mostly fish [1]."
FOLLOW_UP, FOLLOW_UP_ANSWER = "And crabs?", "Yes, they also eat crabs and frogs [1]."


def conversation_dataset(acx: Acx, tmp_path: Path, server: FakeOpenAIServer) -> tuple[Path, Path, str]:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")
    with Vault.open(root) as vault:
        chunk_id = vault.chunks_of(vault.list_documents()[0].id)[0].id
        conversation = vault.create_conversation("chat")
        vault.append_message(conversation, "user", FIRST)
        vault.append_message(conversation, "assistant", FIRST_ANSWER, citations=[chunk_id])
        vault.append_message(conversation, "user", FOLLOW_UP)
        vault.append_message(conversation, "assistant", FOLLOW_UP_ANSWER, citations=[chunk_id])
    out = tmp_path / "chats"
    summary = json.loads(acx("-w", root, "distill", "--from-conversations", "--out", out, "--json").output)
    assert summary["accepted"] == 2 and summary["exit_status"] == 0
    return root, out, chunk_id


def test_a_follow_up_keeps_its_conversation_and_its_signature_covers_it(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root, out, _ = conversation_dataset(acx, tmp_path, server)
    first, follow_up = records(out / "train.jsonl")
    assert first["messages"] == [{"role": "user", "content": FIRST}, {"role": "assistant", "content": FIRST_ANSWER}]
    assert follow_up["instruction"] == FOLLOW_UP and follow_up["completion"] == FOLLOW_UP_ANSWER
    assert follow_up["messages"] == [
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": FIRST_ANSWER},
        {"role": "user", "content": FOLLOW_UP},
        {"role": "assistant", "content": FOLLOW_UP_ANSWER},
    ]
    refs = [
        EvidenceRef(e["chunk_id"], e["doc_id"], e["sha256"], tuple(e["span"]), e["source"])
        for e in follow_up["evidence"]
    ]
    context = (Turn("user", FIRST), Turn("assistant", FIRST_ANSWER))
    assert follow_up["id"] == pair_id_for(FOLLOW_UP, FOLLOW_UP_ANSWER, refs, context)  # the turns are in the id
    assert follow_up["id"] != pair_id_for(FOLLOW_UP, FOLLOW_UP_ANSWER, refs)
    critiques = [r.body["messages"][1]["content"] for r in server.requests if r.role == "critic"]
    assert any(f"Earlier in this conversation:\nUser: {FIRST}" in c and FOLLOW_UP in c for c in critiques)
    assert verify_dataset(out).ok and acx("-w", root, "dataset", "verify", out).output.startswith("OK")

    train = out / "train.jsonl"
    lines = train.read_text().splitlines(keepends=True)
    assert lines[1].count(FIRST_ANSWER) == 1  # in the follow-up's record only as its earlier turn
    lines[1] = lines[1].replace(FIRST_ANSWER, "Otters eat only fish [1].")
    train.write_text("".join(lines))
    report = verify_dataset(out)
    assert not report.ok
    on_line_2 = [p.message for p in report.problems if p.line == 2]
    assert "edited after signing" in on_line_2[0]  # the signature covers the earlier turn
    assert "is not the record's content id" in on_line_2[1]  # and so does the content id
    assert not [p for p in report.problems if p.line == 1]
    assert "FAILED" in acx("-w", root, "dataset", "verify", out, code=1).output


def test_exports_keep_the_turns_and_drop_markers_unless_the_evidence_comes_along(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root, out, _ = conversation_dataset(acx, tmp_path, server)
    plain = tmp_path / "plain.jsonl"
    acx("-w", root, "dataset", "export", out, "--format", "messages", "-o", plain)
    follow_up = [json.loads(line) for line in plain.read_text().splitlines()][1]["messages"]
    assert [turn["content"] for turn in follow_up] == [
        FIRST,
        "Otters eat mostly fish.",
        FOLLOW_UP,
        "Yes, they also eat crabs and frogs.",
    ]
    rag = tmp_path / "rag.jsonl"
    acx("-w", root, "dataset", "export", out, "--format", "messages", "--with-evidence", "-o", rag)
    system, *turns = [json.loads(line) for line in rag.read_text().splitlines()][1]["messages"]
    source = tmp_path / "otters.md"  # imported from outside the workspace: named by its absolute path
    assert system["role"] == "system" and f"EVIDENCE:\n[1] ({source})\n# Otters\n\n{OTTERS}" in system["content"]
    assert [turn["content"] for turn in turns] == [FIRST, FIRST_ANSWER, FOLLOW_UP, FOLLOW_UP_ANSWER]

    (tmp_path / "otters.md").write_text("# Otters\n\nOtters sleep floating on their backs.\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")  # the chunk the pairs were judged on is gone
    refused = acx("-w", root, "dataset", "export", out, "--format", "messages", "--with-evidence", "-o", rag, code=1)
    assert f"train.jsonl:1: the text of evidence [1] ({source}" in refused.output
    assert "export from the workspace that made it, or without --with-evidence" in refused.output


def test_prompts_file_evidence_is_found_in_the_run_journal(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    out = tmp_path / "out"
    acx("-w", root, "distill", "--prompts", prompts, "--out", out, "--drafter", "gpu")
    target = tmp_path / "rag.jsonl"
    acx(
        "-w",
        root,
        "dataset",
        "export",
        out,
        "--format",
        "openai",
        "--with-evidence",
        "--system-prompt",
        "Cite.",
        "-o",
        target,
    )
    [row] = [json.loads(line) for line in target.read_text().splitlines()]
    assert row["messages"][0]["content"] == f"Cite.\n\nEVIDENCE:\n[1] (p.jsonl (evidence 1))\n{OTTERS}"
    assert row["messages"][-1]["content"].endswith("[1]")  # the marker points at the evidence shown
    assert hashlib.sha256(OTTERS.encode()).hexdigest() == records(out / "train.jsonl")[0]["evidence"][0]["sha256"]
