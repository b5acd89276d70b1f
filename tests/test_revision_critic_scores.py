"""Each critic's own score and the verifier's name on a revision (issue 16, item 2: κ per teacher): records
written before keep their exact bytes, frame and signature; records with them round-trip, the signature covers
them, reading them is strict; the refine loop's critique members fill them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import Revision, TrainingPair
from arcticcodex.dataset.checking import check_line
from arcticcodex.dataset.record import json_line
from arcticcodex.distill.pairs import critic_scores, pair_from_result
from arcticcodex.errors import DatasetError
from arcticcodex.provenance import HmacSigner
from arcticcodex.refine import RefineResult, Round
from arcticcodex.teachers.results import CallRecord, Claim, Critique, Verification
from test_dataset_record import check, make_pair

# one line of train.jsonl signed (HMAC, key b"k" * 32) by the code before revisions kept critics' scores:
# make_pair() of tests/test_dataset_record.py, written by TrainingPair.signed and json_line
SIGNED_BEFORE = Path(__file__).parent / "data" / "record-signed-before-critic-scores.jsonl"
SIGNER = HmacSigner(b"k" * 32)
EDITED = "the record's other fields do not match its body_sha256 (edited after signing)"


def scored_pair() -> TrainingPair:
    """make_pair() with the final revision's per-critic scores and verifier recorded."""
    pair = make_pair()
    first, last = pair.revisions
    last = replace(last, critic_scores={"deepseek": 0.95, "local-judge": 0.89}, verifier="deepseek")
    return replace(pair, revisions=(first, last))


def test_a_record_signed_before_reads_and_verifies_and_is_written_again_byte_for_byte() -> None:
    raw = SIGNED_BEFORE.read_bytes()
    record = json.loads(raw)
    assert all("critic_scores" not in r and "verifier" not in r for r in record["revisions"])
    pair = TrainingPair.from_json(record, where="train.jsonl:1")
    assert [(r.critic_scores, r.verifier) for r in pair.revisions] == [({}, ""), ({}, "")]
    assert check(record, SIGNER) is None
    assert check_line(raw, 1, SIGNER.verifier()).problems == []  # what `dataset verify` does with the line
    # the same pair signed today gives the same frame, the same body digest, the same line
    assert pair.frame(SIGNER.key_id).to_bytes() == make_pair().frame(SIGNER.key_id).to_bytes()
    assert hashlib.sha256(pair.frame(SIGNER.key_id).to_bytes()).hexdigest() == record["integrity"]["frame_sha256"]
    assert json_line(pair.signed(SIGNER)[0]) == raw


def test_empty_critic_scores_are_not_written() -> None:
    revision = Revision(1, "Fish.", 0.55, {"faithfulness": 0.6}, ("otters eat fish",), ("deepseek",), 311, 0.0004)
    assert list(revision.to_json()) == [
        "round",
        "text",
        "score",
        "criteria",
        "claims",
        "teachers",
        "tokens",
        "cost_usd",
    ]
    scored = replace(revision, critic_scores={"a": 0.5, "b": 0.6}, verifier="a")
    assert scored.to_json() == {**revision.to_json(), "critic_scores": {"a": 0.5, "b": 0.6}, "verifier": "a"}


