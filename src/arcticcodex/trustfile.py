"""A list of trust decisions kept in the user's config folder, read and changed under a lock.

Trusted signing keys (:mod:`arcticcodex.provenance.trust`) and trusted teacher entries
(:mod:`arcticcodex.teachers.trust`) are both such lists.  They live where no workspace, cloned
repository or dataset folder can write or point: the folder is created 0700, the file is written
0600 through a temporary file and a rename, and one writer at a time holds an exclusive lock, so two
commands recording trust at once cannot lose an entry.  The file may be a symbolic link (dotfile
managers keep ``~/.config`` that way): it is followed, being the user's own folder, and written through.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnsafeFileError
from .fileio import read_plain_file, write_atomically

__all__ = ["TrustFile"]

MAX_TRUST_FILE_BYTES = 4 << 20


class TrustFile:
    """``{"version": 1, "<items>": [...]}`` at ``path``; entries are JSON objects checked by the owner."""

    def __init__(self, path: Path, items: str, *, what: str, fix: str) -> None:
        self.path = path
        self.items = items
        self.what = what
        self.fix = fix

    def read(self) -> list[dict[str, Any]]:
        """The entries, in the order they were added; [] when the file does not exist yet."""
        fix = f"repair or delete {self.path} ({self.fix})"
        try:
            data = read_plain_file(self.path, limit=MAX_TRUST_FILE_BYTES, what=self.what, follow_symlinks=True)
        except FileNotFoundError:
            return []
        except UnsafeFileError as exc:
            # from None: the UnsafeFileError adds nothing the message does not already say
            raise ConfigError(f"{exc}; {fix}") from None
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            # from None: the UnicodeDecodeError/ValueError/RecursionError adds nothing the message does not already say
            raise ConfigError(f"{self.what} {self.path} is not valid JSON; {fix}") from None
        entries = raw.get(self.items) if isinstance(raw, dict) else None
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise ConfigError(f"{self.what} {self.path} has no {self.items!r} list of objects; {fix}")
        return entries

    def update(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        """Read, change and write the entries while holding the lock."""
        with self._locked():
            entries = change(self.read())
            text = json.dumps({"version": 1, self.items: entries}, indent=2, ensure_ascii=False) + "\n"
            target = self.path.resolve() if self.path.is_symlink() else self.path  # a dotfile manager's link stays
            write_atomically(target, text.encode("utf-8"), mode=0o600)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
