"""What an endpoint's refusal means, in words: its own message, and the hint for its HTTP status."""

from __future__ import annotations

import openai

from .entries import TeacherConfig

__all__ = ["endpoint_message", "status_hint"]


def endpoint_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(error.message)[:300]


def status_hint(status: int, config: TeacherConfig) -> str:
    hints = {
        401: f"; check the key in {config.api_key_env or 'the API key variable'}",
        402: "; the account balance is exhausted: top it up",
        403: "; the key is not allowed to use this model",
        404: f"; check base_url ({config.base_url}) and the model name ({config.model})",
        400: f"; the request was invalid (is {config.model!r} the right model name?)"
        + (
            f'; if {config.base_url} takes no JSON schemas, write response_format = "json_object" in '
            f"teacher {config.name}'s entry of arcticcodex.toml"
            if config.response_format == "json_schema"
            else ""
        ),
        422: "; a parameter was invalid",
    }
    return hints.get(status, "")
