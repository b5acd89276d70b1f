"""Which files an import reads: the paths named, and what lies inside the folders named — only inside.

Importing a folder must never read something the user did not name, because whatever is imported
becomes searchable, quotable by the agent and, through distillation, part of a dataset.  So the walk:

* never leaves the folder: a symbolic link is followed only to a *file* whose real location is inside
  the folder (and not in a place the walk would skip); a link to anything outside it, a broken link,
  and a link to a folder are skipped and reported (a folder inside is imported where it really is,
  so linking to it adds nothing, and not descending through links makes cycles impossible);
* never opens a special file: FIFOs (opening one waits forever for a writer), sockets and devices are
  skipped and reported — the walk looks at entries with ``lstat`` only;
* skips hidden files and folders (names starting with a dot) unless ``include_hidden``, tool folders
  (``.git``, ``node_modules``, ``__pycache__``, ``.venv`` …) always, and never imports the workspace's
  own data folder (database, keys, runs), any other workspace's data folder (one holding
  ``arcticcodex.db``) or a dataset folder (one holding a dataset ``manifest.json``, or a dataset being
  written), which would otherwise come in when a parent folder is imported.

A path named *explicitly* is the user's choice: a named symlink is followed (to a file or a folder,
wherever it points — as ``cat`` would), a named hidden file or dataset folder is imported.  Even
then, nothing inside the workspace's data folder is imported, and a special file is never opened.
Each skipped entry is reported once, with the reason; files with a suffix the vault cannot import
are left out without a word, as before.  The files themselves are later opened with ``O_NOFOLLOW``
and ``O_NONBLOCK`` (:func:`~arcticcodex.fileio.open_plain_file`) and must still be the file the walk
saw (same device and inode), so swapping a file, or a folder on its path, for a symlink or a FIFO
after the walk is refused too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from ..config import DEFAULT_DATA_DIR
from ..errors import UserError
from ..fileio import FileIdentity, file_identity, open_plain_file
from ..layout import FORMAT, MANIFEST_FILE, TRAIN_FILE
from .loaders import SUPPORTED_SUFFIXES

__all__ = ["Discovery", "discover"]

TOOL_DIRECTORIES = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox", ".mypy_cache"})
WORKSPACE_DATABASE = "arcticcodex.db"  # workspace.DATABASE_NAME: a folder holding it is a workspace's data folder
_MANIFEST_SNIFF_BYTES = 64 * 1024
_HIDDEN = (
    "hidden (its name starts with a dot); hidden files and folders are imported with include_hidden "
    "(`arcticcodex vault import PATH --include-hidden`)"
)


@dataclass
class Discovery:
    """The files to import (real paths, each once, in path order) and what was skipped, with why.

    ``identities`` holds each file's (device, inode) as the walk saw it: the import opens a file only
    if it is still that file (a folder on its path swapped for a link since then is refused).
    """

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    identities: dict[Path, FileIdentity] = field(default_factory=dict)


def discover(
    paths: Iterable[Path | str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    include_hidden: bool = False,
    data_dir: Path | None = None,
) -> Discovery:
    """Walk ``paths`` as the module docstring says; raise ``UserError`` for a path that does not exist.

    ``include``/``exclude`` are glob patterns matched against the path relative to the folder given
    (``docs/*.md``, ``**/drafts/*``) and against the file name.  ``data_dir`` is the workspace's data
    folder, never imported.
    """
    walker = _Walker(include, exclude, include_hidden, data_dir)
    for given in paths:
        walker.named(Path(given))
    return Discovery(list(walker.found), walker.skipped, dict(walker.found))


class _Walker:
    def __init__(
        self, include: Sequence[str], exclude: Sequence[str], include_hidden: bool, data_dir: Path | None
    ) -> None:
        self.include, self.exclude, self.include_hidden = include, exclude, include_hidden
        self.data_dir = Path(os.path.realpath(data_dir)) if data_dir is not None else None
        self.found: dict[Path, FileIdentity] = {}  # real paths, in order, with their identities
        self.skipped: list[tuple[str, str]] = []

    def skip(self, shown: Path, reason: str) -> None:
        self.skipped.append((str(shown), reason))

    def named(self, given: Path) -> None:
        if not os.path.lexists(given):
            raise UserError(f"{given} does not exist; check the path (it is relative to {Path.cwd()})")
        try:
            real = given.resolve(strict=True)
            status = real.stat()
        except (OSError, RuntimeError) as exc:
            self.skip(given, _unresolvable(given, exc))
            return
        mode = status.st_mode
        if self.data_dir is not None and real.is_relative_to(self.data_dir):
            self.skip(given, f"is inside the workspace's data folder {self.data_dir} (its database, keys and runs)")
        elif stat.S_ISDIR(mode):
            if (real / WORKSPACE_DATABASE).exists():
                self.skip(given, f"is a workspace's data folder (it holds {WORKSPACE_DATABASE}); it is never imported")
            else:
                self.walk(real, given)
        elif stat.S_ISREG(mode):
            self.found.setdefault(real, file_identity(status))
        else:
            self.skip(given, _special(mode))

    def walk(self, root: Path, shown_root: Path) -> None:
        """Collect the files under the real folder ``root`` (named ``shown_root`` in reports)."""
        files: list[tuple[tuple[str, ...], Path, FileIdentity]] = []
        visited: set[tuple[int, int]] = set()
        pending: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
        while pending:
            folder, relative = pending.pop()
            try:
                info = folder.stat()
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError as exc:
                self.skip(shown_root.joinpath(*relative), f"cannot be read ({exc.strerror})")
                continue
            if (info.st_dev, info.st_ino) in visited:  # a bind mount looping back: walked already
                continue
            visited.add((info.st_dev, info.st_ino))
            for entry in entries:
                parts = (*relative, entry.name)
                shown = shown_root.joinpath(*parts)
                try:
                    status = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self.skip(shown, f"cannot be read ({exc.strerror})")
                    continue
                mode = status.st_mode
                if entry.name.startswith(".") and not self.include_hidden:
                    if stat.S_ISDIR(mode) or self.wanted(parts):
                        self.skip(shown, _HIDDEN)
                elif stat.S_ISLNK(mode):
                    found = self.link_target(Path(entry.path), root, shown)
                    if found is not None and self.wanted(parts):
                        files.append((parts, *found))
                elif stat.S_ISDIR(mode):
                    reason = self.skipped_folder(Path(entry.path))
                    if reason is None:
                        pending.append((Path(entry.path), parts))
                    else:
                        self.skip(shown, reason)
                elif stat.S_ISREG(mode):
                    if self.wanted(parts):
                        files.append((parts, Path(entry.path), file_identity(status)))
                else:
                    self.skip(shown, _special(mode))
        for _, path, identity in sorted(files):
            self.found.setdefault(path, identity)

    def link_target(self, link: Path, root: Path, shown: Path) -> tuple[Path, FileIdentity] | None:
        """The real file a symlink inside ``root`` leads to, if it may be imported; else report why not."""
        try:
            target = link.resolve(strict=True)
            status = target.stat()
        except (OSError, RuntimeError) as exc:
            self.skip(shown, _unresolvable(link, exc))
            return None
        mode = status.st_mode
        if not target.is_relative_to(root):
            self.skip(
                shown,
                f"is a symbolic link to {target}, outside {root}; links are only followed inside the folder "
                f"being imported (import {target} by name if you mean it)",
            )
            return None
        if stat.S_ISDIR(mode):
            self.skip(
                shown,
                f"is a symbolic link to the folder {target}; links to folders are not walked (a folder "
                "inside is imported where it is, once)",
            )
            return None
        if not stat.S_ISREG(mode):
            self.skip(shown, f"is a symbolic link to {target}, which {_special(mode)}")
            return None
        for ancestor in (target, *target.parents):
            if ancestor == root:
                return target, file_identity(status)
            if ancestor.name.startswith(".") and not self.include_hidden:
                self.skip(
                    shown, f"is a symbolic link to {target}, in a hidden place; it is imported with include_hidden"
                )
                return None
            reason = self.skipped_folder(ancestor) if ancestor != target else None
            if reason is not None:
                self.skip(shown, f"is a symbolic link to {target}, inside a folder that {reason}")
                return None
        return target, file_identity(status)  # pragma: no cover - the target is inside root: the loop returns

    def skipped_folder(self, folder: Path) -> str | None:
        if folder.name in TOOL_DIRECTORIES:
            return "is a tool folder (version control, packages, caches); it holds no documents"
        return self.protected(folder)

    def protected(self, folder: Path) -> str | None:
        """Why this real folder must never be imported from a parent folder, or None."""
        if self.data_dir is not None and folder == self.data_dir:
            return "is this workspace's data folder (its database, keys and runs); it is never imported"
        if folder.name == DEFAULT_DATA_DIR or (folder / WORKSPACE_DATABASE).exists():
            return (
                f"is a workspace's data folder (named {DEFAULT_DATA_DIR} or holding {WORKSPACE_DATABASE}); "
                "it is never imported"
            )
        if _is_dataset(folder):
            return (
                "is a dataset folder (it holds a dataset manifest.json); datasets are not imported with the "
                "folder around them — name the folder or a file in it to import it on purpose"
            )
        return None

    def wanted(self, parts: tuple[str, ...]) -> bool:
        if Path(parts[-1]).suffix.lower() not in SUPPORTED_SUFFIXES:
            return False
        text = "/".join(parts)
        if self.include and not any(_matches(text, pattern) for pattern in self.include):
            return False
        return not any(_matches(text, pattern) for pattern in self.exclude)


def _matches(relative: str, pattern: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return fnmatchcase(relative, pattern) or fnmatchcase(name, pattern) or fnmatchcase(relative, pattern.lstrip("*/"))


def _is_dataset(folder: Path) -> bool:
    """A folder ``DatasetWriter`` wrote (its manifest names the dataset format) or is writing."""

    if os.path.lexists(folder / f"{TRAIN_FILE}.partial"):
        return True
    manifest = folder / MANIFEST_FILE
    try:
        if not stat.S_ISREG(os.lstat(manifest).st_mode):
            return False
        with open_plain_file(manifest, what="dataset manifest") as handle:
            head = handle.read(_MANIFEST_SNIFF_BYTES)
    except (OSError, UserError):
        return False
    return FORMAT.split("/")[0].encode() in head


def _unresolvable(path: Path, error: Exception) -> str:
    if path.is_symlink():
        return f"is a symbolic link to {os.readlink(path)}, which does not exist or loops back on itself"
    return f"cannot be read ({getattr(error, 'strerror', None) or error})"


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    else:
        kind = "not a regular file"
    return f"is {kind}, not a regular file; it was not opened"
