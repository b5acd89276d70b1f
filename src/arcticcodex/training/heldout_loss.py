"""A model's loss on a dataset's held-out answers: the score merge candidates are ranked by.

The loss is the mean cross-entropy over the assistant's tokens only (the same mask training uses:
the chat template's generation markers, end-of-turn token included), so it measures how well the
model says the accepted answers, not how well it predicts the questions.  Deterministic, offline and
cheap next to generation — what choosing among a handful of merges needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["heldout_loss"]


def heldout_loss(model_dir: Path, rows: Path, *, max_length: int = 1024) -> float:
    """Mean loss per assistant token of the model in ``model_dir`` over the ``messages`` rows in ``rows``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .chat_templates import with_assistant_markers

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with_assistant_markers(tokenizer, base=str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()  # type: ignore[no-untyped-call]
    total, tokens = 0.0, 0
    with torch.no_grad(), rows.open(encoding="utf-8") as lines:
        for line in lines:
            encoded: Any = tokenizer.apply_chat_template(
                json.loads(line)["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
            )
            ids = torch.tensor([encoded["input_ids"][:max_length]])
            mask = torch.tensor([encoded["assistant_masks"][:max_length]], dtype=torch.bool)
            labels = ids.masked_fill(~mask, -100)
            counted = int(mask[:, 1:].sum())
            if counted == 0:
                continue
            total += float(model(input_ids=ids, labels=labels).loss) * counted
            tokens += counted
    if tokens == 0:
        raise UserError(f"{rows} holds no assistant answers to score the model on")
    return total / tokens
