"""The answer-level metrics of an evaluation and their bootstrap confidence intervals.

Exact match and token F1 follow SQuAD's normalisation (lower case, punctuation and articles removed,
whitespace collapsed), so "Otters eat fish." and "otters eat fish" match.  Citation markers are
stripped from the reference first by the caller (a student is trained without them).  Intervals are
a percentile bootstrap over questions with a seeded generator: the same answers always give the
same interval, so two evaluations of one model are comparable and tests can pin the numbers.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BOOTSTRAP_RESAMPLES", "Estimate", "estimate", "exact_match", "normalize", "token_f1"]

BOOTSTRAP_RESAMPLES = 1000
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(answer: str, reference: str) -> float:
    return 1.0 if normalize(answer) == normalize(reference) else 0.0


def token_f1(answer: str, reference: str) -> float:
    """The harmonic mean of token precision and recall after :func:`normalize` (1.0 when both are empty)."""
    said, wanted = normalize(answer).split(), normalize(reference).split()
    if not said or not wanted:
        return 1.0 if said == wanted else 0.0
    common = sum((Counter(said) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(said), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean over questions with its percentile-bootstrap interval (``n`` the questions it covers)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    def to_json(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def estimate(
    values: Sequence[float | None],
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = 0.95,
) -> Estimate:
    """The mean of ``values`` (None: not measured for that question) and its ``confidence`` interval."""
    known = [value for value in values if value is not None]
    if not known:
        return Estimate(None, None, None, 0)
    rng = random.Random(seed)  # noqa: S311 - resampling, not cryptography
    count = len(known)
    means = sorted(sum(rng.choices(known, k=count)) / count for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    low = means[min(resamples - 1, int(tail * resamples))]
    high = means[min(resamples - 1, int((1.0 - tail) * resamples))]
    return Estimate(round(sum(known) / count, 6), round(low, 6), round(high, 6), count)
