"""Reading a model's reply as the JSON object its role asked for.

Models wrap JSON in Markdown fences, add a sentence before it, or (DeepSeek's JSON mode) return
blank content.  :func:`parse_reply` takes the first balanced JSON object out of the text, validates
it against the role's result model, and raises :class:`ReplyError` with a message that can be sent
back to the model for the one re-ask the teacher allows.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .results import CallRole, Comparison, Critique, Questions, Rewrite, Verification

RESULT_MODELS: dict[CallRole, type[BaseModel]] = {
    "critic": Critique,
    "verifier": Verification,
    "rewriter": Rewrite,
    "drafter": Rewrite,  # a draft is a text and its notes, the same shape as a rewrite
    "questioner": Questions,
    "judge": Comparison,  # `arcticcodex eval`'s pairwise judgement
}
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class ReplyError(ValueError):
    """The reply is not the JSON the role asked for; ``message`` says what to fix."""


def extract_json(content: str) -> dict[str, Any]:
    """The JSON object in ``content``: bare, fenced, or the first balanced ``{…}`` in prose."""
    text = content.strip()
    if not text:
        raise ReplyError("the reply was empty; answer with the JSON object only")
    candidates = [text, *(match.group(1).strip() for match in _FENCE.finditer(text))]
    start = text.find("{")
    if start >= 0:
        candidates.append(_balanced(text, start))
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    raise ReplyError("the reply is not a complete JSON object; answer with the JSON object only, nothing else")


def _balanced(text: str, start: int) -> str:
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        ch = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return text[start:]


def parse_reply(role: CallRole, content: str, notes: list[str]) -> BaseModel:
    """Validate ``content`` as ``role``'s result; clamped scores are noted in ``notes``."""
    data = extract_json(content)
    if role == "critic":
        _note_clamps(data, notes)
    try:
        return RESULT_MODELS[role].model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc'])) or 'reply'}: {error['msg']}" for error in exc.errors())
        # from None: the ValidationError adds nothing the message does not already say
        raise ReplyError(f"the JSON does not have the required shape ({problems})") from None


def _note_clamps(data: dict[str, Any], notes: list[str]) -> None:
    values = [("score", data.get("score"))]
    criteria = data.get("criteria")
    if isinstance(criteria, dict):
        values += [(f"criteria.{name}", value) for name, value in criteria.items()]
    for name, value in values:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not 0.0 <= number <= 1.0 and -0.05 <= number <= 1.05:
            notes.append(f"{name} {number} clamped to [0, 1]")
