"""Which teacher entries the user trusts to receive their prompts and their API keys.

The workspace is found by walking upwards, so a cloned repository's ``arcticcodex.toml`` is read
as soon as a command runs inside it.  Such a file could name ``api_key_env = "GITHUB_TOKEN"`` (or an
``api_key_file`` anywhere) and a ``base_url`` of its choosing, and the next ``teachers ping``,
``refine`` or ``distill`` would send that secret — and the vault's evidence — there.  So, as direnv
does with ``.envrc``, an entry is used only once the user trusted *that exact entry*:

* its fingerprint is the SHA-256 of what decides where requests and secrets go: the name, the base
  URL and replicas, and the key source (the variable's name, or the key file's resolved path);
  changing the model, roles, prices or timeouts does not need new trust, changing any of those does;
* the CLI's own config-writing commands (``teachers add``, ``gpu up``) record trust as they write;
  a hand-edited or cloned entry waits for ``arcticcodex teachers trust NAME``;
* the list lives in the user's config folder, outside every workspace (``trusted-teachers.json``).

The offline local judge sends nothing anywhere and needs no trust.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import user_config_dir
from ..trustfile import TrustFile

if TYPE_CHECKING:
    from .entries import TeacherConfig

__all__ = ["TRUSTED_TEACHERS_FILE", "TrustedTeachers", "entry_fingerprint", "key_source"]

TRUSTED_TEACHERS_FILE = "trusted-teachers.json"


def key_source(config: TeacherConfig) -> str:
    """Where the entry's key comes from, in words: ``$DEEPSEEK_API_KEY``, ``file /path``, or ``no key``."""
    if config.api_key_file:
        return f"file {config.api_key_file}"
    if config.api_key_env:
        return f"${config.api_key_env}"
    return "no key"


def entry_fingerprint(config: TeacherConfig) -> str:
    """SHA-256 of what decides where an entry's requests and secrets go (see the module docstring)."""
    decisive = {
        "name": config.name,
        "base_url": config.base_url,
        "replicas": list(config.replicas),
        "api_key_env": config.api_key_env,
        "api_key_file": config.api_key_file,
    }
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode("utf-8")).hexdigest()


class TrustedTeachers:
    """The user's trusted teacher entries: ``TrustedTeachers.for_user()``, or ``TrustedTeachers(folder)``."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / TRUSTED_TEACHERS_FILE
        self._file = TrustFile(
            self.path, "entries", what="the trusted-teachers list", fix="then `arcticcodex teachers trust` again"
        )

    @classmethod
    def for_user(cls, environ: Mapping[str, str] | None = None) -> TrustedTeachers:
        return cls(user_config_dir(environ))

    def __repr__(self) -> str:
        return f"TrustedTeachers({str(self.folder)!r})"

    def fingerprints(self) -> frozenset[str]:
        return frozenset(str(entry.get("fingerprint")) for entry in self._file.read())

    def is_trusted(self, config: TeacherConfig) -> bool:
        return config.preset == "local" or entry_fingerprint(config) in self.fingerprints()

    def trust(self, config: TeacherConfig, *, workspace: Path, origin: str) -> dict[str, Any]:
        """Record trust in ``config`` exactly as it is now; returns the entry written."""
        fingerprint = entry_fingerprint(config)
        entry = {
            "fingerprint": fingerprint,
            "name": config.name,
            "base_url": config.base_url,
            "replicas": list(config.replicas),
            "key_source": key_source(config),
            "workspace": str(workspace),
            "origin": origin,
            "trusted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self._file.update(lambda entries: [e for e in entries if e.get("fingerprint") != fingerprint] + [entry])
        return entry

    def untrust(self, config: TeacherConfig) -> bool:
        """Forget the trust in ``config``; False when it was not trusted."""
        fingerprint = entry_fingerprint(config)
        found: list[bool] = []

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [e for e in entries if e.get("fingerprint") != fingerprint]
            found.append(len(kept) != len(entries))
            return kept

        self._file.update(change)
        return found[0]
