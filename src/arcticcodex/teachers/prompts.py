"""Prompt templates, shipped as package data, and the messages built from them.

A template is plain text: the part before the ``---`` line is the system message, the rest the user
message, with ``$name`` placeholders (``string.Template``).  Each template's SHA-256 is recorded on
every call and in a dataset's manifest, so a reviewer can tell which wording produced which score.
The word "JSON" appears in every template because JSON mode (DeepSeek, OpenAI) requires it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from .results import CallRole, Critique, EvidenceItem, Rubric, Verification

_FILES: dict[CallRole, str] = {
    "critic": "critique.txt",
    "verifier": "verify.txt",
    "rewriter": "rewrite.txt",
    "drafter": "draft.txt",
    "questioner": "questions.txt",
    "judge": "compare.txt",  # `arcticcodex eval` only: not part of a dataset's recipe (template_hashes)
}


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    role: CallRole
    system: Template
    user: Template
    sha256: str

    def messages(self, **values: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system.substitute(values)},
            {"role": "user", "content": self.user.substitute(values)},
        ]


@cache
def template(role: CallRole) -> PromptTemplate:
    text = resources.files("arcticcodex.teachers").joinpath("prompts", _FILES[role]).read_text(encoding="utf-8")
    system, _, user = text.partition("\n---\n")
    return PromptTemplate(
        role=role,
        system=Template(system.strip()),
        user=Template(user.strip()),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def template_hashes() -> dict[str, str]:
    """Role → SHA-256 of its template, for run recipes and dataset manifests (the judge makes no dataset)."""
    return {role: template(role).sha256 for role in _FILES if role != "judge"}


def render_evidence(evidence: Sequence[EvidenceItem]) -> str:
    if not evidence:
        return "(no evidence was given: judge the answer on its own terms)"
    return "\n\n".join(
        f"[{item.number}]" + (f" ({item.source})" if item.source else "") + f"\n{item.text}" for item in evidence
    )


def render_rubric(rubric: Rubric) -> str:
    lines = [f"- {name}: {description}" for name, description in rubric.criteria.items()]
    if rubric.instructions:
        lines.append(rubric.instructions)
    return "\n".join(lines)


def critique_messages(
    text: str, evidence: Sequence[EvidenceItem], rubric: Rubric, instruction: str
) -> list[dict[str, str]]:
    example = ", ".join(f'"{name}": 0.0' for name in rubric.criteria)
    return template("critic").messages(
        text=text,
        evidence=render_evidence(evidence),
        rubric=render_rubric(rubric),
        instruction=instruction or "(not given)",
        criteria_example=example,
    )


def verify_messages(text: str, evidence: Sequence[EvidenceItem]) -> list[dict[str, str]]:
    return template("verifier").messages(text=text, evidence=render_evidence(evidence))


def rewrite_messages(
    text: str,
    critique: Critique,
    verification: Verification | None,
    evidence: Sequence[EvidenceItem],
    instruction: str,
) -> list[dict[str, str]]:
    critique_view = critique.model_dump(include={"score", "criteria", "weaknesses", "suggestions"})
    claims = verification.model_dump(include={"claims"}) if verification else {"claims": "(not checked)"}
    return template("rewriter").messages(
        text=text,
        evidence=render_evidence(evidence),
        instruction=instruction or "(not given)",
        critique=json.dumps(critique_view, ensure_ascii=False),
        verification=json.dumps(claims, ensure_ascii=False),
    )


def draft_messages(instruction: str, evidence: Sequence[EvidenceItem]) -> list[dict[str, str]]:
    return template("drafter").messages(instruction=instruction, evidence=render_evidence(evidence))


def question_messages(passage: str, source: str, count: int) -> list[dict[str, str]]:
    return template("questioner").messages(passage=passage, source=source or "(unnamed)", count=str(count))


def compare_messages(question: str, first: str, second: str, evidence: Sequence[EvidenceItem]) -> list[dict[str, str]]:
    """The judge's prompt: one question, two answers (``A`` = ``first``), the evidence both should rest on."""
    return template("judge").messages(question=question, first=first, second=second, evidence=render_evidence(evidence))
