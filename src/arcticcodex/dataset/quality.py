"""The quality buckets: one definition of how pair qualities are grouped, wherever they are counted.

The dataset card, ``dataset stats`` (and its ``--json``) and the Studio's histogram all count the same
buckets with the same boundaries, so a figure read in one place is the figure shown in the others.
Each bucket holds the qualities from its lower edge up to (not including) the next one; the last also
holds 1.0.  Finer steps above 0.5 because that is where accepted pairs lie.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["QUALITY_BUCKETS", "bucket_counts", "quality_bucket"]

QUALITY_BUCKETS = ("0.0-0.5", "0.5-0.6", "0.6-0.7", "0.7-0.8", "0.8-0.9", "0.9-1.0")
_UPPER_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9)  # a bucket's quality is below its upper edge; the last has none


def quality_bucket(quality: float) -> str:
    """The label of the bucket ``quality`` falls in (below 0.0 counts as the first, above 1.0 as the last)."""
    for edge, label in zip(_UPPER_EDGES, QUALITY_BUCKETS, strict=False):
        if quality < edge:
            return label
    return QUALITY_BUCKETS[-1]


def bucket_counts(qualities: Iterable[float]) -> dict[str, int]:
    """How many of ``qualities`` fall in each bucket, every bucket present, in order."""
    counts = dict.fromkeys(QUALITY_BUCKETS, 0)
    for quality in qualities:
        counts[quality_bucket(float(quality))] += 1
    return counts
