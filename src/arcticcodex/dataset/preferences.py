"""Why a DPO export wrote no rows, in words a user can act on.

A preference row needs a pair the teacher loop *improved*: a first draft (rejected) and a final text
(chosen) whose score rose by at least the margin.  A dataset whose pairs were all accepted in their
first round, or improved only a little, gives none — and an empty file with no word of why sends the
user looking for a bug.  :func:`explain_no_preferences` counts each reason over the same records the
export read (the same conditions as :func:`.export.dpo_row`) and says what to change.
"""

from __future__ import annotations

import math
from pathlib import Path

from .export import DEFAULT_DPO_MARGIN, split_files
from .record import iter_records

__all__ = ["explain_no_preferences"]


def explain_no_preferences(directory: str | Path, margin: float = DEFAULT_DPO_MARGIN, split: str = "train") -> str:
    """One sentence: why no pair of ``split`` in ``directory`` made a DPO row at ``margin``, and the fix."""
    total = first_round = unchanged = below = 0
    best: float | None = None
    for path in split_files(Path(directory), split):
        for _, pair, _ in iter_records(path):
            total += 1
            if len(pair.revisions) < 2:
                first_round += 1
                continue
            first = pair.revisions[0]
            if first.text.strip() == pair.completion.strip():
                unchanged += 1
                continue
            gain = float(pair.quality) - first.score
            best = gain if best is None else max(best, gain)
            below += gain < margin
    if total == 0:
        return f"the {split} split holds no pairs, so there was nothing to export"
    reasons = []
    if first_round:
        reasons.append(f"{first_round} accepted in their first round (no earlier draft to prefer against)")
    if unchanged:
        reasons.append(f"{unchanged} whose final text is their first draft")
    if below:
        reasons.append(f"{below} that improved by less than {margin:g} (the most was {best:.2f})")
    fix = "Lower the margin"
    if best is not None and best > 0:
        fix += f" (e.g. `arcticcodex dataset export … --dpo-margin {math.floor(best * 100) / 100:g}`)"
    return (
        f"no pair improved by the margin {margin:g} across rounds: of {total} pair{'s' if total != 1 else ''}, "
        f"{'; '.join(reasons)}. {fix}, or run more rounds (distill with a higher threshold, so first drafts "
        "are revised, and 3 rounds or more: `arcticcodex distill … --threshold 0.9 --max-rounds 3`)"
    )
