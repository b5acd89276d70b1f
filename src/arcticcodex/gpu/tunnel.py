"""An SSH tunnel to an instance's vLLM port, run by the system ``ssh`` (OpenSSH).

Why the system client: it is what users debug with, it honours their ``~/.ssh/config`` habits, and its
port forwarding is battle-tested.  How it is run, and why:

* host keys: each instance gets its own ``known_hosts`` file and ``StrictHostKeyChecking=accept-new`` —
  the first key seen is pinned (a fresh instance has a fresh key, so there is nothing to compare with),
  a changed key afterwards is refused (until the instance is started again after a stop: a new container,
  a new key), and no prompt ever waits for a "yes";
* ``BatchMode`` (no password prompt), ``ExitOnForwardFailure`` (a port that cannot be bound is an error,
  not a silent success), ``ServerAliveInterval`` (a dead link is noticed within ~45 s);
* "open" means the local port accepts connections *and* the ssh process is still alive, checked;
* :meth:`SSHTunnel.close` asks nicely (SIGTERM), then insists (SIGKILL) only if it must.

The tunnel process is started in its own session so that it can outlive the command that opened it
(``arcticcodex gpu up`` returns while the tunnel keeps serving); its pid is recorded by the manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import TunnelError

VLLM_PORT = 8000  # the port vLLM listens on inside the instance
VLLM_HOST = "127.0.0.1"  # the address it listens on there: loopback, so only the tunnel reaches it


def free_local_port() -> int:
    """A port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_accepts(port: int, *, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError, OSError):  # reap it if it is our exited child
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return _not_a_zombie(pid)


def _not_a_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) said it exists
    return stat.rpartition(")")[2].split()[0] != "Z"


@dataclass
class SSHTunnel:
    """``127.0.0.1:local_port`` → ``remote_host:remote_port`` (loopback) inside the instance at ``host:port``."""

    host: str
    port: int
    key_path: Path
    known_hosts: Path
    local_port: int
    remote_host: str = VLLM_HOST
    remote_port: int = VLLM_PORT
    user: str = "root"
    pid: int | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL the tunnel serves."""
        return f"http://127.0.0.1:{self.local_port}/v1"

    def command(self) -> list[str]:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise TunnelError(
                "the `ssh` client is not installed; install OpenSSH (Debian: apt-get install openssh-client)"
            )
        return [
            ssh,
            "-F",
            "none",  # the user's ssh_config (ControlMaster, ProxyJump …) must not change what this tunnel is
            "-N",
            "-T",
            "-p",
            str(self.port),
            "-i",
            str(self.key_path),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "ConnectTimeout=20",
            "-o",
            "LogLevel=ERROR",
            "-L",
            f"127.0.0.1:{self.local_port}:{self.remote_host}:{self.remote_port}",
            f"{self.user}@{self.host}",
        ]

    def open(self, *, timeout: float = 30.0) -> SSHTunnel:
        """Start ssh and wait until the forwarded port accepts connections; TunnelError if it cannot."""
        if self.alive():
            return self
        if port_accepts(self.local_port, timeout=0.2):
            raise TunnelError(
                f"local port {self.local_port} is already in use by another program; choose another local_port",
                parameters=["local_port"],
            )
        self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _touch_private(self.known_hosts)  # ssh appends to it, keeping the mode: 0600 whatever the umask
        log_path = self.log_path or self.known_hosts.with_suffix(".ssh.log")
        self.pid = _spawn_detached(self.command(), log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = _exit_status(self.pid)
            if status is not None:
                reason = _tail(log_path)
                self.pid = None
                raise TunnelError(
                    f"ssh to {self.user}@{self.host}:{self.port} exited with status {status}"
                    f"{': ' + reason if reason else ''}"
                )
            if port_accepts(self.local_port):
                return self
            time.sleep(0.05)
        self.close()
        raise TunnelError(f"the tunnel to {self.host}:{self.port} did not open within {timeout:.0f} s")

    def alive(self) -> bool:
        """The ssh process runs and the local end accepts connections."""
        return pid_alive(self.pid) and port_accepts(self.local_port)

    def ensure(self, *, timeout: float = 30.0) -> bool:
        """Reopen the tunnel if it died; True when it had to be reopened."""
        if self.alive():
            return False
        self.close()
        self.open(timeout=timeout)
        return True

    def close(self, *, grace: float = 3.0) -> None:
        """Stop the ssh process.  Safe to call twice."""
        pid, self.pid = self.pid, None
        terminate(pid, grace=grace)


def terminate(pid: int | None, *, grace: float = 3.0) -> None:
    """SIGTERM our ssh process, then SIGKILL it if it is still there after ``grace`` seconds.

    A recorded pid may have been reused since (a reboot, days later): a process that is not ``ssh``
    is left alone.
    """
    if pid is None or not pid_alive(pid) or not _is_ssh(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _spawn_detached(argv: list[str], log_path: Path) -> int:
    """Start ``argv`` in a new session with its output appended to ``log_path``; returns its pid.

    A new session, so it survives the command that opened it (and Ctrl-C there); a bare pid rather than
    a ``Popen``, because the process is meant to outlive this object — :func:`pid_alive` reaps it.
    """
    _touch_private(log_path)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        return os.posix_spawn(
            argv[0],
            argv,
            _ssh_environment(),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull.fileno(), 0),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
            ],
            setsid=True,
        )


def _touch_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (what ssh and we then append stays private)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _ssh_environment() -> dict[str, str]:
    """What ssh needs from the environment, and nothing else: no API keys in a long-lived process."""
    return {name: os.environ[name] for name in ("PATH", "HOME", "USER", "LOGNAME", "LANG") if name in os.environ}


def _is_ssh(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return True  # no /proc (macOS): trust the recorded pid
    return Path(argv0.decode(errors="replace")).name == "ssh"


def _exit_status(pid: int) -> int | None:
    """The exit status of our child ``pid`` if it has ended (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if pid_alive(pid) else -1
    return os.waitstatus_to_exitcode(status) if done == pid else None


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
