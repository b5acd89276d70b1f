"""The student beside its baseline, drawn: an SVG written from code (the Studio) and a PNG (the CLI).

The SVG needs nothing: grouped bars, one group per metric, each bar with its bootstrap interval as
a whisker, in a few kilobytes of markup the Studio can inline.  The PNG is drawn by matplotlib with
its Agg backend (no display, no GUI toolkit) — the maintained standard for a raster chart, an
optional extra (``arcticcodex[charts]``) so that nobody who never asks for a PNG installs it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileio import atomic_write

__all__ = ["LABELS", "chart_svg", "pyplot", "write_png"]

LABELS = {
    "exact_match": "exact match",
    "token_f1": "token F1",
    "grounded_supported": "claims supported",
    "grounded_contradicted": "claims contradicted",
    "win_rate": "win rate vs teacher",
}
_COLOURS = ("#2b6cb0", "#dd6b20", "#38a169")
_WIDTH, _HEIGHT, _LEFT, _TOP, _BOTTOM = 640, 300, 40, 30, 60


def _series(report: dict[str, Any]) -> list[tuple[str, list[tuple[float, float, float] | None]]]:
    """(model label, per metric: (mean, low, high) or None when not measured)."""
    rows = []
    for label, model in report["models"].items():
        values = []
        for metric in LABELS:
            shown = model["metrics"].get(metric, {})
            mean = shown.get("mean")
            values.append(None if mean is None else (mean, shown.get("low", mean), shown.get("high", mean)))
        rows.append((label, values))
    return rows


def chart_svg(report: dict[str, Any]) -> str:
    """A grouped bar chart of every metric (0 to 1) for each model, whiskers at the 95 % interval."""
    series = _series(report)
    plot_w, plot_h = _WIDTH - _LEFT - 10, _HEIGHT - _TOP - _BOTTOM
    group = plot_w / len(LABELS)
    bar = group * 0.7 / max(1, len(series))

    def y(value: float) -> float:
        return _TOP + plot_h * (1.0 - value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" font-family="sans-serif" font-size="11">',
        "<title>Held-out evaluation: " + escape(", ".join(label for label, _ in series)) + "</title>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
            f'<text x="{_LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
    for column, metric in enumerate(LABELS):
        left = _LEFT + column * group + group * 0.15
        for row, (label, values) in enumerate(series):
            value = values[column]
            if value is None:
                continue
            mean, low, high = value
            x = left + row * bar
            colour = _COLOURS[row % len(_COLOURS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y(mean):.1f}" width="{bar * 0.9:.1f}" height="{plot_h * mean:.1f}" '
                f'fill="{colour}"><title>{escape(label)} {escape(LABELS[metric])}: {mean:.3f} '
                f"[{low:.3f}, {high:.3f}]</title></rect>"
                f'<line x1="{x + bar * 0.45:.1f}" x2="{x + bar * 0.45:.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" '
                'stroke="#222"/>'
            )
        parts.append(
            f'<text x="{_LEFT + (column + 0.5) * group:.1f}" y="{_TOP + plot_h + 16}" '
            f'text-anchor="middle">{escape(LABELS[metric])}</text>'
        )
    for row, (label, _) in enumerate(series):
        x = _LEFT + row * 120
        parts.append(
            f'<rect x="{x}" y="{_HEIGHT - 20}" width="10" height="10" fill="{_COLOURS[row % len(_COLOURS)]}"/>'
            f'<text x="{x + 14}" y="{_HEIGHT - 11}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display), or the error that says how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: render to a buffer
        import matplotlib.pyplot as plt
    except ImportError:
        # from None: the ImportError adds nothing the message does not already say
        raise ConfigError(
            "a PNG chart needs matplotlib, which is not installed: pip install 'arcticcodex[charts]'",
            parameters=["chart"],
        ) from None
    return plt


def write_png(report: dict[str, Any], path: Path) -> None:
    """The same chart as a PNG file at ``path`` (written whole, or not at all)."""
    plt = pyplot()
    series = _series(report)
    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=100)
    try:
        width = 0.8 / max(1, len(series))
        for row, (label, values) in enumerate(series):
            xs = [column + row * width for column, value in enumerate(values) if value is not None]
            known = [value for value in values if value is not None]
            means = [value[0] for value in known]
            errors = [
                [m - v[1] for m, v in zip(means, known, strict=True)],
                [v[2] - m for m, v in zip(means, known, strict=True)],
            ]
            axes.bar(xs, means, width * 0.9, yerr=errors, capsize=3, label=label, color=_COLOURS[row % len(_COLOURS)])
        axes.set_xticks([column + width * (len(series) - 1) / 2 for column in range(len(LABELS))])
        axes.set_xticklabels(list(LABELS.values()), fontsize=8)
        axes.set_ylim(0, 1)
        axes.legend(fontsize=8)
        figure.tight_layout()
        with atomic_write(path) as handle:
            figure.savefig(handle, format="png")
    finally:
        plt.close(figure)
