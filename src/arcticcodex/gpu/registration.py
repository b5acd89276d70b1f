"""Rented instances as teachers: one ``vllm`` entry per teacher name in ``arcticcodex.toml``.

Why in the configuration file: every command that builds a teacher pool (``distill``, ``refine``,
``teachers ping``) reads it, so a GPU is usable the moment ``gpu up`` returns, by name, with nothing
GPU-specific in the teacher code.  The entry lists every ready tunnel of the name (``base_url`` plus
``replicas``), and names the vLLM key by file (mode 0600, under ``.arcticcodex/gpu/keys/``), never by
value.  Entries this module did not write are never touched, and a name they use is refused before
anything is rented; its own are updated in place through :mod:`arcticcodex.configfile`, which keeps
the user's comments.  The entries it writes are recorded as trusted (the user ran ``gpu up``), so
they get their key without a ``teachers trust``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from .. import configfile
from ..config import Config
from ..errors import ConfigError
from ..fileio import write_atomically
from ..teachers.api_keys import read_key_file
from ..teachers.entries import load_teachers
from ..teachers.trust import TrustedTeachers
from ..workspace import Workspace
from .state import InstanceRecord, InstanceStore


def check_teacher_name(workspace: Workspace, store: InstanceStore, name: str) -> None:
    """Refuse a teacher name that a teacher not managed here already uses (before renting anything).

    The file is read as it is now, not as the workspace first read it; an entry it cannot accept is
    refused here too, before anything is rented.
    """
    for entry in Config.load(workspace.config.path).teachers:
        if entry.name == name and not _managed(workspace, store, entry.model_dump()):
            raise ConfigError(
                f"{workspace.config.path}: {name!r} already names an entry that is not GPU-managed; "
                "choose another teacher, or remove it with `arcticcodex teachers remove`",
                parameters=["teacher"],
            )


def register_teachers(workspace: Workspace, store: InstanceStore) -> None:
    """Rewrite the managed entries from the ready instances; other entries stay as they are."""
    ready: dict[str, list[InstanceRecord]] = {}
    for record in store.live():
        if record.teacher and record.status == "ready" and record.local_port:
            ready.setdefault(record.teacher, []).append(record)
    entries = []
    for name, records in sorted(ready.items()):
        urls = [f"http://127.0.0.1:{r.local_port}/v1" for r in records]
        entry: dict[str, Any] = {
            "name": name,
            "preset": "vllm",
            "model": records[0].served_model,
            "base_url": urls[0],
        }
        if urls[1:]:
            entry["replicas"] = urls[1:]
        entry["api_key_file"] = str(store.key_path(name).relative_to(workspace.root))
        entries.append(entry)
    workspace.config = configfile.put_teachers(
        workspace.config.path, entries, replaceable=lambda entry: _managed(workspace, store, entry)
    )
    trusted = TrustedTeachers.for_user()  # entries written here are the user's own (see teachers/trust.py)
    for config in load_teachers(workspace.config)[0]:
        if config.name in ready and not config.trusted:
            trusted.trust(config, workspace=workspace.root, origin="`gpu up`")


def vllm_key(store: InstanceStore, name: str) -> str:
    """The vLLM API key shared by the instances of ``name``: read from its 0600 file, made on first use."""
    path = store.key_path(name)
    if path.exists():
        return read_key_file(path, teacher=name)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    key = secrets.token_urlsafe(32)
    write_atomically(path, key.encode() + b"\n", mode=0o600)
    return key


def _managed(workspace: Workspace, store: InstanceStore, entry: Mapping[str, Any]) -> bool:
    """An entry written here: a vllm teacher whose key file lies in the GPU key folder."""
    key_file = entry.get("api_key_file")
    if entry.get("preset") != "vllm" or not isinstance(key_file, str):
        return False
    return (workspace.root / key_file).resolve().parent == store.key_path("x").parent.resolve()
