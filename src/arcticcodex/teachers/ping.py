"""``teachers ping``: ask every endpoint of every teacher what it serves, and say what is wrong with each.

Why every one, and never stop at the first: a user setting up three teachers wants to fix all three
problems in one go, not one per run.  Each endpoint (a teacher's ``base_url`` and each replica) is
asked on its own, all at once; a failure becomes a line with the URL, the error and a hint, never an
exception.  An entry the user has not trusted gets no request and no key (see :mod:`.trust`): it is
reported with the command that trusts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..errors import ConfigError, TeacherError, TeacherRejectedError
from .api_keys import untrusted_teacher_error
from .entries import TeacherConfig
from .openai_compat import OpenAICompatibleTeacher
from .trust import key_source

__all__ = ["PingResult", "ping_teachers"]


@dataclass(frozen=True, slots=True)
class PingResult:
    """What one endpoint of one teacher answered (``status``: ok, failed or untrusted)."""

    teacher: str
    url: str
    status: str
    outcome: str
    hint: str = ""


async def ping_teachers(configs: Sequence[TeacherConfig]) -> list[PingResult]:
    """One result per endpoint (per teacher for the local judge and untrusted entries), in the order given."""
    groups = await asyncio.gather(*(_ping_teacher(config) for config in configs))
    return [result for group in groups for result in group]


async def _ping_teacher(config: TeacherConfig) -> list[PingResult]:
    if config.preset == "local":
        return [PingResult(config.name, "", "ok", "offline local judge: always available")]
    if not config.trusted:  # no request, no key: only what trusting it would mean
        urls = ", ".join((config.base_url, *config.replicas))
        return [PingResult(config.name, urls, "untrusted", str(untrusted_teacher_error(config)))]
    return list(await asyncio.gather(*(_ping(config, url) for url in (config.base_url, *config.replicas))))


async def _ping(config: TeacherConfig, url: str) -> PingResult:
    try:
        teacher = OpenAICompatibleTeacher(replace(config, base_url=url, replicas=()))
    except ConfigError as error:  # no key in the environment, a key file that cannot be used: the message says which
        return PingResult(config.name, url, "failed", str(error))
    try:
        models = await teacher.ping()
    except TeacherRejectedError as error:
        return PingResult(config.name, url, "failed", str(error), _rejected_hint(config, error.status))
    except TeacherError as error:
        return PingResult(config.name, url, "failed", str(error), _unreachable_hint(config, url))
    finally:
        await teacher.aclose()
    served = "serves " + ", ".join(models) if models else "answers (no models listed)"
    if models and config.model not in models:
        return PingResult(
            config.name,
            url,
            "ok",
            f"{served}; NOTE: {config.model!r} is not among them",
            "set the model the endpoint serves: `arcticcodex teachers remove NAME`, then "
            "`arcticcodex teachers add NAME --model MODEL …`",
        )
    return PingResult(config.name, url, "ok", served)


def _rejected_hint(config: TeacherConfig, status: int) -> str:
    if status in (401, 403):
        return f"the endpoint refused the key from {key_source(config)}: check that it is the right, current key"
    if status == 402:
        return "the account behind the key has no balance left: top it up with the provider"
    if status == 404:
        return "check base_url: OpenAI-compatible servers answer under a path such as /v1 (http://127.0.0.1:8000/v1)"
    return ""


def _unreachable_hint(config: TeacherConfig, url: str) -> str:
    start = {
        "vllm": f"start it with `vllm serve {config.model}` (a rented GPU: `arcticcodex gpu ls` shows its tunnel)",
        "ollama": "start it with `ollama serve`",
    }.get(config.preset, "check the URL and your network")
    return f"nothing usable answered at {url}: is the server running there? {start}"
