"""Files an agent's tools may touch: everything inside one root folder, nothing outside it.

What the original's "sandbox" got wrong (it read any absolute path), and the rules here instead:

* a path is checked **before** resolving: relative, no ``..`` part, no NUL, not empty, not too long —
  so a request that *means* to leave is refused for what it says, whatever the disk holds;
* and **after** resolving every symlink: the real path must still lie under the real root — so a
  symlink inside the root that points out (``notes -> /etc``) is refused too;
* files are opened with ``O_NOFOLLOW`` on the last component, so a symlink swapped in between the
  check and the open is refused rather than followed;
* sizes are bounded (a read, a write, a listing), and writes go to a temporary file that is renamed
  into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import SandboxError
from ..fileio import write_atomically

MAX_PATH_CHARS = 1024


@dataclass(frozen=True)
class Sandbox:
    """A root folder and the limits of what tools may read, write and list in it."""

    root: Path
    max_read_bytes: int = 1_000_000
    max_write_bytes: int = 1_000_000
    max_entries: int = 1_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve(strict=True))

    def resolve(self, requested: str) -> Path:
        """The real path of ``requested`` (relative to the root), or SandboxError naming the rule it breaks."""
        if not isinstance(requested, str) or not requested.strip():
            raise SandboxError("a path is required, relative to the tool root (e.g. notes/todo.md)")
        if "\0" in requested or len(requested) > MAX_PATH_CHARS:
            raise SandboxError(
                f"{requested[:80]!r} is not a usable path (NUL byte, or over {MAX_PATH_CHARS} characters)"
            )
        pure = PurePosixPath(requested.replace("\\", "/"))
        if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
            raise SandboxError(f"{requested!r} is absolute; tools only take paths relative to the tool root")
        if ".." in pure.parts:
            raise SandboxError(f"{requested!r} goes up with '..'; tools only reach inside the tool root")
        real = (self.root / pure).resolve(strict=False)
        if real != self.root and not real.is_relative_to(self.root):
            raise SandboxError(f"{requested!r} leads outside the tool root through a symbolic link; refused")
        return real

    def read_text(self, requested: str) -> str:
        path = self.resolve(requested)
        if not path.is_file():
            raise SandboxError(f"{requested!r} is not a file in the tool root")
        size = path.stat().st_size
        if size > self.max_read_bytes:
            raise SandboxError(f"{requested!r} is {size:,} bytes; tools read at most {self.max_read_bytes:,}")
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(self.max_read_bytes + 1)
        return data.decode("utf-8", errors="replace")

    def list(self, requested: str = ".") -> list[str]:
        """Entries of a folder, relative to the root, folders ending in ``/`` (at most ``max_entries``)."""
        path = self.resolve(requested)
        if not path.is_dir():
            raise SandboxError(f"{requested!r} is not a folder in the tool root")
        entries: list[str] = []
        for entry in sorted(path.iterdir()):
            if len(entries) >= self.max_entries:
                raise SandboxError(f"{requested!r} holds more than {self.max_entries:,} entries; list a subfolder")
            name = entry.relative_to(self.root).as_posix()
            entries.append(name + "/" if entry.is_dir() and not entry.is_symlink() else name)
        return entries

    def write_text(self, requested: str, text: str) -> Path:
        data = text.encode("utf-8")
        if len(data) > self.max_write_bytes:
            raise SandboxError(f"{len(data):,} bytes is over the write limit of {self.max_write_bytes:,}")
        path = self.resolve(requested)
        if path.is_symlink() or path.is_dir():
            raise SandboxError(f"{requested!r} is a folder or a link; tools write plain files only")
        if not path.parent.is_dir():
            raise SandboxError(f"the folder of {requested!r} does not exist in the tool root")
        write_atomically(path, data)
        return path
