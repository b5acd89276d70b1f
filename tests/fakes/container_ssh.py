"""The sshd of each fake Vast instance: one asyncssh server per running instance, on 127.0.0.1.

Why real SSH: the provisioner reaches vLLM through ``ssh -N -L LOCAL:127.0.0.1:8000 root@HOST -p PORT``, so the
fake container must speak the real protocol to the real OpenSSH client: public-key authentication against the
keys Vast would have put in ``authorized_keys``, a host key the client has to accept, and local port forwarding
to "the container's port 8000" (which is the fake vLLM server the test runs).  No shell by default: a session
request is refused, because nothing in the provisioner needs one and a fake shell would only hide bugs.  With
``exec_root`` (the remote training run needs it), an ``exec`` request runs its command with ``bash -c`` *on this
machine*, in the instance's own folder ``exec_root/ID`` (its ``HOME``), stdin, stdout and stderr piped through the
channel as bytes — "the fake container runs the command on this machine"; an interactive shell is still refused.
The container's processes die with it (destroy, stop); a dropped connection leaves them running, as on a real host.

All servers share one asyncio loop in a daemon thread; every public method is blocking and thread-safe, so the
HTTP fake calls it from its request threads.  Closing an instance's server also drops its live connections, so a
tunnel through it dies the way it does when Vast stops or destroys the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

HOST = "127.0.0.1"
VLLM_CONTAINER_PORT = 8000  # the port vLLM listens on inside the container
_FORWARDABLE_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_T = TypeVar("_T")


def key_identity(openssh_key: str) -> str:
    """``"type base64"`` of an OpenSSH public key line: the comment is not part of a key's identity."""
    return " ".join(openssh_key.split()[:2])


class _ContainerSSHServer(asyncssh.SSHServer):
    """One connection's policy: root with an authorized key, and only the vLLM port may be forwarded."""

    def __init__(self, box: _Box) -> None:
        self._box = box
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._box.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._box.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        offered = key_identity(key.export_public_key("openssh").decode())
        return username == "root" and offered in {key_identity(k) for k in list(self._box.authorized)}

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def session_requested(self) -> bool:
        return self._box.home is not None  # exec only with an exec_root; ``ssh -N`` never asks for one

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False  # no remote (-R) forwarding

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> Any:
        """A ``-L`` tunnel: container port 8000 goes to the fake vLLM, everything else is refused."""
        target = self._box.vllm_port()
        if dest_host.lower() not in _FORWARDABLE_HOSTS or dest_port != VLLM_CONTAINER_PORT:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, f"only localhost:{VLLM_CONTAINER_PORT} is reachable"
            )
        if target is None or self._conn is None:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "Connection refused (nothing on :8000)")
        return _ForwardSession(self._box, target)


