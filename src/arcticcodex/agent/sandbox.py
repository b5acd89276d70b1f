"""Files an agent's tools may touch: everything inside one root folder, nothing outside it.

The rules, each closing a way out that a check on the path string alone leaves open:

* a path is checked **before** anything is opened: relative, no ``..`` part, no NUL or lone
  surrogate, not empty, not too long — so a request that *means* to leave is refused for what it
  says, whatever the disk holds;
* it is then walked **one component at a time from a descriptor of the root**, openat-style: each
  folder is opened with ``O_DIRECTORY | O_NOFOLLOW`` relative to the descriptor of the folder
  before it, and the last component with ``O_NOFOLLOW``.  The kernel never follows a symlink on
  the way, so swapping a folder for a symlink to ``/etc`` between two calls — or in the middle of
  one — cannot lead outside: the open fails, or it opens the real folder;
* a symlink met on the way is read (``readlink`` relative to its folder) and its target walked the
  same way, inside the root: a link that stays inside works (``latest -> runs/7``), one that
  leads out (``notes -> /etc``, ``up -> ../..``) is refused, and so is one swapped in mid-walk;
* a file with more than one name (``st_nlink > 1``) is not read: its other name may lie outside
  the root (a hard link to ``~/.ssh/id_ed25519`` made inside the root reads the key otherwise);
* writes create a temporary file *in the final folder through its descriptor* and rename it over
  the name with ``os.replace(..., src_dir_fd=, dst_dir_fd=)``: a reader never sees half a file, a
  symlink or hard link at the name is replaced rather than written through, and no path string
  that could be swapped is used after the walk;
* sizes are bounded (a read, a write, a listing), and every failure is a :class:`SandboxError`
  naming the path, never an ``OSError`` escaping into the agent loop.

What this does not stop: someone who can write inside the root can *move* a folder the walk is in
to somewhere else they can write; a write then lands in that moved folder.  Nothing outside the
root that they could not already write is reached.
"""

from __future__ import annotations

import builtins
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import SandboxError

