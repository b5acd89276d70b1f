"""How a student is trained: the method, the adapter, the schedule — validated once, recorded in the receipt."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ..errors import UserError

__all__ = ["METHODS", "REPORTERS", "TrainSettings"]

Method = Literal["sft", "dpo", "sft+dpo"]
METHODS: tuple[Method, ...] = ("sft", "dpo", "sft+dpo")
REPORTERS = ("none", "wandb", "mlflow", "tensorboard")


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Everything that shapes a training run (the receipt records all of it, so a run can be repeated).

    ``lora`` is ``(rank, alpha)`` for a LoRA adapter, or None to train every weight (``full``).
    ``max_steps`` (when set) overrides ``epochs``.  ``allow_untrusted`` lets a dataset whose signer
    is not trusted through; an altered dataset is never trained on.
    """

    base: str
    method: Method = "sft"
    lora: tuple[int, int] | None = (16, 32)
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 2e-4
    batch_size: int = 4
    max_length: int = 1024
    eval_steps: int = 50
    save_steps: int = 50
    report_to: str = "none"
    seed: int = 0
    dpo_beta: float = 0.1
    dpo_margin: float = 0.1
    allow_untrusted: bool = False

    def __post_init__(self) -> None:
        if not self.base.strip():
            raise UserError("base must name the model to start from: a local folder or a Hugging Face id")
        if self.method not in METHODS:
            raise UserError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}", parameters=["method"])
        if self.lora is not None and (self.lora[0] < 1 or self.lora[1] < 1):
            raise UserError(
                f"lora must be a positive rank and alpha, such as 16,32, not {self.lora}", parameters=["lora"]
            )
        if not self.epochs > 0:
            raise UserError(f"epochs must be positive, not {self.epochs}", parameters=["epochs"])
        if self.max_steps is not None and self.max_steps < 1:
            raise UserError(f"max_steps must be at least 1, not {self.max_steps}", parameters=["max_steps"])
        if not 0 < self.learning_rate < 1:
            raise UserError(
                f"learning_rate must be between 0 and 1, not {self.learning_rate}", parameters=["learning_rate"]
            )
        if self.batch_size < 1:
            raise UserError(f"batch_size must be at least 1, not {self.batch_size}", parameters=["batch_size"])
        if self.max_length < 16:
            raise UserError(f"max_length must be at least 16 tokens, not {self.max_length}", parameters=["max_length"])
        if self.report_to not in REPORTERS:
            raise UserError(
                f"report_to must be one of {', '.join(REPORTERS)}, not {self.report_to!r}", parameters=["report_to"]
            )

    @property
    def full(self) -> bool:
        return self.lora is None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lora"] = list(self.lora) if self.lora else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainSettings:
        """The settings :meth:`to_json` wrote (a journaled loop's, say), validated again."""
        known = {field.name for field in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        if values.get("lora") is not None:
            rank, alpha = values["lora"]
            values["lora"] = (int(rank), int(alpha))
        return cls(**values)
