"""Charts for the Studio's pages, drawn on the server as SVG: no script, nothing to escape."""

from __future__ import annotations

from typing import Any

from ..dataset.quality import QUALITY_BUCKETS


def histogram(buckets: dict[str, int], *, width: int = 480, height: int = 180) -> dict[str, Any]:
    """Bars for an SVG chart of the quality buckets (server-side: no script, nothing to escape)."""
    peak = max(buckets.values(), default=0) or 1
    slot = width / len(QUALITY_BUCKETS)
    bars = []
    for n, label in enumerate(QUALITY_BUCKETS):
        count = int(buckets.get(label, 0))
        bar_height = (height - 36) * count / peak
        bars.append(
            {
                "x": round(n * slot + 6, 1),
                "w": round(slot - 12, 1),
                "h": round(bar_height, 1),
                "y": round(height - 18 - bar_height, 1),
                "label": label,
                "count": count,
            }
        )
    return {"width": width, "height": height, "bars": bars}
