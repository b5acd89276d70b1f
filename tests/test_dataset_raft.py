"""Issue 17, item 5: citation-aware (RAFT-style) exports from a real vault.

Each example's prompt holds the pair's evidence shuffled among ``k`` chunks of *other* documents of
the vault, and the answer cites the evidence at its new place; a student trained on them learns to
pick its evidence.  The dataset is made the user's way (vault import, a conversation, distill) and
exported through the command line.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import DatasetWriter, export_dataset
from arcticcodex.dataset.raft import Exclusions, Passage, RaftExamples
from arcticcodex.errors import DatasetError
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.trust import KeyRing
from arcticcodex.vault import Vault
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_dataset_record import make_pair
from test_dataset_trainer_configs import check_axolotl, check_llama_factory, tokenizer_for
from test_distill_conversations import FIRST, FIRST_ANSWER, FOLLOW_UP, FOLLOW_UP_ANSWER
from test_distill_run import OTTERS, make_root

OTHERS = {
    "herons.md": "Herons eat fish and frogs, which they spear in shallow water.",
    "beavers.md": "Beavers build dams from branches and mud. Their dams make ponds.",
    "salmon.md": "Salmon swim upstream to spawn in the rivers where they hatched.",
    "moles.md": "Moles dig tunnels and eat earthworms they find underground.",
}


def raft_dataset(acx: Acx, tmp_path: Path, server: FakeOpenAIServer) -> tuple[Path, Path, dict[str, str]]:
    """A vault of five documents, and a dataset of two pairs (a question and its follow-up) citing otters.md."""
    root = make_root(acx, tmp_path, server)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    for name, text in OTHERS.items():
        (docs / name).write_text(f"# {name[:-3].capitalize()}\n\n{text}\n")
    acx("-w", root, "vault", "import", docs)
    with Vault.open(root) as vault:
        by_source = {Path(doc.source).name: doc.id for doc in vault.list_documents()}
        chunk_id = vault.chunks_of(by_source["otters.md"])[0].id
        conversation = vault.create_conversation("chat")
        vault.append_message(conversation, "user", FIRST)
        vault.append_message(conversation, "assistant", FIRST_ANSWER, citations=[chunk_id])
        vault.append_message(conversation, "user", FOLLOW_UP)
        vault.append_message(conversation, "assistant", FOLLOW_UP_ANSWER, citations=[chunk_id])
    out = tmp_path / "chats"
    summary = json.loads(acx("-w", root, "distill", "--from-conversations", "--out", out, "--json").output)
    assert summary["accepted"] == 2
    return root, out, by_source


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_evidence_hides_among_distractors_and_the_answer_cites_its_place(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root, out, by_source = raft_dataset(acx, tmp_path, server)
    target = tmp_path / "raft.jsonl"
    result = acx("-w", root, "dataset", "export", out, "--format", "raft", "-o", target)
    assert f"Wrote 2 raft rows to {target}" in result.output
    first, follow_up = lines(target)

    with Vault.open(root) as vault:
        owner = {chunk.id: doc_id for doc_id in by_source.values() for chunk in vault.chunks_of(doc_id)}
    for row in (first, follow_up):
        system, *turns = row["messages"]
        documents, [place] = row["documents"], row["oracle"]
        assert len(documents) == 4  # the evidence and the default 3 distractors
        assert [document["oracle"] for document in documents].count(True) == 1 and documents[place - 1]["oracle"]
        distractors = [document for document in documents if not document["oracle"]]
        # every distractor is a chunk of another document of the vault, and no document is shown twice
        assert {owner[document["chunk_id"]] for document in distractors} <= set(by_source.values()) - {
            by_source["otters.md"]
        }
        assert len({owner[document["chunk_id"]] for document in documents}) == 4
        # the oracle text is in the prompt, at the place the answer cites
        source = str(tmp_path / "docs" / "otters.md")
        assert f"[{place}] ({source})\n# Otters\n\n{OTTERS}" in system["content"]
        assert system["content"].count(OTTERS) == 1
        for document in distractors:
            name = Path(document["source"]).name
            assert OTHERS[name] in system["content"]
        assert turns[-1]["content"].endswith(f"[{place}].")  # renumbered to the evidence's new place
    assert first["messages"][-1]["content"] == FIRST_ANSWER.replace("[1]", f"[{first['oracle'][0]}]")
    # the follow-up's earlier answer is renumbered too: every marker points at the document shown
    assert follow_up["messages"][2]["content"] == FIRST_ANSWER.replace("[1]", f"[{follow_up['oracle'][0]}]")

    again = tmp_path / "again.jsonl"
    acx("-w", root, "dataset", "export", out, "--format", "raft", "-o", again)
    assert again.read_bytes() == target.read_bytes()  # seeded by each pair's id: the same file every time

    two = tmp_path / "two.jsonl"
    acx("-w", root, "dataset", "export", out, "--format", "raft", "--distractors", "2", "-o", two)
    assert [len(row["documents"]) for row in lines(two)] == [3, 3]


def test_raft_rows_load_with_datasets_trl_and_the_trainer_configs(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    data_utils = pytest.importorskip("trl.data_utils")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, out, _ = raft_dataset(acx, tmp_path, server)
    target = tmp_path / "raft.jsonl"
    acx("-w", root, "dataset", "export", out, "--format", "raft", "-o", target)
    loaded = datasets.load_dataset("json", data_files=str(target), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.column_names == ["id", "messages", "oracle", "documents"] and len(loaded) == 2
    assert loaded.to_list() == lines(target)
    assert data_utils.is_conversational(loaded[0])
    tokenizer = tokenizer_for([text for row in lines(target) for turn in row["messages"] for text in turn.values()])
    templated = loaded.map(data_utils.maybe_apply_chat_template, fn_kwargs={"processing_class": tokenizer})
    assert templated[0]["text"].startswith("<|im_start|>system\n") and OTTERS in templated[0]["text"]

    check_llama_factory(json.loads((tmp_path / "dataset_info.json").read_text())["raft"], lines(target))
    import yaml  # type: ignore[import-untyped]  # PyYAML comes with datasets (dev)

    stanza = yaml.safe_load((tmp_path / "raft.axolotl.yaml").read_text())["datasets"][0]
    check_axolotl(stanza, target, lines(target))


def test_evidence_no_longer_in_the_vault_and_a_vault_too_small_are_refused_by_name(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root, out, _ = raft_dataset(acx, tmp_path, server)
    target = tmp_path / "raft.jsonl"
    small = acx("-w", root, "dataset", "export", out, "--format", "raft", "--distractors", "5", "-o", target, code=1)
    assert "train.jsonl:1: pair " in small.output
    assert "needs 5 distractor chunks, but the vault has only 4 outside the documents of its evidence" in small.output
    assert "import more documents (`arcticcodex vault import PATH`), or set --distractors lower" in small.output
    assert not target.exists()

    (tmp_path / "docs" / "otters.md").write_text("# Otters\n\nOtters sleep floating on their backs.\n")
    acx("-w", root, "vault", "import", tmp_path / "docs" / "otters.md")  # the evidence's chunk is gone
    refused = acx("-w", root, "dataset", "export", out, "--format", "raft", "-o", target, code=1)
    pair_id = lines(out / "train.jsonl")[0]["id"]
    source = tmp_path / "docs" / "otters.md"
    assert f"train.jsonl:1: the text of evidence [1] ({source}" in refused.output
    assert f"of pair {pair_id} is not in this workspace" in refused.output
    assert "export from the workspace that made the dataset, or in a format without evidence" in refused.output
    assert "(`arcticcodex dataset export DIR --format messages`)" in refused.output
    assert not target.exists() and not (tmp_path / "dataset_info.json").exists()


class Shelf:
    """A PassageSource over a fixed list (the unit tests of placement; the vault's is tested above)."""

    def __init__(self, passages: list[Passage], *, similar: int = 8) -> None:
        self.passages = passages
        self.similar_count = similar

    def similar(self, query: str, limit: int) -> list[Passage]:
        return self.passages[: min(limit, self.similar_count)]

    def sample(self, rng: random.Random, count: int, exclude: Exclusions) -> list[Passage]:
        allowed = [passage for passage in self.passages if exclude.allows(passage)]
        return rng.sample(allowed, min(count, len(allowed)))


def test_the_evidence_lands_in_every_place_and_ranges_are_renumbered(tmp_path: Path) -> None:
    base = make_pair()
    crabs = replace(base.evidence[0], chunk_id="c-2", doc_id="d-2", sha256="2" * 64, source="crabs.md")
    evidence = {base.evidence[0].sha256: "Otters eat fish.", crabs.sha256: "Otters eat crabs."}
    shelf = Shelf([Passage(f"d{n}:0", f"d{n}", f"d{n}.md", f"h{n}", f"Text {n}.") for n in range(8)])
    raft = RaftExamples(lambda ref: evidence.get(ref.sha256), shelf, distractors=3)
    places = set()
    for number in range(40):
        pair = make_pair(id=f"pair-{number}", instruction=f"Question {number}?", completion="Fish [1].")
        row = raft.row(pair, f"train.jsonl:{number + 1}")
        assert row is not None
        [place] = row["oracle"]
        places.add(place)
        assert row["messages"][-1]["content"] == f"Fish [{place}]."
        assert f"[{place}] (otters.md)\nOtters eat fish." in row["messages"][0]["content"]
        # drawn from the 2k most similar chunks (d0…d5), not from the rest of the vault
        assert {d["chunk_id"] for d in row["documents"] if not d["oracle"]} <= {f"d{n}:0" for n in range(6)}
    assert places == {1, 2, 3, 4}  # the evidence is not always first (nor always anywhere)

    two = make_pair(id="two", evidence=(base.evidence[0], crabs), completion="Fish and crabs [1-2]; crabs [2]. `a[1]`")
    row = raft.row(two, "train.jsonl:41")
    assert row is not None and len(row["documents"]) == 5
    fish, crab = row["oracle"]
    assert row["messages"][-1]["content"] == f"Fish and crabs [{fish}, {crab}]; crabs [{crab}]. `a[1]`"
    assert f"[{crab}] (crabs.md)\nOtters eat crabs." in row["messages"][0]["content"]

    # nothing similar (or too little): random chunks of other documents fill the rest
    sparse = RaftExamples(lambda ref: evidence.get(ref.sha256), Shelf(shelf.passages, similar=1), distractors=3)
    row = sparse.row(make_pair(), "train.jsonl:1")
    assert row is not None and len({d["chunk_id"] for d in row["documents"]}) == 4

    bare = make_pair(evidence=())
    assert raft.row(bare, "train.jsonl:1") is None and raft.left_out == 1
    with pytest.raises(DatasetError, match="distractors must be between 1 and 20, not 0"):
        RaftExamples(lambda ref: None, shelf, distractors=0)


def test_the_library_asks_for_the_vault_when_raft_is_not_given(tmp_path: Path) -> None:
    signer = Ed25519Signer.generate()
    with DatasetWriter(tmp_path / "ds", signer) as writer:
        writer.add(make_pair())
    with pytest.raises(DatasetError, match="the raft format shows each pair's evidence among distractor chunks"):
        export_dataset(tmp_path / "ds", tmp_path / "r.jsonl", "raft", keyring=KeyRing.only([(signer.verifier(), "t")]))
    assert not (tmp_path / "r.jsonl").exists()
