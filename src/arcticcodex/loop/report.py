"""A loop in numbers: one row per student (0 is the base model), as JSON, an SVG and a PNG chart.

Each row says who drafted the iteration's questions, what the teachers accepted, what the student
learnt from (SFT rows, DPO pairs), the held-out loss before and after training, the evaluation's
metrics with their intervals, and what the teachers cost: in all, and per accepted pair — the figure
that says whether a better drafter makes the data cheaper.  The chart draws quality per iteration
(lines with 95 % whiskers) beside the cost per accepted pair (bars).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from ..evaluation.chart import LABELS, pyplot
from ..fileio import atomic_write
from .journal import LoopRecord
from .stopping import best_iteration

__all__ = ["QUALITY", "iteration_rows", "loop_json", "loop_svg", "write_loop_png"]

QUALITY = ("win_rate", "token_f1", "grounded_supported")
"""The metrics drawn per iteration (the table shows exact match and contradicted claims as well)."""
_COLOURS = {"win_rate": "#2b6cb0", "token_f1": "#dd6b20", "grounded_supported": "#38a169"}
_WIDTH, _HEIGHT, _TOP, _BOTTOM = 720, 300, 30, 60
_PLOT = (40, 430)  # the quality panel's left and right
_COST = (500, 710)  # the cost panel's


def iteration_rows(record: LoopRecord) -> list[dict[str, Any]]:
    """Student 0 (the base model) and each iteration that has a step, in order."""
    last = max((step.iteration for step in record.steps), default=0)
    rows = []
    for iteration in range(last + 1):
        distill, train, evaluation = (record.step(iteration, stage) for stage in ("distill", "train", "eval"))
        if iteration and distill is None:
            continue
        made = (distill.result or {}) if distill is not None else {}
        trained = (train.result or {}) if train is not None else {}
        measured = (evaluation.result or {}) if evaluation is not None else {}
        accepted = made.get("accepted")
        distill_usd = float(made.get("spent_usd", 0.0))
        losses = list((trained.get("losses") or {}).values())
        rows.append(
            {
                "iteration": iteration,
                "model": measured.get("model") or (trained.get("out") if iteration else record.settings.base),
                "receipt_sha256": trained.get("receipt_sha256"),
                "drafter": made.get("drafter"),
                "accepted": accepted,
                "rejected": made.get("rejected"),
                "written": made.get("written"),
                "method": trained.get("method"),
                "sft_rows": (trained.get("rows") or {}).get("sft_train"),
                "dpo_pairs": (trained.get("rows") or {}).get("dpo_train"),
                "heldout_loss_before": losses[0].get("eval_loss_before") if losses else None,
                "heldout_loss_after": losses[-1].get("eval_loss") if losses else None,
                "eval_id": measured.get("eval_id"),
                "metrics": measured.get("metrics"),
                "teacher_usd": round(distill_usd + float(measured.get("spent_usd", 0.0)), 6),
                "usd_per_accepted_pair": round(distill_usd / accepted, 6) if accepted else None,
                "steps": {
                    stage: step.status
                    for stage, step in (("distill", distill), ("train", train), ("eval", evaluation))
                    if step is not None
                },
            }
        )
    return rows


def loop_json(record: LoopRecord) -> dict[str, Any]:
    best = best_iteration(record)
    return {
        "id": record.id,
        "status": record.status,
        "note": record.note,
        "out": str(record.out),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "settings": record.settings.to_json(),
        "iterations": iteration_rows(record),
        "best_iteration": best,
        "spent_usd": round(record.spent_usd(), 6),
    }


def _measured(row: dict[str, Any], metric: str) -> tuple[float, float, float] | None:
    shown = (row.get("metrics") or {}).get(metric) or {}
    mean = shown.get("mean")
    if mean is None:
        return None
    return float(mean), float(shown.get("low", mean)), float(shown.get("high", mean))


def loop_svg(record: LoopRecord) -> str:
    """Quality per iteration (0 to 1, whiskers at the 95 % interval) and teacher cost per accepted pair."""
    rows = iteration_rows(record)
    plot_h = _HEIGHT - _TOP - _BOTTOM
    span = max(1, len(rows) - 1)

    def x(position: int) -> float:
        return _PLOT[0] + (_PLOT[1] - _PLOT[0]) * (position / span if len(rows) > 1 else 0.5)

    def y(value: float) -> float:
        return _TOP + plot_h * (1.0 - value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" font-family="sans-serif" font-size="11">',
        f"<title>Loop {escape(record.id)}: quality per iteration and cost per accepted pair</title>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{_PLOT[0]}" x2="{_PLOT[1]}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
            f'<text x="{_PLOT[0] - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
    for position, row in enumerate(rows):
        parts.append(
            f'<text x="{x(position):.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">{row["iteration"]}</text>'
        )
    parts.append(
        f'<text x="{(_PLOT[0] + _PLOT[1]) / 2:.0f}" y="{_TOP + plot_h + 32}" text-anchor="middle">'
        "iteration (0: the base model)</text>"
    )
    for metric in QUALITY:
        colour = _COLOURS[metric]
        points = [(position, value) for position, row in enumerate(rows) if (value := _measured(row, metric))]
        if len(points) > 1:
            path = " ".join(f"{x(position):.1f},{y(value[0]):.1f}" for position, value in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for position, (mean, low, high) in points:
            parts.append(
                f'<line x1="{x(position):.1f}" x2="{x(position):.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" '
                f'stroke="{colour}"/><circle cx="{x(position):.1f}" cy="{y(mean):.1f}" r="3.5" fill="{colour}">'
                f"<title>iteration {rows[position]['iteration']} {escape(LABELS[metric])}: {mean:.3f} "
                f"[{low:.3f}, {high:.3f}]</title></circle>"
            )
    parts.extend(_cost_panel(rows, plot_h))
    for number, metric in enumerate(QUALITY):
        left = _PLOT[0] + number * 140
        parts.append(
            f'<rect x="{left}" y="{_HEIGHT - 16}" width="10" height="10" fill="{_COLOURS[metric]}"/>'
            f'<text x="{left + 14}" y="{_HEIGHT - 7}">{escape(LABELS[metric])}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _cost_panel(rows: list[dict[str, Any]], plot_h: int) -> list[str]:
    costs = [(row["iteration"], row["usd_per_accepted_pair"]) for row in rows if row["iteration"]]
    top = max((cost for _, cost in costs if cost), default=0.0) or 1.0
    width = (_COST[1] - _COST[0]) / max(1, len(costs))
    parts = [
        f'<text x="{(_COST[0] + _COST[1]) / 2:.0f}" y="{_TOP - 10}" text-anchor="middle">'
        "teacher $ per accepted pair</text>",
        f'<line x1="{_COST[0]}" x2="{_COST[1]}" y1="{_TOP + plot_h}" y2="{_TOP + plot_h}" stroke="#999"/>',
    ]
    for number, (iteration, cost) in enumerate(costs):
        left = _COST[0] + number * width + width * 0.15
        height = plot_h * (cost or 0.0) / top
        label = f"${cost:.4f}" if cost is not None else "n/a"
        parts.append(
            f'<rect x="{left:.1f}" y="{_TOP + plot_h - height:.1f}" width="{width * 0.7:.1f}" height="{height:.1f}" '
            f'fill="#805ad5"><title>iteration {iteration}: {label}</title></rect>'
            f'<text x="{left + width * 0.35:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">{iteration}</text>'
            f'<text x="{left + width * 0.35:.1f}" y="{_TOP + plot_h - height - 4:.1f}" '
            f'text-anchor="middle" font-size="9">{label}</text>'
        )
    return parts


def write_loop_png(record: LoopRecord, path: Path) -> None:
    """The same chart as a PNG file at ``path`` (written whole, or not at all)."""
    plt = pyplot()
    rows = iteration_rows(record)
    figure, (quality, cost) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100, width_ratios=[2, 1])
    try:
        for metric in QUALITY:
            points = [(row["iteration"], value) for row in rows if (value := _measured(row, metric))]
            if not points:
                continue
            xs = [iteration for iteration, _ in points]
            means = [value[0] for _, value in points]
            errors = [[m - v[1] for m, (_, v) in zip(means, points, strict=True)],
                      [v[2] - m for m, (_, v) in zip(means, points, strict=True)]]  # fmt: skip
            quality.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=LABELS[metric],
                             color=_COLOURS[metric])  # fmt: skip
        quality.set_ylim(0, 1)
        quality.set_xlabel("iteration (0: the base model)")
        quality.set_xticks([row["iteration"] for row in rows])
        quality.legend(fontsize=8)
        priced = [(row["iteration"], row["usd_per_accepted_pair"] or 0.0) for row in rows if row["iteration"]]
        cost.bar([str(iteration) for iteration, _ in priced], [value for _, value in priced], color="#805ad5")
        cost.set_title("teacher $ per accepted pair", fontsize=9)
        figure.tight_layout()
        with atomic_write(path) as handle:
            figure.savefig(handle, format="png")
    finally:
        plt.close(figure)