class _ForwardSession(asyncssh.SSHTCPSession[bytes]):
    """One forwarded connection to the fake vLLM, owned by the box so that closing the box closes it.

    (asyncssh's own ``forward_connection`` leaves the socket to the model server open, and its coroutine
    unawaited, when the SSH connection dies while the channel opens — which the tunnel tests make happen.)
    """

    def __init__(self, box: _Box, port: int) -> None:
        self._box, self._port = box, port
        self._channel: asyncssh.SSHTCPChannel[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: list[bytes] = []
        self._eof = False
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:
        self._channel = chan
        self._box.sessions.add(self)

    def session_started(self) -> None:
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(HOST, self._port)
            self._writer = writer
            for data in self._pending:
                writer.write(data)
            self._pending.clear()
            if self._eof:
                writer.write_eof()
            while data := await reader.read(65536):
                if self._channel is not None:
                    self._channel.write(data)
        except (OSError, asyncssh.Error):
            pass
        finally:
            if writer is not None:
                writer.close()
            if self._channel is not None:
                self._channel.close()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self._writer is None:
            self._pending.append(data)
        else:
            self._writer.write(data)

    def eof_received(self) -> bool:
        if self._writer is None:
            self._eof = True
        elif self._writer.can_write_eof():
            self._writer.write_eof()
        return True  # keep the channel open for the reply

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        self._box.sessions.discard(self)
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()


@dataclass
class _Box:
    """What one instance's sshd knows: its keys, its host key, its listener and its live connections."""

    authorized: Collection[str]  # shared with the HTTP fake, so keys attached later count at once
    vllm_port: Callable[[], int | None]
    host_key: asyncssh.SSHKey
    acceptor: asyncssh.SSHAcceptor | None = None
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    sessions: set[_ForwardSession] = field(default_factory=set)
    home: Path | None = None  # the container's folder on this machine when commands may run in it
    processes: set[asyncio.subprocess.Process] = field(default_factory=set)

    async def run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Run an ``exec`` request's command here, in the container's folder; refuse an interactive shell."""
        if self.home is None or not process.command:
            process.stderr.write(b"this container runs commands (ssh HOST COMMAND), not an interactive shell\n")
            process.exit(1)
            return
        child = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            process.command,
            cwd=self.home,
            env={**os.environ, "HOME": str(self.home)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: the container's end kills all of it
        )
        self.processes.add(child)
        try:
            await process.redirect(stdin=child.stdin, stdout=child.stdout, stderr=child.stderr)
            status = await child.wait()
            process.exit(status if status >= 0 else 128 - status)
            await process.wait_closed()  # runs asyncssh's clean-up (its pipe queues' joins)
        except (OSError, asyncssh.Error):
            pass  # the connection went away: the command runs on, as on a real host
        finally:
            if child.returncode is not None:
                self.processes.discard(child)

    def kill_processes(self) -> None:
        for child in list(self.processes):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
        self.processes.clear()

    @property
    def port(self) -> int:
        assert self.acceptor is not None
        return int(self.acceptor.sockets[0].getsockname()[1])


class ContainerSSH:
    """The sshd of every running fake instance; ``open``/``close``/``drop`` are called from any thread."""

    def __init__(self, exec_root: Path | None = None) -> None:
        self._boxes: dict[int, _Box] = {}
        self.exec_root = exec_root  # None: no command runs (the default); else each instance's folder is under it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the event loop in a daemon thread; returns once it runs."""
        if self._thread is not None:
            return
        loop = self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-vast-ssh", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        """Close every server and connection, then end the loop and join its thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        for instance_id in list(self._boxes):
            self.close(instance_id)
        with contextlib.suppress(Exception):
            self._call(self._drain())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = None

    @staticmethod
    async def _drain() -> None:
        """Let aborted connections close their forwarded sockets, then cancel whatever is left."""
        await asyncio.sleep(0.05)
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the container SSH loop is not running: call start()")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def open(self, instance_id: int, authorized: Collection[str], vllm_port: Callable[[], int | None]) -> int:
        """Start (or keep) the instance's sshd; returns its port.  A fresh host key each time, as a new container."""
        box = self._boxes.get(instance_id)
        if box is not None:
            return box.port
        box = _Box(authorized, vllm_port, asyncssh.generate_private_key("ssh-ed25519"))
        if self.exec_root is not None:
            box.home = self.exec_root / str(instance_id)
            box.home.mkdir(parents=True, exist_ok=True)
        box.acceptor = self._call(self._listen(box))
        self._boxes[instance_id] = box
        return box.port

    async def _listen(self, box: _Box) -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(
            lambda: _ContainerSSHServer(box),
            HOST,
            0,
            server_host_keys=[box.host_key],
            allow_scp=False,
            agent_forwarding=False,
            process_factory=box.run if box.home is not None else None,  # else session_requested refuses
            encoding=None,  # bytes: a tar stream goes through an exec channel unchanged
            x11_forwarding=False,
            login_timeout=30,
        )

    def close(self, instance_id: int) -> None:
        """Stop listening and drop every connection: the container is gone, and so is any tunnel through it."""
        box = self._boxes.pop(instance_id, None)
        if box is not None:
            self._call(self._shut(box, keep_listening=False))

    def drop(self, instance_id: int) -> int:
        """Drop live connections but keep listening (a network blip); returns how many were dropped."""
        box = self._boxes.get(instance_id)
        return 0 if box is None else self._call(self._shut(box, keep_listening=True))

    @staticmethod
    async def _shut(box: _Box, *, keep_listening: bool) -> int:
        if not keep_listening and box.acceptor is not None:
            box.acceptor.close()
            await box.acceptor.wait_closed()
        if not keep_listening:
            box.kill_processes()  # the container is gone: so is whatever ran in it
        connections = list(box.connections)
        for conn in connections:
            conn.abort()  # no goodbye: the TCP connection just ends, as when a host goes away
        for conn in connections:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)
        box.connections.clear()
        for session in list(box.sessions):
            session.close()
        return len(connections)

    def port(self, instance_id: int) -> int | None:
        box = self._boxes.get(instance_id)
        return None if box is None else box.port

    def host_public_key(self, instance_id: int) -> str | None:
        """The instance's host key as a known_hosts-style ``"ssh-ed25519 AAAA..."`` string."""
        box = self._boxes.get(instance_id)
        return None if box is None else box.host_key.export_public_key("openssh").decode().strip()

    def connection_count(self, instance_id: int) -> int:
        box = self._boxes.get(instance_id)
        return 0 if box is None else len(box.connections)
