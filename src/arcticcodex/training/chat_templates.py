"""Chat templates that mark the assistant's turns, so the loss is computed on what the student should say.

TRL's assistant-only loss (``SFTConfig(assistant_only_loss=True)``) needs a template whose assistant
turns sit inside ``{% generation %}…{% endgeneration %}``: the tokens between the markers are the
ones the loss sees.  The end-of-turn token belongs inside: a student that never learns to emit it
never stops talking.  Most base models' templates have no markers, so we bring the two families our
users meet (ChatML — Qwen, many fine-tunes — and Llama 3), choose by the special tokens the tokenizer
holds, and refuse, naming the fix, when it holds neither.
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError

__all__ = ["CHATML", "LLAMA3", "template_family", "with_assistant_markers"]

CHATML = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] | trim }}<|eot_id|>{% endgeneration %}"
    "{% else %}{{ message['content'] | trim }}<|eot_id|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

_FAMILIES = {"chatml": ("<|im_start|>", "<|im_end|>", CHATML), "llama3": ("<|start_header_id|>", "<|eot_id|>", LLAMA3)}


def template_family(tokenizer: Any) -> str | None:
    """``chatml`` or ``llama3`` when the tokenizer holds that family's turn tokens, else None."""
    vocabulary = tokenizer.get_vocab()
    for family, (start, end, _) in _FAMILIES.items():
        if start in vocabulary and end in vocabulary:
            return family
    return None


def with_assistant_markers(tokenizer: Any, *, base: str) -> str:
    """Give ``tokenizer`` a template with assistant markers; return which (``own``, ``chatml``, ``llama3``).

    A template that already marks generation is kept.  Otherwise the family's template replaces it,
    and the tokenizer's end-of-sequence token becomes the family's end-of-turn token, which is what a
    served student must stop at.
    """
    current = getattr(tokenizer, "chat_template", None) or ""
    if "{% generation %}" in current or "{%- generation %}" in current:
        return "own"
    family = template_family(tokenizer)
    if family is None:
        raise UserError(
            f"the tokenizer of {base} has no chat template that marks the assistant's turns and none of the turn "
            "tokens of the ChatML (<|im_start|>, <|im_end|>) or Llama 3 (<|start_header_id|>, <|eot_id|>) "
            "families; start from a chat model of one of those families"
        )
    _, end, template = _FAMILIES[family]
    tokenizer.chat_template = template
    tokenizer.eos_token = end
    return family