MAX_PATH_CHARS = 1024
MAX_LINKS = 40  # symlinks followed in one walk, as the kernel's own limit
MAX_DEPTH = 64  # folders deep: each one holds a descriptor during the walk

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # NONBLOCK: a FIFO won't hang
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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
        with self._entry(requested, missing=f"{requested!r} does not exist in the tool root") as (_, name, real):
            return self.root.joinpath(*real, name)

    def read_text(self, requested: str) -> str:
        """The text of a plain file (UTF-8, undecodable bytes replaced), opened without following any link."""
        not_a_file = f"{requested!r} is not a file in the tool root"
        with self._entry(requested, missing=not_a_file) as (folder, name, _):
            if not name:
                raise SandboxError(not_a_file)
            try:
                descriptor = os.open(name, _FILE, dir_fd=folder)
            except FileNotFoundError:
                # from None: the FileNotFoundError adds nothing the message does not already say
                raise SandboxError(not_a_file) from None
            except OSError as error:
                # from None: the OSError adds nothing the message does not already say
                raise _open_failed(requested, error) from None
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise SandboxError(not_a_file)
            if info.st_nlink > 1:
                raise SandboxError(
                    f"{requested!r} is a hard link (one file with {info.st_nlink} names); tools do not read "
                    "hard-linked files, since another name may lie outside the tool root — copy the file instead"
                )
            if info.st_size > self.max_read_bytes:
                raise SandboxError(
                    f"{requested!r} is {info.st_size:,} bytes; tools read at most {self.max_read_bytes:,}"
                )
            data = handle.read(self.max_read_bytes + 1)
        if len(data) > self.max_read_bytes:  # it grew after the check
            raise SandboxError(f"{requested!r} is over {self.max_read_bytes:,} bytes; tools read no more")
        return data.decode("utf-8", errors="replace")

    def list(self, requested: str = ".") -> list[str]:
        """Entries of a folder, relative to the root, folders ending in ``/`` (at most ``max_entries``).

        Names that are not UTF-8 are shown with backslash escapes.
        """
        with self._folder(requested) as (folder, real):
            entries: list[str] = []
            with os.scandir(folder) as scan:
                for entry in scan:
                    if len(entries) >= self.max_entries:
                        raise SandboxError(
                            f"{requested!r} holds more than {self.max_entries:,} entries; list a subfolder"
                        )
                    name = "/".join([*real, _printable(entry.name)])
                    entries.append(name + "/" if entry.is_dir(follow_symlinks=False) else name)
        return sorted(entries)

    def write_text(self, requested: str, text: str) -> Path:
        """Replace (or create) a plain file with ``text``, atomically; returns its real path."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as error:
            # from None: the UnicodeEncodeError adds nothing the message does not already say
            raise SandboxError(
                f"the text for {requested!r} holds a lone surrogate U+{ord(text[error.start]):04X} at index "
                f"{error.start:,}, which UTF-8 cannot store; replace it with U+FFFD and write again"
            ) from None
        if len(data) > self.max_write_bytes:
            raise SandboxError(f"{len(data):,} bytes is over the write limit of {self.max_write_bytes:,}")
        missing = f"the folder of {requested!r} does not exist in the tool root"
        with self._entry(requested, missing=missing) as (folder, name, real):
            not_plain = f"{requested!r} is a folder or a link; tools write plain files only"
            if not name:
                raise SandboxError(not_plain)
            try:
                info: os.stat_result | None = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except FileNotFoundError:
                info = None
            except OSError as error:
                # from None: the OSError adds nothing the message does not already say
                raise _open_failed(requested, error) from None
            if info is not None and not stat.S_ISREG(info.st_mode):
                raise SandboxError(not_plain)
            mode = stat.S_IMODE(info.st_mode) & 0o777 if info is not None else 0o644
            _replace(folder, name, data, mode, requested)
            return self.root.joinpath(*real, name)

    # -- the walk -----------------------------------------------------------------------------------

    def _parts(self, requested: str) -> builtins.list[str]:
        """The components of ``requested``, checked for what they say before anything is opened."""
        if not isinstance(requested, str) or not requested.strip():
            raise SandboxError("a path is required, relative to the tool root (e.g. notes/todo.md)")
        if "\0" in requested or len(requested) > MAX_PATH_CHARS or not _encodable(requested):
            raise SandboxError(
                f"{requested[:80]!r} is not a usable path (a NUL byte or a lone surrogate, "
                f"or over {MAX_PATH_CHARS} characters)"
            )
        pure = PurePosixPath(requested.replace("\\", "/"))
        if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
            raise SandboxError(f"{requested!r} is absolute; tools only take paths relative to the tool root")
        if ".." in pure.parts:
            raise SandboxError(f"{requested!r} goes up with '..'; tools only reach inside the tool root")
        return list(pure.parts)

    @contextmanager
    def _folder(self, requested: str) -> Iterator[tuple[int, builtins.list[str]]]:
        """A descriptor of the folder ``requested`` names (the walk followed links inside the root only)."""
        parts = self._parts(requested)
        walk = _Walk(self, requested, missing=f"{requested!r} is not a folder in the tool root")
        try:
            walk.run(parts, last_is_folder=True)
            yield walk.folder, walk.names
        finally:
            walk.close()

    @contextmanager
    def _entry(self, requested: str, *, missing: str) -> Iterator[tuple[int, str, builtins.list[str]]]:
        """(descriptor of the real parent folder, last name, real folder names); ``""`` when it is a folder."""
        parts = self._parts(requested)
        walk = _Walk(self, requested, missing=missing)
        try:
            name = walk.run(parts, last_is_folder=False)
            yield walk.folder, name, walk.names
        finally:
            walk.close()


class _Walk:
    """One walk from the root's descriptor: a stack of open folder descriptors and their real names."""

    def __init__(self, sandbox: Sandbox, requested: str, *, missing: str) -> None:
        self.root = sandbox.root
        self.requested = requested
        self.missing = missing
        self.stack: list[int] = []
        self.names: list[str] = []
        self.links = 0
        try:
            self.stack.append(os.open(self.root, _FOLDER))
        except OSError as error:
            # from None: the OSError adds nothing the message does not already say
            raise SandboxError(f"the tool root {self.root} cannot be opened ({error.strerror})") from None

    @property
    def folder(self) -> int:
        return self.stack[-1]

    def close(self) -> None:
        for descriptor in self.stack:
            os.close(descriptor)
        self.stack.clear()

    def run(self, parts: list[str], *, last_is_folder: bool) -> str:
        """Walk ``parts``; return the last name (not a symlink, maybe absent), or ``""`` if it is a folder."""
        pending = list(parts)
        while pending:
            name = pending.pop(0)
            if name in ("", "."):
                continue
            if name == "..":  # only ever from a link's target: the requested path has none
                self._up()
                continue
            if not pending and not last_is_folder:
                try:
                    info = os.stat(name, dir_fd=self.folder, follow_symlinks=False)
                except FileNotFoundError:
                    return name
                except OSError as error:
                    # from None: the OSError adds nothing the message does not already say
                    raise _open_failed(self.requested, error) from None
                if stat.S_ISLNK(info.st_mode):
                    try:
                        pending[:0] = self._link(name)
                    except _NotALinkError:  # swapped for something else meanwhile: look again, within the budget
                        self._count_link()
                        pending.insert(0, name)
                    continue
                if stat.S_ISDIR(info.st_mode):
                    self._enter(name)  # a folder where a file was asked: say so as a folder
                    return ""
                return name
            self._enter(name, pending)
        return ""

    def _enter(self, name: str, pending: list[str] | None = None) -> None:
        """Open the folder ``name`` without following a link; a link is resolved into ``pending`` instead."""
        try:
            descriptor = os.open(name, _FOLDER, dir_fd=self.folder)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT) or pending is None:
                # from None: the OSError adds nothing the message does not already say
                raise _open_failed(self.requested, error) from None
            try:
                target = self._link(name)
            except _NotALinkError:
                if self._is_folder(name):  # it was swapped back meanwhile: walk it again, within the budget
                    self._count_link()
                    pending.insert(0, name)
                    return
                # from None: _NotALinkError is an internal signal, not a failure worth showing
                raise SandboxError(self.missing) from None
            pending[:0] = target
            return
        if len(self.stack) > MAX_DEPTH:
            os.close(descriptor)
            raise SandboxError(f"{self.requested!r} lies more than {MAX_DEPTH} folders deep; tools go no deeper")
        self.stack.append(descriptor)
        self.names.append(name)

    def _link(self, name: str) -> list[str]:
        """The components of the link ``name``'s target, walked from where it points (root or here)."""
        try:
            target = os.readlink(name, dir_fd=self.folder)
        except FileNotFoundError:
            # from None: the FileNotFoundError adds nothing the message does not already say
            raise SandboxError(self.missing) from None
        except OSError as error:
            if error.errno == errno.EINVAL:
                # from None: _NotALinkError is an internal signal, not a failure worth showing
                raise _NotALinkError from None
            # from None: the OSError adds nothing the message does not already say
            raise _open_failed(self.requested, error) from None
        self._count_link()
        path = PurePosixPath(target)
        if not path.is_absolute():
            return list(path.parts)
        if not path.is_relative_to(self.root):
            raise self._outside()
        while len(self.stack) > 1:  # an absolute target inside the root: walk it from the root
            self._up()
        return list(path.relative_to(self.root).parts)

    def _count_link(self) -> None:
        self.links += 1
        if self.links > MAX_LINKS:
            raise SandboxError(
                f"{self.requested!r} goes through more than {MAX_LINKS} symbolic links (or kept changing); refused"
            )

    def _up(self) -> None:
        if len(self.stack) == 1:
            raise self._outside()
        os.close(self.stack.pop())
        self.names.pop()

    def _is_folder(self, name: str) -> bool:
        try:
            return stat.S_ISDIR(os.stat(name, dir_fd=self.folder, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _outside(self) -> SandboxError:
        return SandboxError(f"{self.requested!r} leads outside the tool root through a symbolic link; refused")


class _NotALinkError(Exception):
    """readlink said EINVAL: the name exists and is not a symbolic link."""


def _replace(folder: int, name: str, data: bytes, mode: int, requested: str) -> None:
    """Write ``data`` to a temporary file in ``folder`` and rename it over ``name``, both by descriptor.

    Not :class:`~arcticcodex.fileio.AtomicFile`, which works by path: here every step is relative to
    the folder's descriptor, so a folder on the path swapped for a link cannot redirect the write.
    """
    temporary = f".acx-{secrets.token_hex(8)}.tmp"
    try:
        descriptor = os.open(temporary, _NEW_FILE, mode, dir_fd=folder)
    except OSError as error:
        # from None: the OSError adds nothing the message does not already say
        raise SandboxError(f"{requested!r} could not be written ({error.strerror}); nothing was changed") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError as error:
        _unlink_quietly(temporary, folder)
        # from None: the OSError adds nothing the message does not already say
        raise SandboxError(f"{requested!r} could not be written ({error.strerror}); nothing was changed") from None
    except BaseException:
        _unlink_quietly(temporary, folder)
        raise
    os.fsync(folder)  # the rename itself survives a crash


def _unlink_quietly(name: str, folder: int) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=folder)


def _open_failed(requested: str, error: OSError) -> SandboxError:
    if error.errno == errno.ELOOP:
        return SandboxError(f"{requested!r} turned into a symbolic link while it was being opened; refused")
    return SandboxError(f"{requested!r} cannot be opened ({error.strerror})")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    """A file name as text that always encodes: undecodable bytes (surrogate escapes) as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
