"""A run's settings: chosen when the run starts, stored in its journal, and the same when it resumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, get_args

from ..dataset.dedup import ScreeningMode
from ..dataset.sensitive_gate import SENSITIVE_DATA_POLICIES
from ..errors import UserError

__all__ = ["ENGINES", "RunSettings"]

ENGINES = ("local", "ray")


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a run drafts, judges and writes (see ``arcticcodex distill --help`` for each setting)."""

    threshold: float = 0.8
    max_rounds: int = 3
    concurrency: int = 8
    budget_usd: float | None = None
    teachers: tuple[str, ...] = ()
    drafter: str = "auto"
    """'auto' (resolved when the run is created, see preflight.py), 'extractive', or an API teacher's name."""
    fallback_drafter: str | None = None
    """The API teacher that drafts when the extractive drafter finds no passage matching the prompt
    (set when 'auto' resolves); None: the extractive drafter offers the evidence's leading passages."""
    evidence_k: int = 5
    key: str = "dataset"
    key_origin: str = "the default key name"
    """Where ``key`` came from (the caller, [distill] or [signing] in arcticcodex.toml), for messages."""
    signer_id: str = "arcticcodex"
    near_duplicate_threshold: float | None = 0.95
    near_duplicate_mode: ScreeningMode = "auto"
    """How near duplicates are screened (:class:`~arcticcodex.dataset.dedup.NearDuplicateFilter`):
    'auto' (exact below 10,000 kept pairs, an approximate index past it), 'exact' or 'approximate'."""
    validation_fraction: float = 0.0
    append: bool = False
    source: str = ""
    human_review: bool = False  # accepted pairs wait in the review queue; only approved ones are published
    sensitive_data: str = "block"
    """What publishing does with a pair holding a secret or personal data: 'block', 'redact' or 'allow'
    (see :mod:`arcticcodex.dataset.sensitive_gate`; a run journaled before the gate existed reads as 'block')."""
    batch: bool = False
    """Teacher calls go up as provider batches, a refine round at a time (teachers/batch_queue.py)."""
    batch_poll_seconds: float = 30.0  # between checks of a batch's status
    engine: str = "local"
    """'local' (this process's workers) or 'ray' (the tasks in ``shards`` shards, each a Ray task: ray_engine.py)."""
    shards: int = 8
    """With engine 'ray': how many shards the run's tasks are split into (fixed when the run starts)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise UserError(f"threshold must be between 0 and 1, not {self.threshold}", parameters=["threshold"])
        if not 1 <= self.max_rounds <= 10:
            raise UserError(f"max_rounds must be between 1 and 10, not {self.max_rounds}", parameters=["max_rounds"])
        if not 1 <= self.concurrency <= 1024:
            raise UserError(
                f"concurrency must be between 1 and 1024, not {self.concurrency}", parameters=["concurrency"]
            )
        if self.budget_usd is not None and self.budget_usd < 0:
            raise UserError(f"budget_usd must not be negative, not {self.budget_usd}", parameters=["budget_usd"])
        if not 1 <= self.evidence_k <= 50:
            raise UserError(f"evidence_k must be between 1 and 50, not {self.evidence_k}", parameters=["evidence_k"])
        if self.near_duplicate_threshold is not None and not 0.5 <= self.near_duplicate_threshold <= 1.0:
            raise UserError(
                f"near_duplicate_threshold must be between 0.5 and 1.0 (cosine), not {self.near_duplicate_threshold}; "
                "to keep them all, turn the check off (keep_near_duplicates)",
                parameters=["near_duplicate_threshold", "keep_near_duplicates"],
            )
        if self.near_duplicate_mode not in get_args(ScreeningMode):
            raise UserError(
                f"near_duplicate_mode must be one of {', '.join(get_args(ScreeningMode))}, "
                f"not {self.near_duplicate_mode!r}",
                parameters=["near_duplicate_mode"],
            )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise UserError(
                f"validation_fraction must be a fraction in [0, 1), not {self.validation_fraction}",
                parameters=["validation_fraction"],
            )
        if not 0.0 < self.batch_poll_seconds <= 3600.0:
            raise UserError(
                f"batch_poll_seconds must be between 0 and 3600 seconds, not {self.batch_poll_seconds}",
                parameters=["batch_poll_seconds"],
            )
        if not self.signer_id.strip():
            raise UserError("signer_id must not be empty", parameters=["signer_id"])
        if self.sensitive_data not in SENSITIVE_DATA_POLICIES:
            raise UserError(
                f"sensitive_data must be one of {', '.join(SENSITIVE_DATA_POLICIES)}, not {self.sensitive_data!r}",
                parameters=["sensitive_data"],
            )
        if self.engine not in ENGINES:
            raise UserError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}", parameters=["engine"])
        if not 1 <= self.shards <= 100_000:
            raise UserError(f"shards must be between 1 and 100000, not {self.shards}", parameters=["shards"])
        if self.engine == "ray" and self.batch:
            raise UserError(
                "engine 'ray' and batch do not go together: a provider batch already runs on the provider's side; "
                "leave out one of them",
                parameters=["engine", "batch"],
            )
        if not self.drafter.strip():
            raise UserError("drafter must name 'auto', 'extractive' or a configured teacher", parameters=["drafter"])

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["teachers"] = list(self.teachers)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSettings:
        known = {field.name for field in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        values["teachers"] = tuple(values.get("teachers", ()))
        return cls(**values)
