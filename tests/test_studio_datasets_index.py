"""The record index behind the dataset pages (``dataset/record_index.py``) and the comparison built on it:
what a query returns, when an index is reused or made again, and odd cache paths and damaged cache files."""

from __future__ import annotations

from pathlib import Path

import pytest

from arcticcodex.dataset.comparison import Comparisons
from arcticcodex.dataset.record_index import (
    MATCHES_COUNTED,
    RecordIndexes,
    RecordQuery,
    content_keys,
    folder_identity,
    rejection_stage,
)
from arcticcodex.errors import DatasetError, RecordNotFoundError
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.workspace import Workspace
from dataset_fixtures import make_pair, write_dataset


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")[0]


def test_a_query_finds_words_of_either_text_in_any_case_and_accent(workspace: Workspace, tmp_path: Path) -> None:
    pairs = [
        make_pair("Où vit le castor?", "Le castor vit près des rivières."),
        make_pair("What is a CAFÉ?", "A place serving coffee."),
        make_pair("Another question", "Nothing in common."),
    ]
    folder = tmp_path / "ds"
    write_dataset(workspace, folder, Ed25519Signer.generate(), pairs)
    indexes = RecordIndexes(tmp_path / "odd ?cache #1%")  # a URI needs these escaped
    with indexes.open(folder) as index:

        def found(**query: object) -> list[int]:
            return [record.index for record in index.page(RecordQuery(**query))[0]]  # type: ignore[arg-type]

        assert found(text="castor") == [0] and found(text="RIVIERES") == [0] and found(text="cafe") == [1]
        assert found(text="coffee place") == [1] and found(text="coffee castor") == []
        assert found(text='" * - ^') == [0, 1, 2]  # no word in it: no search, every record
        assert found(text="castor OR coffee") == []  # words, every one needed: FTS5 operators are not the visitor's
        assert found(text="NEAR(castor") == []  # FTS5's syntax is not the visitor's to use
        assert index.record("train", 1)["instruction"] == "What is a CAFÉ?"
        with pytest.raises(RecordNotFoundError):
            index.record("train", 3)
    with pytest.raises(DatasetError, match="there is no split"):
        RecordQuery(split="secret")


def test_an_index_is_reused_until_a_file_changes_and_a_damaged_one_is_made_again(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "ds"
    write_dataset(workspace, folder, Ed25519Signer.generate(), [make_pair("One?", "Yes.")])
    indexes = RecordIndexes(tmp_path / "cache")
    with indexes.open(folder) as first:
        identity = first.identity
    with indexes.open(folder):
        pass
    assert indexes.builds == 1 and identity == folder_identity(folder)
    (folder / "train.jsonl").write_bytes((folder / "train.jsonl").read_bytes() + b"\n")
    with indexes.open(folder) as changed:
        assert changed.identity != identity and changed.identity == folder_identity(folder)
    assert indexes.builds == 2
    (cached,) = (tmp_path / "cache").glob("*.sqlite")
    cached.write_bytes(b"not a database at all" * 100)
    with indexes.open(folder) as rebuilt:
        assert [r.instruction for r in rebuilt.page(RecordQuery())[0]] == ["One?"]
    assert indexes.builds == 3 and list((tmp_path / "cache").glob("*.building")) == []


def test_counts_stop_at_the_bound(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    pairs = [make_pair(f"Lake {n}?", f"Deep {n}.") for n in range(MATCHES_COUNTED + 5)]
    write_dataset(workspace, folder, Ed25519Signer.generate(), pairs)
    with RecordIndexes(tmp_path / "cache").open(folder) as index:
        assert index.page(RecordQuery(text="lake", limit=3))[1:] == (MATCHES_COUNTED, True)
        assert index.page(RecordQuery(text="lake", quality_min=0.5, limit=3))[1:] == (MATCHES_COUNTED, True)
        rows, total, cut = index.page(RecordQuery(start=MATCHES_COUNTED, limit=10))
        assert [r.index for r in rows] == list(range(MATCHES_COUNTED, MATCHES_COUNTED + 5))
        assert (total, cut) == (MATCHES_COUNTED + 5, False)  # unfiltered: the split's own count


def test_a_comparison_is_remembered_by_both_identities(workspace: Workspace, tmp_path: Path) -> None:
    signer = Ed25519Signer.generate()
    write_dataset(workspace, tmp_path / "a", signer, [make_pair("Q1", "A1"), make_pair("Q2", "A2")])
    write_dataset(workspace, tmp_path / "b", signer, [make_pair(" q1 ", "a1"), make_pair("Q2", "other")])
    indexes, comparisons = RecordIndexes(tmp_path / "cache"), Comparisons()
    for _ in range(2):
        with indexes.open(tmp_path / "a") as a, indexes.open(tmp_path / "b") as b:
            result = comparisons.compare(a, b)
    assert comparisons.computed == 1
    assert (result.pairs_in_both, result.questions_in_both) == (1, 2)
    assert [s.instruction for s in result.same_pairs] == ["Q1"] and [s.instruction for s in result.other_answers] == [
        "Q2"
    ]


def test_keys_and_stages() -> None:
    assert content_keys("Ｈｏｗ  deep?", "Very.") == content_keys("how deep?", " very. ")  # width, case, spacing
    assert content_keys("How deep?", "Very.")[1] == content_keys("How deep?", "Not.")[1]
    assert content_keys("How deep?", "Very.")[0] != content_keys("How deep?", "Not.")[0]
    assert rejection_stage("rejected in human review: no") == "human review"
    assert rejection_stage("blocked by the sensitive-data gate: email") == "sensitive data"
    assert rejection_stage("below the threshold (drafted by t)") == "teachers"
