"""TrainingPair records: JSON round trip, signatures over frame + body, any edited field caught, strict reading."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest

from arcticcodex.dataset import PairSource, Revision, TrainingPair, canonical_json, pair_id_for
from arcticcodex.errors import DatasetError
from arcticcodex.forge.record_frames import EvidenceRef
from arcticcodex.provenance import Ed25519Signer, HmacSigner
from arcticcodex.provenance.record_signing import RecordSignature, verify_record

CHUNK_TEXT = "Otters eat fish, crabs and sea urchins."


def make_pair(**changes: Any) -> TrainingPair:
    evidence = (
        EvidenceRef(
            chunk_id="c-1",
            doc_id="d-1",
            sha256=hashlib.sha256(CHUNK_TEXT.encode()).hexdigest(),
            span=(10, 49),
            source="otters.md",
        ),
    )
    fields: dict[str, Any] = {
        "id": pair_id_for("What do otters eat?", "Fish, crabs and sea urchins [c-1].", evidence),
        "index": 3,
        "instruction": "What do otters eat?",
        "completion": "Fish, crabs and sea urchins [c-1].",
        "quality": Decimal("0.92"),
        "signer_id": "teacher-01",
        "created_at": "2026-11-25T12:00:00+00:00",
        "source": PairSource("prompts", "prompts.jsonl:4"),
        "feedback": "Grounded; cites c-1.",
        "revisions": (
            Revision(1, "Fish.", 0.55, {"faithfulness": 0.6}, ("otters eat fish",), ("deepseek",), 311, 0.0004),
            Revision(2, "Fish, crabs and sea urchins [c-1].", 0.92, {"faithfulness": 0.95}, (), ("deepseek",), 402),
        ),
        "evidence": evidence,
        "teachers": ("deepseek", "local-judge"),
    }
    fields.update(changes)
    if "id" not in changes:  # the content id of the pair as changed (the writer and verify insist on it)
        fields["id"] = pair_id_for(fields["instruction"], fields["completion"], fields["evidence"])
    return TrainingPair(**fields)


def check(record: dict[str, Any], signer: Ed25519Signer | HmacSigner) -> str | None:
    """What a verifier does with one parsed line: rebuild frame and body, check the signature."""
    pair = TrainingPair.from_json(record, where="train.jsonl:1")
    integrity = record["integrity"]
    signature = RecordSignature.from_json(integrity)
    frame_bytes = pair.frame(integrity["key_id"]).to_frame().to_bytes()
    body = {name: value for name, value in record.items() if name != "integrity"}
    return verify_record(signer.verifier(), frame_bytes, signature, canonical_json(body))


def test_a_record_round_trips_through_its_json_line() -> None:
    signer = Ed25519Signer.generate()
    pair = make_pair()
    record, signature = pair.signed(signer)
    line = json.dumps(record, ensure_ascii=False)
    parsed = json.loads(line)

    assert TrainingPair.from_json(parsed) == pair
    assert list(parsed) == [*pair.body(), "integrity"]
    assert parsed["messages"] == [
        {"role": "user", "content": "What do otters eat?"},
        {"role": "assistant", "content": "Fish, crabs and sea urchins [c-1]."},
    ]
    assert parsed["created_at"] == "2026-11-25T12:00:00Z"
    assert parsed["integrity"] == signature.to_json() and parsed["integrity"]["key_id"] == signer.key_id
    assert check(parsed, signer) is None


def test_quality_is_exact_to_four_places_and_reads_back_identically() -> None:
    for given, stored in (("0.92", "0.92"), ("1", "1"), ("0", "0"), ("0.123456", "0.1235"), ("0.80", "0.8")):
        pair = make_pair(quality=Decimal(given))
        assert str(pair.quality) == stored
        assert TrainingPair.from_json(json.loads(json.dumps(pair.body()))).quality == pair.quality
    with pytest.raises(ValueError, match="exact"):
        make_pair(quality=0.92)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_pair(quality=Decimal("1.5"))


def test_pair_ids_are_content_ids() -> None:
    assert pair_id_for("q", "a") == pair_id_for("q", "a")
    assert len({pair_id_for("q", "a"), pair_id_for("q", "b"), pair_id_for("qa", ""), pair_id_for("q", "a", ())}) == 3
    assert make_pair().id.startswith("tp-") and len(make_pair().id) == 35


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaf_paths(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaf_paths(item, (*path, index))]
    return [path]


def _altered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.25
    if value is None:
        return "x"
    return value[:-1] + chr(ord(value[-1]) ^ 1) if value else "x"


def test_changing_any_field_anywhere_in_a_record_breaks_it() -> None:
    signer = Ed25519Signer.generate()
    record, _ = make_pair().signed(signer)
    record = json.loads(json.dumps(record))
    paths = [path for path in _leaf_paths(record) if path[0] != "integrity"]
    assert len(paths) == 38  # every leaf of every nested field, not a sample
    for path in paths:
        edited = json.loads(json.dumps(record))
        target = edited
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = _altered(target[path[-1]])
        try:
            problem = check(edited, signer)
        except DatasetError as error:  # some edits make the record unreadable: also detected, and named
            problem = str(error)
        assert problem, f"editing {path} went unnoticed"


def test_a_wrong_key_or_algorithm_is_named() -> None:
    signer = Ed25519Signer.generate()
    record, _ = make_pair().signed(signer)
    assert "key" in (check(record, Ed25519Signer.generate()) or "")
    hmac_record, _ = make_pair().signed(HmacSigner(b"k" * 32))
    assert check(hmac_record, HmacSigner(b"k" * 32)) is None
    assert "hmac-sha256" in (check(hmac_record, signer) or "")


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [
        (lambda r: r.pop("quality"), "no 'quality' field"),
        (lambda r: r.update(index=True), "'index' must be an integer"),
        (lambda r: r.update(index="3"), "'index' must be an integer"),
        (lambda r: r.update(accepted=1), "'accepted' must be true or false"),
        (lambda r: r.update(id=""), "'id' is empty"),
        (lambda r: r.update(teachers=["a", 1]), "list of strings"),
        (lambda r: r.update(source={"kind": "web", "ref": "x"}), "source kind 'web'"),
        (lambda r: r["evidence"][0].update(span=[1]), r"span must be \[start, end\]"),
        (lambda r: r["evidence"][0].update(sha256="abc"), "SHA256 must be 64"),
        (lambda r: r["revisions"].append("x"), "each revision must be an object"),
        (lambda r: r.update(quality=2), r"\[0, 1\]"),
        (lambda r: r.update(created_at="yesterday"), "yesterday"),
    ],
)
def test_malformed_records_are_refused_with_the_place_and_field(edit: Any, phrase: str) -> None:
    record = json.loads(json.dumps(make_pair().body()))
    edit(record)
    with pytest.raises(DatasetError, match=phrase) as caught:
        TrainingPair.from_json(record, where="train.jsonl:7")
    assert str(caught.value).startswith("train.jsonl:7: ")
