"""One `arcticcodex eval`, wired from a workspace: the questions, the models, the judges, the record.

The pool is the workspace's teachers (less the models under evaluation) with the evaluation's
budget; its verifier checks claims and its critics judge, unless ``judges`` names others; with no
teacher configured the offline local judge does both.  The models share the pool's ledger (one
budget for everything the evaluation spends) and the workspace's request cache.  Model folders are
served for the evaluation's duration only (:mod:`.serving`).  The report is stored (:mod:`.store`)
before it is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._sync import run_sync
from ..distill.evidence import WorkspaceEvidence
from ..errors import ConfigError
from ..provenance.trust import KeyRing
from ..teachers.cache import RequestCache
from ..teachers.entries import load_teachers
from ..teachers.factory import build_pool
from ..teachers.openai_compat import OpenAICompatibleTeacher
from ..teachers.pool import TeacherPool
from ..workspace import Workspace
from .heldout import load_heldout
from .run import Contender, Judge, evaluate
from .serving import serve_folder, served_teacher
from .store import Evals
from .students import ModelSpec, resolve_model

__all__ = ["EvalRequest", "run_eval", "run_eval_sync"]


@dataclass(frozen=True, slots=True)
class EvalRequest:
    """What `arcticcodex eval` was asked: the models, the held-out dataset and how to judge."""

    student: str
    heldout: Path
    baseline: str | None = None
    judges: tuple[str, ...] = ()
    budget_usd: float | None = None
    allow_untrusted: bool = False
    concurrency: int = 4
    limit: int | None = None
    max_tokens: int = 512
    seed: int = 0


async def run_eval(
    workspace: Workspace,
    request: EvalRequest,
    *,
    keyring: KeyRing | None = None,
    environ: Mapping[str, str] | None = None,
    on_question: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``request.student`` (and its baseline) on the held-out questions; the stored report."""
    configs, _ = load_teachers(workspace.config)
    student = resolve_model(request.student, configs, parameter="student")
    baseline = resolve_model(request.baseline, configs, parameter="baseline") if request.baseline else None
    with WorkspaceEvidence(workspace, request.heldout) as evidence:
        heldout = load_heldout(
            request.heldout,
            keyring=keyring,
            allow_untrusted=request.allow_untrusted,
            evidence_texts=evidence,
            limit=request.limit,
        )
    under_test = {spec.config.name for spec in (student, baseline) if spec is not None and spec.config is not None}
    others = [config.name for config in configs if config.name not in under_test]
    pool = build_pool(
        workspace,
        budget_usd=request.budget_usd,
        only=list(request.judges) or others or ["local"],
        environ=environ,
    )
    judges = _judges(pool, request.judges)
    cache = RequestCache(workspace)
    try:
        with contextlib.ExitStack() as served:
            contenders = [
                Contender(label, spec, await _client(spec, label, served, cache, pool, environ))
                for label, spec in (("student", student), ("baseline", baseline))
                if spec is not None
            ]
            try:
                report = await evaluate(
                    heldout,
                    contenders,
                    verifier=pool,
                    judges=judges,
                    concurrency=request.concurrency,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                    on_question=on_question,
                )
            finally:
                for contender in contenders:
                    await contender.client.aclose()
    finally:
        await pool.aclose()
        cache.close()
    report["spend"] = pool.ledger.to_json()
    Evals(workspace).add(report)
    return report


def run_eval_sync(workspace: Workspace, request: EvalRequest, **options: Any) -> dict[str, Any]:
    return run_sync(run_eval(workspace, request, **options))


def _judges(pool: TeacherPool, named: tuple[str, ...]) -> list[Judge]:
    """The teachers that judge: ``named``, else the pool's critics (the ensemble, or the critic role's first)."""
    names = list(named) or pool.critics or pool.roles["critic"][:1]
    judges: list[Judge] = []
    for name in names:
        teacher = pool.teachers.get(name)
        if teacher is None or not hasattr(teacher, "compare"):
            raise ConfigError(
                f"judge {name!r} cannot compare answers (known judges: {', '.join(pool.teachers)})",
                parameters=["judges"],
            )
        judges.append(teacher)  # type: ignore[arg-type]  # it has compare(): checked above
    return judges


async def _client(
    spec: ModelSpec,
    label: str,
    served: contextlib.ExitStack,
    cache: RequestCache,
    pool: TeacherPool,
    environ: Mapping[str, str] | None,
) -> OpenAICompatibleTeacher:
    if spec.config is not None:
        config = replace(spec.config, replicas=())  # one endpoint: an evaluation asks one server the same way
        return OpenAICompatibleTeacher(config, cache=cache, ledger=pool.ledger, environ=environ)
    if spec.folder is None:  # resolve_model gives one or the other
        raise ConfigError(f"{label} names no model", parameters=[label])
    # loading (and merging an adapter) takes seconds of blocking work: off the event loop
    base_url, served_model = await asyncio.to_thread(served.enter_context, serve_folder(spec.folder))
    config = served_teacher(label, base_url, served_model)
    return OpenAICompatibleTeacher(config, cache=cache, ledger=pool.ledger, api_key="local")
