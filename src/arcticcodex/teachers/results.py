"""What teachers return: validated results, never bare dicts, each with the record of its call.

Scores are type-checked and clamped into [0, 1] (a clamp is noted on the call, so a model that
answers on a 0–10 scale is visible in the record rather than silently trusted).  A rewrite can
never be empty: an empty text fails validation, and the loop keeps the previous text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..configteachers import ROLES as ROLES  # the roles a [[teachers]] entry may name: defined with it
from ..configteachers import Role as Role

# the loop's roles, plus what a run asks a student model for: a first draft, or curriculum questions;
# and the judge of `arcticcodex eval`, which compares two answers to one question
CallRole = Literal["critic", "verifier", "rewriter", "drafter", "questioner", "judge"]
Preference = Literal["A", "B", "tie"]
Verdict = Literal["supported", "contradicted", "unsupported"]
SCORE_TOLERANCE = 0.05  # 1.02 is rounding and is clamped; 7 is another scale and is refused


class EvidenceItem(BaseModel):
    """One numbered piece of evidence a text is judged against (a vault chunk, or free text)."""

    model_config = ConfigDict(frozen=True)

    number: int
    text: str
    source: str = ""
    chunk_id: str | None = None


class SearchHit(Protocol):
    """What a vault search result offers as evidence (:class:`~arcticcodex.vault.search.SearchResult`)."""

    @property
    def text(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def chunk_id(self) -> str: ...


def evidence_from_hits(hits: Iterable[SearchHit]) -> list[EvidenceItem]:
    """Search hits as numbered evidence, ``[1]`` the first: the one way a found chunk becomes evidence."""
    return [
        EvidenceItem(number=number, text=hit.text, source=hit.source, chunk_id=hit.chunk_id)
        for number, hit in enumerate(hits, 1)
    ]


class Rubric(BaseModel):
    """What a critic scores: named criteria with instructions; the overall score weighs them."""

    model_config = ConfigDict(frozen=True)

    criteria: dict[str, str] = Field(
        default_factory=lambda: {
            "grounding": "every claim is supported by the numbered evidence",
            "completeness": "the instruction is fully answered",
            "clarity": "the text is clear, direct and well organised",
        }
    )
    instructions: str = ""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cache_hit_tokens=self.cache_hit_tokens + other.cache_hit_tokens,
        )


class CallRecord(BaseModel):
    """How one teacher call went: the audit trail every round keeps."""

    teacher: str
    model: str
    role: CallRole
    prompt_sha256: str = ""
    raw_reply: str = ""
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 1
    cached: bool = False
    notes: list[str] = Field(default_factory=list)


def _score(value: Any, notes: list[str] | None = None) -> float:
    """A number in [0, 1]; numeric strings are accepted, anything else is refused."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"score must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        # from None: the TypeError/ValueError adds nothing the message does not already say
        raise ValueError(f"score must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"score must be a finite number between 0 and 1, not {value!r}")
    if not -SCORE_TOLERANCE <= number <= 1.0 + SCORE_TOLERANCE:
        # a 7 is a 0–10 scale, not an excellent 1.0: refuse it so the model is asked again
        raise ValueError(f"score must be between 0 and 1, not {value!r}")
    clamped = min(1.0, max(0.0, number))
    if clamped != number and notes is not None:
        notes.append(f"score {number} clamped to {clamped}")
    return clamped


class Critique(BaseModel):
    score: float
    criteria: dict[str, float] = Field(default_factory=dict)
    strengths: list[str] = Field(default_factory=list)
    weaknesses: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)
    call: CallRecord | None = None
    members: list[Critique] = Field(default_factory=list)  # an ensemble's individual critiques
    disagreement: float | None = None  # max − min of the members' scores

    @field_validator("score", mode="before")
    @classmethod
    def _check_score(cls, value: Any) -> float:
        return _score(value)

    @field_validator("criteria", mode="before")
    @classmethod
    def _check_criteria(cls, value: Any) -> dict[str, float]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("criteria must be an object of name → score")
        return {str(name): _score(score) for name, score in value.items()}


class Claim(BaseModel):
    claim: str
    verdict: Verdict
    evidence: list[int] = Field(default_factory=list)
    note: str = ""

    @field_validator("verdict", mode="before")
    @classmethod
    def _normalise_verdict(cls, value: Any) -> Any:
        # a model prompted with the first version's words answers CORRECT / INCORRECT / UNVERIFIED: read both
        aliases = {"correct": "supported", "incorrect": "contradicted", "unverified": "unsupported"}
        return aliases.get(str(value).strip().lower(), str(value).strip().lower())

    @field_validator("evidence", mode="before")
    @classmethod
    def _evidence_numbers(cls, value: Any) -> list[int]:
        if value is None:
            return []
        if isinstance(value, int | str):
            value = [value]
        numbers = []
        for item in value:
            digits = str(item).strip().strip("[]")
            if digits.isdigit():
                numbers.append(int(digits))
        return numbers


class Verification(BaseModel):
    claims: list[Claim] = Field(default_factory=list)
    call: CallRecord | None = None

    @property
    def supported_ratio(self) -> float:
        return sum(claim.verdict == "supported" for claim in self.claims) / len(self.claims) if self.claims else 0.0

    @property
    def contradicted(self) -> list[Claim]:
        return [claim for claim in self.claims if claim.verdict == "contradicted"]


class Rewrite(BaseModel):
    text: str
    changes: list[str] = Field(default_factory=list)
    call: CallRecord | None = None

    @field_validator("text")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a rewrite must not be empty")
        return value


class Comparison(BaseModel):
    """A judge's choice between two answers to one question (``A``, ``B`` or ``tie``): a pairwise win rate.

    Which answer is shown first is the caller's business: `arcticcodex eval` asks in both orders, so a
    judge that favours a position cancels out instead of deciding the result.
    """

    winner: Preference
    reason: str = ""
    call: CallRecord | None = None

    @field_validator("winner", mode="before")
    @classmethod
    def _normalise_winner(cls, value: Any) -> Any:
        word = str(value).strip().strip(".").lower()
        return {"a": "A", "b": "B", "tie": "tie", "draw": "tie", "equal": "tie"}.get(word, value)


class Questions(BaseModel):
    """Questions a teacher wrote about one evidence passage (a curriculum); blank ones are dropped."""

    questions: list[str]
    call: CallRecord | None = None

    @field_validator("questions")
    @classmethod
    def _some_questions(cls, value: list[str]) -> list[str]:
        kept = [question.strip() for question in value if isinstance(question, str) and question.strip()]
        if not kept:
            raise ValueError("give at least one non-empty question")
        return kept
