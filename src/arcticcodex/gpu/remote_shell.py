"""Commands and files over SSH on a rented instance: send a folder, run a command while reading its log, fetch one.

The same system ``ssh`` as the tunnel (:mod:`.tunnel`), with the same pinned per-instance ``known_hosts``,
``BatchMode`` and keep-alives, so a dead link is noticed and nothing ever waits for a prompt.  Files travel as
a tar stream through an ``exec`` channel (``tar -x`` there, ``tar -c`` there), which needs nothing on the instance
but ``tar`` and ``bash``; what comes back is unpacked with Python's ``data`` filter, so a hostile instance cannot
write outside the folder it is unpacked in (no absolute paths, no ``..``, no links out, no devices).

``ssh`` exits 255 when the connection fails or drops and with the remote command's status otherwise; the
callers tell the two apart by a last line the remote script prints (:mod:`arcticcodex.training.remote`).
"""

from __future__ import annotations

import collections
import shlex
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from ..errors import TunnelError
from .tunnel import _ssh_environment

SSH_FAILED = 255  # what ssh exits with when the connection (not the command) failed


@dataclass(frozen=True, slots=True)
class RemoteShell:
    """``root@host:port`` of one instance, reached with the workspace's key and its pinned host key."""

    host: str
    port: int
    key_path: Path
    known_hosts: Path
    user: str = "root"

    def command(self, remote: str) -> list[str]:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise TunnelError(
                "the `ssh` client is not installed; install OpenSSH (Debian: apt-get install openssh-client)"
            )
        self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        options = {
            "IdentitiesOnly": "yes",
            "BatchMode": "yes",
            "StrictHostKeyChecking": "accept-new",
            "UserKnownHostsFile": str(self.known_hosts),
            "ServerAliveInterval": "15",
            "ServerAliveCountMax": "3",
            "ConnectTimeout": "20",
            "LogLevel": "ERROR",
        }
        flags = [part for name, value in options.items() for part in ("-o", f"{name}={value}")]
        target = f"{self.user}@{self.host}"
        return [ssh, "-F", "none", "-T", "-p", str(self.port), "-i", str(self.key_path), *flags, target, remote]

    def send(self, entries: Iterable[tuple[Path, str]], folder: str) -> None:
        """Copy each local ``(path, name)`` (a file or a folder) into ``folder`` on the instance, as ``name``."""
        remote = f"mkdir -p {shlex.quote(folder)} && tar -xf - -C {shlex.quote(folder)}"
        with subprocess.Popen(  # noqa: S603 - argv of the system ssh, no shell here
            self.command(remote), stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=_ssh_environment()
        ) as process:
            stdin = cast(IO[bytes], process.stdin)  # set by stdin=PIPE
            try:
                with tarfile.open(fileobj=stdin, mode="w|") as archive:
                    for path, name in entries:
                        archive.add(path, arcname=name)
                stdin.close()
            except BrokenPipeError:
                pass  # the status and stderr below say why the other end went away
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            status = process.wait()
        if status != 0:
            raise TunnelError(
                f"copying to {self.user}@{self.host}:{self.port}:{folder} failed (ssh status {status}: "
                f"{error.strip() or 'no message'}); the instance may have gone — `arcticcodex gpu ls` shows it"
            )

    def fetch(self, folder: str, names: Iterable[str], into: Path) -> None:
        """Copy ``names`` under ``folder`` on the instance into the local folder ``into`` (made if missing)."""
        into.mkdir(parents=True, exist_ok=True)
        remote = f"tar -cf - -C {shlex.quote(folder)} {shlex.join(list(names))}"
        with subprocess.Popen(  # noqa: S603 - argv of the system ssh, no shell here
            self.command(remote), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_ssh_environment()
        ) as process:
            problem = ""
            try:
                with tarfile.open(fileobj=cast(IO[bytes], process.stdout), mode="r|") as archive:
                    archive.extractall(into, filter="data")  # nothing lands outside ``into``
            except (tarfile.TarError, OSError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            status = process.wait()
        if status != 0 or problem:
            raise TunnelError(
                f"fetching {', '.join(names)} from {self.user}@{self.host}:{self.port}:{folder} failed "
                f"(ssh status {status}: {(problem or error).strip() or 'no message'})"
            )

    def stream(self, remote: str, on_line: Callable[[str], None], *, keep: int = 20) -> tuple[int, list[str]]:
        """Run ``remote``, handing each line of its output to ``on_line``; (status, its last ``keep`` lines)."""
        tail: collections.deque[str] = collections.deque(maxlen=keep)
        with subprocess.Popen(  # noqa: S603 - argv of the system ssh, no shell here
            self.command(remote),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_ssh_environment(),
        ) as process:
            try:
                for raw in cast(IO[bytes], process.stdout):
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    tail.append(line)
                    on_line(line)
            except BaseException:
                process.kill()  # Ctrl-C here: stop listening; the caller destroys the instance
                raise
            status = process.wait()
        return status, list(tail)
