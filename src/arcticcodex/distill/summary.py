"""How a run ended, in numbers, in words, and as an exit status a script can trust.

``arcticcodex distill`` exits with:

== ==========================================================================================
0  complete: every prompt was judged (accepted or rejected) and the dataset holds pairs
1  nothing ran: an option, the configuration, a key or a source was refused (the message says)
2  a usage error of the command line itself (click's)
3  some tasks failed (the reasons are listed; ``--resume`` retries those a teacher outage failed)
4  stopped with work left: a budget ran out with prompts pending, or pairs await human review
5  the run finished but wrote an empty dataset (the hint says why: all rejected, all duplicates …)
== ==========================================================================================

When several apply the first in this order wins: 4 (work is left to do), 3, 5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXIT_EMPTY", "EXIT_FAILED", "EXIT_OK", "EXIT_PENDING", "RunSummary", "empty_hint"]

EXIT_OK = 0
EXIT_FAILED = 3
EXIT_PENDING = 4
EXIT_EMPTY = 5


@dataclass
class RunSummary:
    run_id: str
    status: str
    out: str
    accepted: int
    rejected: int
    failed: int
    pending: int
    cost_usd: float
    written: int = 0
    validation: int = 0
    duplicates_removed: int = 0
    near_duplicates_removed: int = 0
    note: str | None = None
    failures: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    awaiting_review: int = 0
    rejected_in_review: int = 0
    """Accepted pairs a person rejected in review (runs made with --review): in rejected.jsonl, not trained on."""
    hint: str | None = None
    """Why the dataset is empty, and what to change (None when it is not)."""
    sensitive_data: dict[str, Any] = field(default_factory=dict)
    """What the sensitive-data gate found and did (policy, findings per kind, pairs blocked / redacted)."""

    def sensitive_data_line(self) -> str | None:
        """One line on the gate's findings for people, or None when it found nothing."""
        found = self.sensitive_data.get("findings") or {}
        if not found:
            return None
        kinds = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(found.items()))
        pairs = self.sensitive_data.get("pairs_with_findings", 0)
        done = {
            "block": f"{self.sensitive_data.get('pairs_blocked', 0)} blocked (in rejected.jsonl, redacted)",
            "redact": f"{self.sensitive_data.get('pairs_redacted', 0)} signed redacted, "
            f"{self.sensitive_data.get('pairs_blocked', 0)} blocked",
            "allow": "signed as they are (policy allow)",
        }.get(str(self.sensitive_data.get("policy")), "")
        return f"secrets and personal data: {kinds} in {pairs} pair(s); {done}"

    @property
    def exit_status(self) -> int:
        """The command's exit status for this outcome (see the module docstring)."""
        if self.pending or self.awaiting_review:
            return EXIT_PENDING
        if self.failed:
            return EXIT_FAILED
        if self.written == 0:
            return EXIT_EMPTY
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "exit_status": self.exit_status,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "pending": self.pending,
            "awaiting_review": self.awaiting_review,
            "rejected_in_review": self.rejected_in_review,
            "written": self.written,
            "validation": self.validation,
            "duplicates_removed": self.duplicates_removed,
            "near_duplicates_removed": self.near_duplicates_removed,
            "cost_usd": round(self.cost_usd, 6),
            "out": self.out,
            "note": self.note,
            "hint": self.hint,
            "failures": [{"task": position, "reason": reason} for position, reason in self.failures],
            "seconds": round(self.seconds, 3),
            "sensitive_data": self.sensitive_data,
        }


def empty_hint(
    summary: RunSummary, *, threshold: float, best_rejected: float | None, human_rejected: int
) -> str | None:
    """Why a finished run wrote no pair, in one sentence with the fix; None when it wrote some (or is not done)."""
    if summary.written or summary.pending or summary.awaiting_review:
        return None
    judged = summary.accepted + summary.rejected
    if judged + summary.failed == 0:
        return "the run had no prompts: its source gave none (an empty prompts file, or a vault with nothing in it)"
    if summary.accepted == 0 and summary.rejected:
        best = f" (the best scored {best_rejected:.2f})" if best_rejected is not None else ""
        return (
            f"none of the {summary.rejected} judged pair(s) reached the threshold of {threshold:g}{best}; they are in "
            "rejected.jsonl — lower the threshold, allow more rounds, or give evidence that answers the prompts"
        )
    if summary.accepted == 0:
        return f"every one of the {summary.failed} task(s) failed (the reasons are above); fix them and run again"
    removed = summary.duplicates_removed + summary.near_duplicates_removed
    if human_rejected >= summary.accepted:
        return f"all {summary.accepted} accepted pair(s) were rejected in human review"
    if removed:
        return (
            f"every accepted pair was a duplicate ({summary.duplicates_removed} exact, "
            f"{summary.near_duplicates_removed} near); keeping near duplicates keeps the near ones "
            "(`arcticcodex distill … --keep-near-duplicates`)"
        )
    return "no pair was written"
