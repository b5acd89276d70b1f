"""Writing files so that readers see the old content or the new, never half of either."""

from __future__ import annotations

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
    "FileIdentity",
    "file_identity",
    "open_plain_file",
    "read_plain_file",
    "replace_directory",
    "restore_directory",
    "write_atomically",
]

FileIdentity = tuple[int, int]  # (st_dev, st_ino): which file a path named when it was looked at


def file_identity(status: os.stat_result) -> FileIdentity:
    return status.st_dev, status.st_ino


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to a unique temporary file beside ``path``, fsync it, and rename it over ``path``.

    The temporary file is removed if anything fails, so an interrupted write leaves no debris.  It is
    created with ``mode`` (before the umask), so a secret is never readable by others, not even briefly.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
