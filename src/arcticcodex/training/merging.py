"""``arcticcodex merge``: merge trained students with mergekit, score every candidate, keep the best.

A merge config (TOML) names the models — folders written by ``arcticcodex train``, full models or
LoRA adapters — the methods to try (``linear``, ``ties``, ``dare_ties``, ``slerp``), and the dataset
whose validation split scores them::

    models = ["models/v1", "models/v2"]
    methods = ["linear", "ties", "slerp"]
    heldout = "datasets/v1"
    # weights = [0.6, 0.4]     (linear, ties, dare_ties; default equal)
    # density = 0.5            (ties, dare_ties: the share of each task vector kept)

Every parent's receipt is checked first (an altered one is refused; an untrusted signer only with
``allow_untrusted``); an adapter is merged into its base to make a full model.  mergekit runs as a
subprocess (the optional extra ``arcticcodex[merge]``), never imported: its licence stays at that
boundary.  Each candidate is scored by its held-out loss on the assistant's answers
(:mod:`.heldout_loss`), the parents too, so the receipt shows whether merging helped; the best
candidate becomes ``model/``, and ``receipt.json`` names its parents by their receipts' digests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import __version__
from ..dataset.verify import require_verified
from ..errors import ConfigError, UserError
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..workspace import Workspace
from .examples import write_training_files
from .heldout_loss import heldout_loss
from .receipt import RECEIPT_FILE, ReceiptReport, dataset_identity, file_digests, sign_receipt
from .trainer import libraries_quiet, resolve_base

__all__ = ["MergePlan", "MergeResult", "merge_models"]

Method = Literal["linear", "ties", "dare_ties", "slerp"]
DEFAULT_METHODS: tuple[Method, ...] = ("linear", "ties", "slerp")
Report = Callable[[str], None]


class MergePlan(BaseModel):
    """What to merge and how; read from the TOML config (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] = Field(min_length=2)
    methods: list[Method] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1)
    heldout: str
    weights: list[float] | None = None
    density: float = Field(0.5, gt=0, le=1)

    @classmethod
    def read(cls, path: Path) -> MergePlan:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read as TOML ({exc})") from exc
        try:
            plan = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the file"
            raise ConfigError(f"{path}: {where}: {first['msg']} (see `arcticcodex merge --help`)") from exc
        if plan.weights is not None and len(plan.weights) != len(plan.models):
            raise ConfigError(f"{path}: weights has {len(plan.weights)} numbers for {len(plan.models)} models")
        if "slerp" in plan.methods and len(plan.models) != 2:
            raise ConfigError(f"{path}: slerp merges exactly two models, not {len(plan.models)}; drop it from methods")
        return plan


class MergeResult(BaseModel):
    out: Path
    model: Path
    best: str
    scores: dict[str, float]


def merge_models(
    workspace: Workspace,
    config: str | Path,
    out: str | Path,
    *,
    keyring: KeyRing,
    key: str | None = None,
    allow_untrusted: bool = False,
    keep_candidates: bool = False,
    report: Report | None = None,
) -> MergeResult:
    """Merge as ``config`` says into ``out``; see the module docstring."""
    config, out = Path(config).resolve(), Path(out).resolve()
    plan = MergePlan.read(config)
    say = report or (lambda _: None)
    mergekit = _mergekit_command()
    parents = [_parent(config.parent / name, keyring, allow_untrusted) for name in plan.models]
    heldout = (config.parent / plan.heldout).resolve()
    require_verified(heldout, keyring=keyring, allow_untrusted=allow_untrusted)
    signer = KeyStore(workspace.keys_dir).signer(key or workspace.config.signing_key or "dataset")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"out {out} is not empty; choose a new folder", parameters=["out"])
    work = out / "work"
    rows = write_training_files(heldout, work / "rows", dpo_margin=1.0).sft_eval
    if rows is None:
        raise UserError(f"the dataset in {heldout} has no validation split to score the merges on")
    candidates: dict[str, Path] = {}
    with libraries_quiet():
        full = [_full_model(parent, work / f"parent-{number}", say) for number, parent in enumerate(parents)]
        scores = {
            f"parent:{parent['path']}": heldout_loss(path, rows) for parent, path in zip(parents, full, strict=True)
        }
        for method in plan.methods:
            say(f"merging with {method}")
            candidates[method] = _run_mergekit(mergekit, method, full, plan, work / "candidates" / method)
            scores[method] = heldout_loss(candidates[method], rows)
    best = min(plan.methods, key=lambda method: scores[method])
    shutil.move(str(candidates[best]), out / "model")
    if not keep_candidates:
        shutil.rmtree(work)
    body = {
        "kind": "arcticcodex.merge-receipt",
        "version": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "parents": parents,
        "dataset": {**dataset_identity(heldout), "role": "held-out split the candidates were scored on"},
        "config": {**plan.model_dump(), "chosen": best},
        "libraries": {"arcticcodex": __version__, "mergekit": _version("mergekit"), "python": sys.version.split()[0]},
        "metrics": {"heldout_loss": scores},
        "artifacts": {f"model/{name}": digest for name, digest in file_digests(out / "model").items()},
    }
    sign_receipt(out, body, signer)
    return MergeResult(out=out, model=out / "model", best=best, scores=scores)


