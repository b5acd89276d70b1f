"""Building a workspace's teacher pool from ``arcticcodex.toml``.

With no ``[[teachers]]`` configured the pool is the offline local judge alone — the embedded
default that needs no key and no network — and it says so in every record.  API teachers get the
workspace's request cache and share one ledger (tokens, money, budget).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import httpx2 as httpx

from ..errors import ConfigError
from ..vault.embeddings import EmbeddingBackend
from ..workspace import Workspace
from .cache import RequestCache
from .entries import TeacherConfig, TeacherPoolSettings, load_teachers
from .ledger import Ledger
from .local_judge import LocalJudge
from .openai_compat import OpenAICompatibleTeacher
from .pool import Teacher, TeacherPool
from .replicas import ReplicatedTeacher
from .results import ROLES, Role


def build_teacher(
    config: TeacherConfig,
    *,
    cache: RequestCache | None = None,
    ledger: Ledger | None = None,
    environ: Mapping[str, str] | None = None,
    http_client: httpx.AsyncClient | None = None,
    local_embedder: EmbeddingBackend | None = None,
) -> Teacher:
    if config.preset == "local":
        return LocalJudge(local_embedder, name=config.name)
    if config.replicas:  # one model on several endpoints (a GPU pool): spread the calls over all of them
        urls = (config.base_url, *config.replicas)
        return ReplicatedTeacher(
            config.name,
            [
                OpenAICompatibleTeacher(
                    replace(config, base_url=url, replicas=()),
                    cache=cache,
                    ledger=ledger,
                    environ=environ,
                    http_client=http_client,
                )
                for url in urls
            ],
        )
    return OpenAICompatibleTeacher(config, cache=cache, ledger=ledger, environ=environ, http_client=http_client)


def build_pool(
    workspace: Workspace,
    *,
    budget_usd: float | None = None,
    only: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    use_cache: bool = True,
    local_embedder: EmbeddingBackend | None = None,
) -> TeacherPool:
    """The pool ``arcticcodex.toml`` describes (``only`` restricts it to some teachers by name)."""
    configs, settings = load_teachers(workspace.config)
    configs = _in_use(configs, settings, only)
    ledger = Ledger(budget_usd=budget_usd if budget_usd is not None else settings.budget_usd)
    cache = RequestCache(workspace) if use_cache and any(c.preset != "local" for c in configs) else None
    teachers = [
        build_teacher(config, cache=cache, ledger=ledger, environ=environ, local_embedder=local_embedder)
        for config in configs
    ]
    return TeacherPool(
        teachers,
        roles=_roles(configs),
        critics=_critics(settings, configs),
        aggregate=settings.aggregate,
        ledger=ledger,
    )


LOCAL_JUDGE = TeacherConfig(name="local", preset="local", model="local-judge/v1")


def _in_use(configs: list[TeacherConfig], settings: TeacherPoolSettings, only: list[str] | None) -> list[TeacherConfig]:
    """The teachers ``only`` names (all when None); the local judge alone when none is configured.

    ``[teacher_pool] critics`` may name ``local`` without a ``[[teachers]]`` entry: it joins as a critic.
    """
    if only:
        configs = _named(configs, only)
    if not configs:
        return [LOCAL_JUDGE]
    if "local" in settings.critics and all(config.name != "local" for config in configs):
        return [*configs, replace(LOCAL_JUDGE, roles=("critic",))]
    return configs


def _named(configs: list[TeacherConfig], only: list[str]) -> list[TeacherConfig]:
    missing = sorted(set(only) - {config.name for config in configs} - {"local"})
    if missing:
        known = ", ".join(config.name for config in configs) or "none configured"
        raise ConfigError(f"unknown teacher(s) {missing}; known: {known} (and the built-in 'local')")
    named = [config for config in configs if config.name in only]
    if "local" in only and all(config.name != "local" for config in named):
        named.append(LOCAL_JUDGE)
    return named


def _roles(configs: list[TeacherConfig]) -> dict[Role, list[str]]:
    roles: dict[Role, list[str]] = {}
    for role in ROLES:
        names = [config.name for config in configs if role in config.roles]
        roles[role] = names or [configs[0].name]
    return roles


def _critics(pool: TeacherPoolSettings, configs: list[TeacherConfig]) -> list[str]:
    names = {config.name for config in configs}
    missing = [name for name in pool.critics if name not in names]
    if missing:  # e.g. --teachers left a configured critic out: an ensemble must not shrink silently
        raise ConfigError(f"[teacher_pool] critics {missing} are not among the teachers in use ({sorted(names)})")
    return list(pool.critics)
