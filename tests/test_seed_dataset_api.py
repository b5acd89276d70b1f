"""The seed's DistillationDatasetWriter example, run as written against a real vault, and its fixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex import KeyStore, Vault, Workspace, verify_dataset
from arcticcodex.compat import DistillationDatasetWriter, FrameVerifier
from arcticcodex.errors import RecordNotFoundError, UserError
from arcticcodex.vault import HashingBackend, import_paths

OTTERS = "Otters eat mostly fish. They also eat crabs and frogs when fish are scarce."


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    workspace, _ = Workspace.init(tmp_path / "ws")
    KeyStore(workspace.keys_dir).create("dataset")
    (tmp_path / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    opened = Vault(workspace, embedder=HashingBackend(64))
    import_paths(opened, [tmp_path / "otters.md"])
    return opened


def test_the_seed_example(vault: Vault, tmp_path: Path) -> None:
    chunk_id = vault.chunks_of(vault.list_documents()[0].id)[0].id
    verifier = FrameVerifier(signer=KeyStore(vault.workspace.keys_dir).signer("dataset"), signer_id="teacher-01")

    writer = DistillationDatasetWriter(vault=vault, verifier=verifier)
    writer.add_training_pair(
        instruction="What do otters eat?",
        completion="Mostly fish; also crabs and frogs when fish are scarce.",
        evidence=[chunk_id],
        feedback="Grounded and complete.",
        quality_score=0.92,
        signer_id="teacher-01",
    )
    writer.add_training_pair(
        instruction="Do otters eat frogs?", completion="Never.", quality_score=0.4, signer_id="teacher-02"
    )
    assert [float(p.quality) for p in writer.filter_by_quality(0.8)] == [0.92]
    stats = writer.export_dataset(tmp_path / "training_data.jsonl")
    out = tmp_path / "training_data"
    assert stats["output_dir"] == str(out) and stats["total_pairs"] == 1
    record = json.loads((out / "train.jsonl").read_text())
    assert record["evidence"][0]["chunk_id"] == chunk_id and record["evidence"][0]["source"].endswith("otters.md")
    assert record["signer_id"] == "teacher-01" and record["id"].startswith("tp-")
    assert verify_dataset(out).ok

    writer.add_training_pair(instruction="Where do otters live?", completion="Rivers.", quality_score=0.9)
    writer.export_dataset(tmp_path / "training_data.jsonl")  # a second export is whole and signed again
    assert len((out / "train.jsonl").read_text().splitlines()) == 2 and verify_dataset(out).ok

    statistics = writer.statistics()
    assert statistics["total_pairs"] == 2 and statistics["average_quality"] == 0.91
    assert statistics["quality_distribution"]["good (0.85-0.95)"] == 2
    assert statistics["signers"] == {"teacher-01": 1, "system": 1}


def test_import_from_conversation_judges_each_turn_against_its_citations(vault: Vault) -> None:
    chunk_id = vault.chunks_of(vault.list_documents()[0].id)[0].id
    conversation = vault.create_conversation("otters")
    vault.append_message(conversation, "user", "What do otters eat?")
    vault.append_message(conversation, "assistant", "Otters eat mostly fish.", citations=[chunk_id])
    vault.append_message(conversation, "user", "What colour is the sky on Mars?")
    vault.append_message(conversation, "assistant", "The sky on Mars is green and made of cheese.")

    writer = DistillationDatasetWriter(vault=vault)
    pairs = writer.import_from_conversation(conversation)
    assert [p.instruction for p in pairs] == ["What do otters eat?", "What colour is the sky on Mars?"]
    grounded, invented = pairs
    assert grounded.evidence[0].chunk_id == chunk_id and grounded.source.ref == conversation
    assert float(grounded.quality) > float(invented.quality)  # judged, not a fixed 0.85
    assert writer.pairs == pairs


def test_mistakes_get_clear_errors(vault: Vault, tmp_path: Path) -> None:
    writer = DistillationDatasetWriter(vault=vault)
    with pytest.raises(RecordNotFoundError):
        writer.add_training_pair("Q?", "A.", evidence=["doc-0000:9"], quality_score=0.9)
    writer.add_training_pair("Q?", "A.", quality_score=0.9)
    with pytest.raises(UserError, match="always signed"):
        writer.export_dataset(tmp_path / "x.jsonl")
    with pytest.raises(TypeError):
        writer.add_training_pair("Q?", "A.")  # type: ignore[call-arg]  # no invented default quality
    with pytest.raises(UserError, match="needs a vault"):
        DistillationDatasetWriter().import_from_conversation("conv-1")
