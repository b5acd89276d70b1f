"""Where each iteration's data and student live in a loop's folder, and the student as a full model.

::

    OUT/iteration-K/dataset/   the signed dataset iteration K distilled (drafted by student K-1)
    OUT/iteration-K/model/     what `arcticcodex train` wrote: model/ (a full model or a LoRA
                               adapter) and receipt.json naming the dataset and the base
    OUT/iteration-K/merged/    a LoRA student merged into its base: the full model that drafts
                               iteration K+1 and is its base, written once (temp folder, renamed)

Student 0 is the base model.  Why a merged copy: the next iteration both serves the student
(``transformers serve`` and vLLM load a full model folder) and trains on top of it, and continuing
from the merged weights keeps what every earlier iteration learnt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import UserError
from ..evaluation.serving import merge_adapter
from ..training.receipt import RECEIPT_FILE
from ..training.trainer import resolve_base

__all__ = ["dataset_folder", "require_chat_template", "student_folder", "training_folder"]


def dataset_folder(out: Path, iteration: int) -> Path:
    return out / f"iteration-{iteration}" / "dataset"


def training_folder(out: Path, iteration: int) -> Path:
    return out / f"iteration-{iteration}" / "model"


def student_folder(out: Path, iteration: int, base: str) -> Path:
    """Student ``iteration`` as a full model folder (0: the base model, fetched once if it is a Hub id)."""
    if iteration == 0:
        return resolve_base(base)
    trained = training_folder(out, iteration)
    model = trained / "model"
    if not (trained / RECEIPT_FILE).is_file():
        raise UserError(f"iteration {iteration}'s student in {trained} is not finished (no {RECEIPT_FILE})")
    if (model / "config.json").is_file():
        return model
    merged = out / f"iteration-{iteration}" / "merged"
    if not (merged / "config.json").is_file():
        scratch = merged.with_name("merged.partial")
        shutil.rmtree(scratch, ignore_errors=True)  # a merge a kill cut short
        scratch.mkdir(parents=True)
        merge_adapter(model, scratch)
        shutil.rmtree(merged, ignore_errors=True)
        scratch.rename(merged)
    return merged


def require_chat_template(folder: Path, base: str) -> None:
    """Refuse a base model that cannot chat as the first drafter: the student answers the bare question
    through its chat template, and ``transformers serve`` has nothing to format it with otherwise."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return
    config = folder / "tokenizer_config.json"
    try:
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    except (OSError, ValueError):
        template = None
    if not template:
        raise UserError(
            f"the model {base} (base) has no chat template (none in {config}), so it cannot draft iteration 1's "
            "answers; let the teachers draft iteration 1 (first_drafter 'auto'), or start from a model with a "
            "chat template (an instruct model)",
            parameters=["first_drafter", "base"],
        )
