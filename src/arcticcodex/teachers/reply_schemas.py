"""The JSON schema of each teacher call's reply, and the ``response_format`` that asks for it.

Why schemas: JSON mode promises JSON, not the right JSON — a critic may still answer a bare
sentence, a truncated object or a score as a word, and each costs a re-ask (:mod:`.parsing`).  A
server that constrains decoding to a schema (OpenAI's structured outputs with ``strict``, vLLM's
guided decoding, Ollama) cannot answer anything but an instance of it.  Where a server has only JSON
mode (DeepSeek) the teacher asks for ``json_object`` and keeps the re-ask; which one a teacher uses
is its ``response_format`` (chosen per preset, see :mod:`arcticcodex.configteachers`).

Why generated from the result models (:mod:`.results`): one definition of a reply's shape, so the
schema a server enforces and the validation that reads the reply cannot drift apart.  The models
are made strict-compatible here: every property required, ``additionalProperties: false`` on every
object, references inlined, and only the keywords every structured-output server takes (type,
properties, required, additionalProperties, items, enum, anyOf, description) — the models'
defaults, titles and value constraints are dropped from the schema, because their validators (a
score in [0, 1], a non-empty rewrite) still check the reply once it arrives.  The call's
bookkeeping (its record, an ensemble's members) is no part of the reply and no part of the schema.
A critique's criteria are the rubric's names, each a number: the one schema that depends on the call.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from ..configteachers import ResponseFormat
from .parsing import RESULT_MODELS
from .results import CallRole, Critique, Rubric

__all__ = ["BOOKKEEPING", "STRICT_KEYWORDS", "ReplySchema", "reply_schema", "response_format", "strict_schema"]

# fields of a result that the teacher fills in, never the model: the call's record, an ensemble's members
BOOKKEEPING = frozenset({"call", "members", "disagreement"})
# the keywords every server that enforces a strict schema takes (OpenAI, vLLM, Ollama): the common subset
STRICT_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "description"}
)


@dataclass(frozen=True, slots=True)
class ReplySchema:
    """A reply's schema and its name (``critique``, ``verification``, ``rewrite``, ``questions``)."""

    name: str
    schema: dict[str, Any]


def reply_schema(role: CallRole, rubric: Rubric | None = None) -> ReplySchema:
    """The strict schema of ``role``'s reply; a critic's criteria are ``rubric``'s (default: the default rubric).

    Built once per role and set of criteria (every call of a run asks for the same few): the schema is
    shared, so it is read, never changed, by whoever sends it.
    """
    criteria = tuple((rubric or Rubric()).criteria) if RESULT_MODELS[role] is Critique else ()
    return _reply_schema(role, criteria)


@cache
def _reply_schema(role: CallRole, criteria: tuple[str, ...]) -> ReplySchema:
    model = RESULT_MODELS[role]  # the model that reads the reply (parsing.parse_reply)
    schema = copy.deepcopy(_model_schema(model))
    if model is Critique:
        schema["properties"]["criteria"] = {
            "type": "object",
            "properties": {name: {"type": "number"} for name in criteria},
            "required": list(criteria),
            "additionalProperties": False,
        }
    return ReplySchema(model.__name__.lower(), schema)


def response_format(mode: ResponseFormat, schema: ReplySchema | None) -> dict[str, Any] | None:
    """The request's ``response_format`` for ``mode``: the strict schema, JSON mode, or none (prose).

    ``json_schema`` without a schema (a call whose reply has no model) asks for JSON mode.
    """
    if mode == "none":
        return None
    if mode == "json_schema" and schema is not None:
        return {"type": "json_schema", "json_schema": {"name": schema.name, "schema": schema.schema, "strict": True}}
    return {"type": "json_object"}


@cache
def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    full = model.model_json_schema()
    definitions = full.get("$defs", {})
    root = copy.deepcopy(definitions[model.__name__]) if "$ref" in full else full  # a recursive model is a $ref
    properties = {name: value for name, value in root["properties"].items() if name not in BOOKKEEPING}
    if model is Critique:  # free-form here; its properties are the rubric's names, filled in per call
        properties["criteria"] = {"type": "object"}
    return strict_schema({**root, "properties": properties}, definitions, where=model.__name__)


def strict_schema(node: dict[str, Any], definitions: dict[str, Any], *, where: str) -> dict[str, Any]:
    """``node`` (a pydantic JSON schema) made strict: references inlined, every object closed and fully required.

    A free-form object (``dict[str, X]``) has no strict form and is refused: give it fixed properties
    (as :func:`reply_schema` does for a critique's criteria).
    """
    reference = node.get("$ref")
    if isinstance(reference, str):
        return strict_schema(definitions[reference.rpartition("/")[2]], definitions, where=where)
    strict = {key: value for key, value in node.items() if key in STRICT_KEYWORDS}
    if "items" in strict:
        strict["items"] = strict_schema(strict["items"], definitions, where=f"{where}[]")
    if "anyOf" in strict:
        strict["anyOf"] = [strict_schema(branch, definitions, where=where) for branch in strict["anyOf"]]
    if strict.get("type") == "object":
        properties = strict.get("properties", {})
        if strict.get("additionalProperties", False) is not False:
            raise ValueError(f"{where} is a free-form object, which a strict schema cannot describe")
        strict["properties"] = {
            name: strict_schema(value, definitions, where=f"{where}.{name}") for name, value in properties.items()
        }
        strict["required"] = list(strict["properties"])
        strict["additionalProperties"] = False
    return strict