def _mergekit_command() -> list[str]:
    beside = Path(sys.executable).with_name("mergekit-yaml")
    found = str(beside) if beside.is_file() else shutil.which("mergekit-yaml")
    if found is None:
        raise UserError("merging needs mergekit: pip install 'arcticcodex[merge]'")
    return [found]


def _parent(folder: Path, keyring: KeyRing, allow_untrusted: bool) -> dict[str, Any]:
    """A parent model, its receipt checked; what the merge receipt records of it."""
    folder = folder.resolve()
    checked = ReceiptReport.check(folder, keyring=keyring)
    if not checked.ok:
        raise UserError(
            f"{folder}: its receipt does not verify ({checked.problems[0]}); a model is merged only as it was "
            f"trained (`arcticcodex receipt verify {folder}` lists every problem)"
        )
    if not checked.trusted and not allow_untrusted:
        raise UserError(
            f"{folder}: its receipt is intact, but its signer is NOT trusted ({checked.trust_note}); trust the "
            "key, or pass allow_untrusted",
            parameters=["allow_untrusted"],
        )
    return {
        "path": str(folder),
        "receipt_sha256": hashlib.sha256((folder / RECEIPT_FILE).read_bytes()).hexdigest(),
        "dataset_merkle_root": checked.receipt.get("dataset", {}).get("merkle_root"),
        "base_model": checked.receipt.get("base_model", {}).get("name"),
        "trusted_as": checked.trusted_as,
    }


def _full_model(parent: dict[str, Any], into: Path, say: Report) -> Path:
    """The parent as a full model: its ``model/`` as is, or its adapter merged into its base."""
    model = Path(parent["path"]) / "model"
    if not (model / "adapter_config.json").is_file():
        return model
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say(f"merging the adapter of {parent['path']} into its base")
    base = AutoModelForCausalLM.from_pretrained(resolve_base(str(parent["base_model"])))
    merged = PeftModel.from_pretrained(base, model).merge_and_unload()
    merged.save_pretrained(into)
    AutoTokenizer.from_pretrained(model).save_pretrained(into)
    return into


def _run_mergekit(command: list[str], method: Method, models: list[Path], plan: MergePlan, into: Path) -> Path:
    weights = plan.weights or [1.0 / len(models)] * len(models)
    entries = []
    for model, weight in zip(models, weights, strict=True):
        parameters: dict[str, float] = {} if method == "slerp" else {"weight": weight}
        if method in ("ties", "dare_ties"):
            parameters["density"] = plan.density
        entries.append({"model": str(model), **({"parameters": parameters} if parameters else {})})
    config: dict[str, Any] = {"merge_method": method, "models": entries, "dtype": "float32", "tokenizer_source": "base"}
    if method != "linear":
        config["base_model"] = str(models[0])
    if method == "slerp":
        config["parameters"] = {"t": weights[1] / sum(weights)}
    into.parent.mkdir(parents=True, exist_ok=True)
    recipe = into.parent / f"{method}.yaml"
    recipe.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML: no YAML writer needed
    done = subprocess.run(  # noqa: S603 - our own argument list, no shell
        [*command, str(recipe), str(into), "--copy-tokenizer"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise UserError(f"mergekit failed to merge with {method} (exit status {done.returncode}):\n{last}")
    return into


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