def test_a_record_with_critic_scores_round_trips_and_its_signature_covers_them() -> None:
    pair = scored_pair()
    record, signature = pair.signed(SIGNER)
    parsed = json.loads(json_line(record))
    assert parsed["revisions"][1]["critic_scores"] == {"deepseek": 0.95, "local-judge": 0.89}
    assert parsed["revisions"][1]["verifier"] == "deepseek" and "critic_scores" not in parsed["revisions"][0]
    assert TrainingPair.from_json(parsed) == pair and check(parsed, SIGNER) is None
    assert check_line(json_line(record), 1, SIGNER.verifier()).problems == []
    # the frame does not carry revisions (scores, criteria, claims): the body digest binds them
    unscored, _ = make_pair().signed(SIGNER)
    assert signature.frame_sha256 == unscored["integrity"]["frame_sha256"]
    assert signature.body_sha256 != unscored["integrity"]["body_sha256"]

    for field, value in (("critic_scores", {"deepseek": 0.95, "local-judge": 0.99}), ("verifier", "local-judge")):
        tampered: dict[str, Any] = json.loads(json_line(record))
        tampered["revisions"][1][field] = value
        assert check(tampered, SIGNER) == EDITED
        problems = check_line(json_line(tampered), 1, SIGNER.verifier()).problems
        assert problems == [EDITED]
    dropped = json.loads(json_line(record))
    del dropped["revisions"][1]["critic_scores"]  # an old-looking record made from a new one
    assert check(dropped, SIGNER) is not None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("critic_scores", [0.9], "field 'critic_scores' must be an object of teacher → score"),
        ("critic_scores", {"a": "0.9"}, "field 'critic_scores' must map each teacher to a number"),
        ("critic_scores", {"a": True}, "field 'critic_scores' must map each teacher to a number"),
        ("critic_scores", {"": 0.9}, "revision 2: each critic score must be under its teacher's name"),
        ("verifier", 3, "field 'verifier' must be a string"),
    ],
)
def test_critic_scores_are_read_strictly(field: str, value: Any, message: str) -> None:
    record, _ = scored_pair().signed(SIGNER)
    record["revisions"][1][field] = value
    with pytest.raises(DatasetError, match=r"^train\.jsonl:7: ") as raised:
        TrainingPair.from_json(record, where="train.jsonl:7")
    assert message in str(raised.value)


@pytest.mark.parametrize("score", [float("nan"), float("inf")])
def test_a_critic_score_must_be_finite(score: float) -> None:
    with pytest.raises(ValueError, match="revision 2: score, cost, criteria and critic scores must be finite"):
        Revision(2, "x", 0.9, critic_scores={"a": score})


def call(teacher: str, role: str) -> CallRecord:
    return CallRecord(teacher=teacher, model="m", role=role)  # type: ignore[arg-type]


def result(*rounds: Round) -> RefineResult:
    return RefineResult("accepted", rounds[-1].text, rounds[-1].score, list(rounds))


TASK: dict[str, Any] = {"source": {"kind": "prompts", "ref": "prompts.jsonl:1"}}


def test_pair_from_result_keeps_each_critic_score_and_the_verifier() -> None:
    members = [Critique(score=0.95, call=call("lenient", "critic")), Critique(score=0.7, call=call("strict", "critic"))]
    ensemble = Critique(score=0.825, members=members)
    verification = Verification(claims=[Claim(claim="a", verdict="supported")], call=call("lenient", "verifier"))
    single = Critique(score=0.5, call=call("lenient", "critic"))
    pair = pair_from_result(
        TASK,
        "Q?",
        result(Round(1, "draft", critique=single), Round(2, "final", critique=ensemble, verification=verification)),
        (),
        signer_id="s",
        drafter="d",
    )
    first, last = pair.revisions
    assert (first.critic_scores, first.verifier) == ({"lenient": 0.5}, "")  # one critic, no evidence to verify
    assert (last.score, last.critic_scores, last.verifier) == (0.825, {"lenient": 0.95, "strict": 0.7}, "lenient")
    assert last.teachers == ("lenient", "strict")


def test_a_critique_without_a_call_records_no_critic_scores() -> None:
    assert critic_scores(None) == {} and critic_scores(Critique(score=0.9)) == {}
    pair = pair_from_result(
        TASK, "Q?", result(Round(1, "t", critique=Critique(score=0.9))), (), signer_id="s", drafter="d"
    )
    assert "critic_scores" not in pair.revisions[0].to_json() and "verifier" not in pair.revisions[0].to_json()
