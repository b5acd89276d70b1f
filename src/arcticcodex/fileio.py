"""Files written so that readers see the old content or the new, never half; files read only if plain.

Every file ArcticCodex writes in place goes through :class:`AtomicFile` — a temporary file beside the
destination, flushed to disk and renamed over it, or removed if anything fails — directly (a writer
whose file outlives one block, like a dataset's record files), through :func:`atomic_write` (a
``with`` block that streams) or :func:`write_atomically` (bytes in hand).  Two writers keep their own
because their rule differs: a key or a new ``arcticcodex.toml`` must never replace an existing file,
so they hard-link the temporary into place (``link`` fails where ``rename`` would clobber), and the
agent's sandbox writes through folder descriptors so that no link in the path is ever followed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

from .errors import UnsafeFileError

__all__ = [
    "NEW_FILE_MODE",
    "AtomicFile",
    "FileIdentity",
    "atomic_write",
    "file_identity",
    "make_private",
    "open_plain_file",
    "read_plain_file",
    "replace_directory",
    "restore_directory",
    "write_atomically",
]

FileIdentity = tuple[int, int]  # (st_dev, st_ino): which file a path named when it was looked at
NEW_FILE_MODE = 0o666  # what open() gives a new file: the umask decides who may read it


def file_identity(status: os.stat_result) -> FileIdentity:
    return status.st_dev, status.st_ino


class AtomicFile:
    """A file written under a temporary name beside ``path``, put in place by :meth:`commit` only.

    The temporary file is created new (``O_EXCL``) with ``mode`` (before the umask), so a secret is
    never readable by others, not even briefly; by default it is ``.NAME.<random>.tmp``, unique, so two
    writers of one file never share it.  ``temporary`` names it instead where a reader looks for it
    (a dataset folder being written has ``train.jsonl.partial``).  :meth:`commit` flushes and fsyncs
    it and renames it over ``path``; :meth:`discard` removes it, and so does a commit that fails.
    """

    def __init__(self, path: Path, *, mode: int = 0o644, temporary: Path | None = None) -> None:
        self.path = path
        self.temporary = temporary or path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        self.handle: BinaryIO = os.fdopen(os.open(self.temporary, flags, mode), "wb")

    def commit(self) -> None:
        """Flush the file to disk and rename it over ``path`` (the temporary file is gone either way)."""
        try:
            if self.handle.closed:  # a writer that closes what it is given (as some libraries do)
                _fsync_path(self.temporary)
            else:
                self.handle.flush()
                os.fsync(self.handle.fileno())
                self.handle.close()
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and remove the temporary file; ``path`` is left as it was."""
        with contextlib.suppress(OSError):  # a close that fails to flush: the file is removed all the same
            self.handle.close()
        self.temporary.unlink(missing_ok=True)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: Path, *, mode: int = 0o644, temporary: Path | None = None) -> Iterator[BinaryIO]:
    """A handle to stream ``path``'s new content into; it replaces ``path`` when the block ends.

    An exception in the block — ``KeyboardInterrupt`` included — removes the temporary file and leaves
    ``path`` as it was (see :class:`AtomicFile`, which takes the same arguments).
    """
    file = AtomicFile(path, mode=mode, temporary=temporary)
    try:
        yield file.handle
    except BaseException:
        file.discard()
        raise
    file.commit()


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (see :class:`AtomicFile`)."""
    with atomic_write(path, mode=mode) as handle:
        handle.write(data)


def make_private(path: Path) -> None:
    """Take away every group and other permission of ``path`` if it has any (a missing path is fine).

    A file that belongs to another user cannot be changed; it is left as it is rather than refused.
    A symbolic link is left alone (``chmod`` would change what it points to).
    """
    with contextlib.suppress(FileNotFoundError, PermissionError):
        status = os.lstat(path)
        if status.st_mode & 0o077 and not stat.S_ISLNK(status.st_mode):
            os.chmod(path, stat.S_IMODE(status.st_mode) & ~0o077)


def replace_directory(staging: Path, target: Path) -> None:
    """Put the complete folder ``staging`` where ``target`` is, replacing what was there.

    The old folder is moved aside first and deleted last; :func:`restore_directory` undoes a crash
    between the two moves, so ``target`` holds the old content or the new, never a mix.
    """
    aside = _aside(target)
    restore_directory(target)
    if target.exists():
        target.rename(aside)
    staging.rename(target)
    if aside.exists():
        shutil.rmtree(aside)


def restore_directory(target: Path) -> None:
    """Finish or undo a :func:`replace_directory` that a crash interrupted."""
    aside = _aside(target)
    if aside.exists():
        if target.exists():
            shutil.rmtree(aside)
        else:
            aside.rename(target)


def _aside(target: Path) -> Path:
    return target.with_name(f".{target.name}.replaced")


@contextmanager
def open_plain_file(
    path: Path, *, what: str = "file", follow_symlinks: bool = False, identity: FileIdentity | None = None
) -> Iterator[BinaryIO]:
    """Open ``path`` for reading only if it is a plain file, not a symlink, FIFO, socket or device.

    For files that arrive in folders someone else made (a dataset, a cloned workspace): the last path
    component is opened with ``O_NOFOLLOW`` (a symlink to ``/dev/zero`` or to ``~/.ssh/id_ed25519`` is
    refused, not followed) and ``O_NONBLOCK`` (opening a FIFO would otherwise wait forever for a
    writer), and the open descriptor is checked to be a regular file before a byte is read.
    ``identity`` — (device, inode) as ``lstat`` saw the file when it was found — closes the rest: a
    folder on the path swapped for a symlink since then leads to another file, which is refused.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:  # a configuration file may be a link (dotfiles); what it leads to is checked all the same
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            _refuse(
                path,
                what,
                "is a symbolic link; it is not followed (it could point anywhere): replace it with the file itself",
            )
        _refuse(path, what, f"cannot be opened: {exc.strerror}")
    try:
        status = os.fstat(fd)
        mode = status.st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
            _refuse(path, what, f"is {kind}, not a plain file; it was not read")
        if identity is not None and (status.st_dev, status.st_ino) != identity:
            _refuse(
                path,
                what,
                "is no longer the file that was found: it, or a folder on its path, was replaced since; "
                "it was not read",
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_plain_file(path: Path, *, limit: int, what: str = "file", follow_symlinks: bool = False) -> bytes:
    """The bytes of the plain file ``path`` (see :func:`open_plain_file`), refused past ``limit`` bytes.

    The size is checked on the open descriptor and the read itself is bounded, so a file that grows
    while it is read still cannot make this hold more than ``limit + 1`` bytes.
    """
    with open_plain_file(path, what=what, follow_symlinks=follow_symlinks) as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(limit + 1) if size <= limit else b""
        if size > limit or len(data) > limit:
            _refuse(path, what, f"is {max(size, len(data)):,} bytes, over the {limit:,}-byte limit; it was not read")
        return data


def _refuse(path: Path, what: str, reason: str) -> NoReturn:
    raise UnsafeFileError(f"{what} {path} {reason}", reason=reason)
