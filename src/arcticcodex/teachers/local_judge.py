"""The offline local judge: evidence-grounded scoring, claim checks and extractive rewrites, no LLM.

It is the default teacher when no API teacher is configured, a cheap pre-filter, and a fallback a
user may choose — and it says what it is in every record it makes (teacher ``local-judge``, model
``local-judge/v1 (offline, no LLM)``).

How it judges:

* a text is split into sentences (its claims);
* a claim's support is the best agreement with any evidence sentence: cosine of their embeddings
  (the vault's embedding model) blended with lexical recall (the share of the claim's content words
  that evidence sentence contains);
* a claim is *supported* above a threshold, *contradicted* when its best match states different
  numbers or the opposite polarity ("not", "never"), else *unsupported*;
* the critique score weighs grounding (supported share), coverage (how much of the best evidence the
  text uses) and form (not empty, not a copy of one sentence, reasonable length);
* a comparison of two answers (`arcticcodex eval`'s judge) scores each on its own — grounding when
  there is evidence, else how much of the question it takes up — and calls the higher one better, a
  tie within :data:`TIE_MARGIN`: the same verdict in either order, so it has no position bias;
* a rewrite keeps the supported sentences, drops the others, and adds the best-supported evidence
  sentences when too little is left — extractive, so it can never invent a fact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..vault.embeddings import EmbeddingBackend, HashingBackend
from .passages import evidence_sentences  # shared with the offline drafter: headings apart, table rows kept
from .results import (
    CallRecord,
    CallRole,
    Claim,
    Comparison,
    Critique,
    EvidenceItem,
    Preference,
    Rewrite,
    Rubric,
    Verdict,
    Verification,
)

MODEL = "local-judge/v1 (offline, no LLM)"
TIE_MARGIN = 0.05  # answers scored closer than this are a tie
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n{2,}")
_WORD = re.compile(r"[A-Za-z0-9][\w\-.]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NEGATION = re.compile(r"\b(?:not|no|never|none|cannot|can't|isn't|aren't|wasn't|weren't|doesn't|don't|didn't)\b", re.I)
_STOP = frozenset(
    "a an and are as at be been by can do for from has have in is it its of on or that the their this to was were"
    " which with will would".split()
)


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text) if part and part.strip()]


def content_words(text: str) -> set[str]:
    return {word.lower().rstrip(".") for word in _WORD.findall(text) if word.lower() not in _STOP}


class LocalJudge:
    """A teacher that needs no network: see the module docstring."""

    def __init__(
        self,
        embedder: EmbeddingBackend | None = None,
        *,
        name: str = "local-judge",
        support_threshold: float = 0.55,
    ) -> None:
        self.name = name
        self.model = MODEL
        self.embedder = embedder or HashingBackend(512)
        self.support_threshold = support_threshold

    def __repr__(self) -> str:
        return f"LocalJudge(name={self.name!r}, embedder={self.embedder.name!r})"

    async def aclose(self) -> None:
        return None

    # -- scoring --------------------------------------------------------------------------------

    def _support(self, claims: Sequence[str], evidence: Sequence[EvidenceItem]) -> list[tuple[float, int, str]]:
        """For each claim: (support in [0, 1], evidence number, best evidence sentence)."""
        pool = [(item.number, sentence) for item in evidence for sentence in evidence_sentences(item.text)]
        if not claims or not pool:
            return [(0.0, 0, "") for _ in claims]
        vectors = self.embedder.embed([*claims, *(sentence for _, sentence in pool)])
        similarity = vectors[: len(claims)] @ vectors[len(claims) :].T
        results = []
        for row, claim in enumerate(claims):
            words = content_words(claim)
            best = (0.0, 0, "")
            for column, (number, sentence) in enumerate(pool):
                lexical = len(words & content_words(sentence)) / len(words) if words else 0.0
                score = 0.5 * float(np.clip(similarity[row, column], 0.0, 1.0)) + 0.5 * lexical
                if score > best[0]:
                    best = (score, number, sentence)
            results.append(best)
        return results

    def _claims(self, text: str, evidence: Sequence[EvidenceItem]) -> list[Claim]:
        claims = sentences(text)
        checked = []
        for claim, (support, number, source) in zip(claims, self._support(claims, evidence), strict=True):
            verdict: Verdict = "unsupported"
            note = ""
            if support >= self.support_threshold:
                verdict = "supported"
                if _NUMBER.findall(claim) and set(_NUMBER.findall(claim)) != set(_NUMBER.findall(source)):
                    verdict, note = "contradicted", f"numbers differ from evidence [{number}]: {source[:120]}"
                elif bool(_NEGATION.search(claim)) != bool(_NEGATION.search(source)):
                    verdict, note = "contradicted", f"polarity differs from evidence [{number}]: {source[:120]}"
            checked.append(Claim(claim=claim, verdict=verdict, evidence=[number] if number else [], note=note))
        return checked

    def _record(self, role: CallRole, notes: list[str] | None = None) -> CallRecord:
        return CallRecord(
            teacher=self.name, model=self.model, role=role, notes=notes or ["offline local judge: no LLM"]
        )

    async def critique(
        self, text: str, evidence: Sequence[EvidenceItem], rubric: Rubric, *, instruction: str = ""
    ) -> Critique:
        claims = self._claims(text, evidence)
        grounding = sum(c.verdict == "supported" for c in claims) / len(claims) if claims else 0.0
        if any(c.verdict == "contradicted" for c in claims):
            grounding *= 0.5
        used = {number for claim in claims for number in claim.evidence if claim.verdict == "supported"}
        coverage = min(1.0, len(used) / min(3, len(evidence))) if evidence else 0.0
        words = len(text.split())
        form = 1.0 if 8 <= words <= 600 else 0.5 if words else 0.0
        if instruction and not content_words(instruction) & content_words(text):
            form *= 0.5  # does not even mention what was asked
        score = round(0.6 * grounding + 0.25 * coverage + 0.15 * form, 4) if evidence else round(0.5 * form, 4)
        weaknesses = [f"unsupported: {c.claim[:100]}" for c in claims if c.verdict == "unsupported"]
        weaknesses += [f"contradicted: {c.claim[:100]} ({c.note})" for c in claims if c.verdict == "contradicted"]
        return Critique(
            score=score,
            criteria={"grounding": round(grounding, 4), "coverage": round(coverage, 4), "form": form},
            strengths=[f"supported by evidence: {c.claim[:100]}" for c in claims if c.verdict == "supported"][:5],
            weaknesses=weaknesses[:10],
            suggestions=["remove or support the unsupported claims"] if weaknesses else [],
            call=self._record("critic"),
        )

    async def verify(self, text: str, evidence: Sequence[EvidenceItem]) -> Verification:
        return Verification(claims=self._claims(text, evidence), call=self._record("verifier"))

    async def rewrite(
        self,
        text: str,
        critique: Critique,
        verification: Verification | None,
        evidence: Sequence[EvidenceItem],
        *,
        instruction: str = "",
    ) -> Rewrite:
        # always the answer's own sentences, judged here: another verifier's claims are paraphrases,
        # and building the text from them would no longer be extractive
        claims = self._claims(text, evidence)
        kept = [claim.claim for claim in claims if claim.verdict == "supported"]
        changes = [
            f"removed {claim.verdict} claim: {claim.claim[:80]}" for claim in claims if claim.verdict != "supported"
        ]
        if len(kept) < 2 and evidence:
            focus = content_words(instruction or text)
            candidates = [s for item in evidence for s in evidence_sentences(item.text) if s not in kept]
            overlap = {s: len(content_words(s) & focus) for s in candidates}
            ranked = sorted((s for s in candidates if overlap[s] > 0), key=lambda s: overlap[s], reverse=True)
            for sentence in ranked[: 2 - len(kept) + 1]:
                kept.append(sentence)
                changes.append(f"added from evidence: {sentence[:80]}")
        new_text = " ".join(kept).strip() or text  # extractive and never empty
        return Rewrite(text=new_text, changes=changes, call=self._record("rewriter"))

    async def compare(self, question: str, first: str, second: str, evidence: Sequence[EvidenceItem]) -> Comparison:
        """The better of two answers by :meth:`_merit` (see the module docstring): order-independent."""
        scores = (self._merit(question, first, evidence), self._merit(question, second, evidence))
        winner: Preference = "tie" if abs(scores[0] - scores[1]) < TIE_MARGIN else "A" if scores[0] > scores[1] else "B"
        reason = f"offline scores: A {scores[0]:.3f}, B {scores[1]:.3f}"
        return Comparison(winner=winner, reason=reason, call=self._record("judge"))

    def _merit(self, question: str, text: str, evidence: Sequence[EvidenceItem]) -> float:
        """An answer's score in [0, 1]: grounding with contradictions halved, and the question's words it takes up."""
        words = content_words(text)
        if not words:
            return 0.0
        asked = content_words(question)
        relevance = len(words & asked) / len(asked) if asked else 0.0
        if not evidence:
            return round(relevance, 4)
        claims = self._claims(text, evidence)
        grounding = sum(c.verdict == "supported" for c in claims) / len(claims) if claims else 0.0
        if any(c.verdict == "contradicted" for c in claims):
            grounding *= 0.5
        return round(0.8 * grounding + 0.2 * relevance, 4)
